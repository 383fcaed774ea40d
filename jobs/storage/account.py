"""Queue and table clients for the app's storage account, from ``AzureWebJobsStorage`` as the host reads it.

Connection strings (Azurite included) or identity-based service URIs with ``__credential=managedidentity`` and
``__clientId``, exactly like the Functions host, so the app's own clients reach the same account as its triggers.
Queue messages are written as plain UTF-8 text (no base64), which Logic Apps and ``json.loads`` read as is.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.queue import QueueClient

from jobs.config import StorageSettings

__all__ = ["StorageAccount"]


class StorageAccount:
    def __init__(self, settings: StorageSettings) -> None:
        self._settings = settings
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
                if self._settings.connection_string:
                    client = QueueClient.from_connection_string(self._settings.connection_string, name)
                else:
                    client = QueueClient(
                        str(self._settings.queue_service_uri), name, credential=self._get_credential()
                    )
                self._queues[name] = client
            return client

    def table(self, name: str) -> TableClient:
        if self._settings.connection_string:
            return TableClient.from_connection_string(self._settings.connection_string, name)
        return TableClient(str(self._settings.table_service_uri), name, credential=self._get_credential())

    def table_service(self) -> TableServiceClient:
        if self._settings.connection_string:
            return TableServiceClient.from_connection_string(self._settings.connection_string)
        return TableServiceClient(str(self._settings.table_service_uri), credential=self._get_credential())

    def ensure(self, queues: list[str], table: str) -> None:
        """Creates the queues and the table if they are missing (the Bicep template creates them in Azure)."""
        for name in queues:
            with contextlib.suppress(ResourceExistsError):
                self.queue(name).create_queue()
        self.table_service().create_table_if_not_exists(table)
