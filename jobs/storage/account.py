"""Queue and table clients for the app's storage account, from ``AzureWebJobsStorage`` as the host reads it.

Connection strings (Azurite included) or identity-based service URIs with ``__credential=managedidentity`` and
``__clientId``, exactly like the Functions host, so the app's own clients reach the same account as its triggers.
Queue messages are written as plain UTF-8 text (no base64), which Logic Apps and ``json.loads`` read as is.

``ClientOptions`` say how long a call may try: the Functions app keeps the SDK's own retries (``SDK_DEFAULTS``);
the command line (``COMMAND_LINE``) and ``python -m jobs run`` (``LOCAL_HOST``) give up within seconds, so an
unreachable account is one clear line (``describe_unreachable``) instead of minutes of silent retries.
"""

from __future__ import annotations

import contextlib
import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from azure.core.exceptions import ResourceExistsError, ServiceRequestError, ServiceResponseError
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.queue import LinearRetry, QueueClient

from jobs.storage.connection import StorageSettings

__all__ = ["COMMAND_LINE", "LOCAL_HOST", "SDK_DEFAULTS", "ClientOptions", "StorageAccount", "is_unreachable"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


@dataclass(frozen=True)
class ClientOptions:
    """Retries and timeouts of the queue and table clients; ``None`` keeps the SDK's default."""

    retry_total: int | None = None
    retry_backoff_seconds: float | None = None
    connection_timeout: float | None = None
    read_timeout: float | None = None

    def queue_kwargs(self) -> dict[str, Any]:
        kwargs = self._timeouts()
        if self.retry_total is not None:
            backoff = 1.0 if self.retry_backoff_seconds is None else self.retry_backoff_seconds
            kwargs["retry_policy"] = LinearRetry(
                backoff=backoff, random_jitter_range=backoff / 2, retry_total=self.retry_total
            )
        return kwargs

    def table_kwargs(self) -> dict[str, Any]:
        kwargs = self._timeouts()
        if self.retry_total is not None:
            kwargs["retry_total"] = self.retry_total
        if self.retry_backoff_seconds is not None:
            kwargs["retry_backoff_factor"] = self.retry_backoff_seconds
        return kwargs

    def _timeouts(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.connection_timeout is not None:
            kwargs["connection_timeout"] = self.connection_timeout
        if self.read_timeout is not None:
            kwargs["read_timeout"] = self.read_timeout
        return kwargs


SDK_DEFAULTS = ClientOptions()  # the Functions app: the SDK's retries (a transient blip never fails an invocation)
COMMAND_LINE = ClientOptions(retry_total=1, retry_backoff_seconds=0.5, connection_timeout=3, read_timeout=20)
LOCAL_HOST = ClientOptions(retry_total=1, retry_backoff_seconds=0.5, connection_timeout=3, read_timeout=30)


def is_unreachable(exc: BaseException) -> bool:
    """True for "could not connect" and "no answer" errors (the service is down or elsewhere), not for answers."""
    return isinstance(exc, (ServiceRequestError, ServiceResponseError))


class StorageAccount:
    def __init__(self, settings: StorageSettings, options: ClientOptions = SDK_DEFAULTS) -> None:
        self._settings = settings
        self._options = options
        self._credential: Any = None
        self._queues: dict[str, QueueClient] = {}
        self._lock = threading.Lock()

    def _get_credential(self) -> Any:
        if self._credential is None:
            if self._settings.credential == "managedidentity":
                from azure.identity import ManagedIdentityCredential

                self._credential = ManagedIdentityCredential(client_id=self._settings.client_id)
            else:
                from azure.identity import DefaultAzureCredential

                self._credential = DefaultAzureCredential(managed_identity_client_id=self._settings.client_id)
        return self._credential

    def queue(self, name: str) -> QueueClient:
        with self._lock:
            client = self._queues.get(name)
            if client is None:
                kwargs = self._options.queue_kwargs()
                if self._settings.connection_string:
                    client = QueueClient.from_connection_string(self._settings.connection_string, name, **kwargs)
                else:
                    client = QueueClient(
                        str(self._settings.queue_service_uri), name, credential=self._get_credential(), **kwargs
                    )
                self._queues[name] = client
            return client

    def table(self, name: str) -> TableClient:
        kwargs = self._options.table_kwargs()
        if self._settings.connection_string:
            return TableClient.from_connection_string(self._settings.connection_string, name, **kwargs)
        return TableClient(str(self._settings.table_service_uri), name, credential=self._get_credential(), **kwargs)

    def table_service(self) -> TableServiceClient:
        kwargs = self._options.table_kwargs()
        if self._settings.connection_string:
            return TableServiceClient.from_connection_string(self._settings.connection_string, **kwargs)
        return TableServiceClient(str(self._settings.table_service_uri), credential=self._get_credential(), **kwargs)

    def ensure(self, queues: list[str], table: str) -> None:
        """Creates the queues and the table if they are missing (the Bicep template creates them in Azure)."""
        for name in queues:
            with contextlib.suppress(ResourceExistsError):
                self.queue(name).create_queue()
        self.table_service().create_table_if_not_exists(table)

    def endpoints(self) -> dict[str, str]:
        """``{"queue": "http://127.0.0.1:10001", "table": ...}``: scheme and host of each service, never a key."""
        if self._settings.connection_string:
            queue_url = QueueClient.from_connection_string(self._settings.connection_string, "x").url
            table_url = TableServiceClient.from_connection_string(self._settings.connection_string).url
        else:
            queue_url, table_url = str(self._settings.queue_service_uri), str(self._settings.table_service_uri)
        return {service: _origin(url) for service, url in (("queue", queue_url), ("table", table_url))}

    def describe_unreachable(self, exc: BaseException) -> str:
        """One line for a connection failure: which service, at which endpoint, and what to check."""
        text = str(exc)
        endpoints = self.endpoints()
        service = None
        if match := re.search(r"host='([^']+)', port=(\d+)", text):
            host, port = match[1], match[2]
            service = next(
                (name for name, origin in endpoints.items() if urlsplit(origin).hostname == host
                 and str(urlsplit(origin).port or _default_port(origin)) == port), None)
        if service is None:
            service = next((name for name, origin in endpoints.items() if urlsplit(origin).netloc in text), "queue")
        origin = endpoints[service]
        loopback = urlsplit(origin).hostname in _LOOPBACK
        hint = ("is Azurite running? (python -m jobs azurite)" if loopback
                else "check AzureWebJobsStorage, the network and the firewall")
        return f"cannot reach the {service} service at {origin}: {hint}"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _default_port(origin: str) -> int:
    return 443 if origin.startswith("https") else 80
