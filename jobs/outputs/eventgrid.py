"""The Event Grid output: every result event on an Event Grid topic (``JOBS_EVENTGRID_TOPIC_ENDPOINT``).

Publishing puts one delivery task per event on the deliver queue (target ``EVENTGRID_TARGET``), the same task as
a webhook's, so ``jobs.flows.delivery`` makes the attempts on the webhook schedule and dead-letters with the reason
at the end; each attempt rebuilds the event from the table, so the topic always gets the id the results queue got.

``EventGridSender`` makes one attempt through ``azure-eventgrid``'s ``EventGridPublisherClient``: CloudEvents 1.0 in
batch mode (``application/cloudevents-batch+json``, a batch of the one event), to a custom topic (key sent as
``aeg-sas-key``) or a namespace topic (``JOBS_EVENTGRID_NAMESPACE_TOPIC``; key sent as ``Authorization:
SharedAccessKey``), with ``JOBS_EVENTGRID_KEY`` or, unset, a token credential (the app's identity, which needs the
"EventGrid Data Sender" role). The SDK's own retries are off: one request per attempt, and the schedule is ours.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from azure.core.credentials import AccessToken, AzureKeyCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from jobs.arm import parse_retry_after
from jobs.config import Settings
from jobs.outputs import ResultEvent
from jobs.outputs.webhooks import DeliveryTask
from jobs.storage import StorageAccount
from jobs.storage.queue_messages import send_task
from jobs.webhooks.sender import DeliveryOutcome

__all__ = ["EVENTGRID_TARGET", "UNRESOLVED_KEY", "EventGridDeliveries", "EventGridSender", "TokenSource"]

log = logging.getLogger(__name__)

EVENTGRID_TARGET = "eventgrid"
UNRESOLVED_KEY = "not sent: JOBS_EVENTGRID_KEY is an unresolved Key Vault reference"
# The per-request options below (send's keywords: the only way to the pipeline of a custom topic's client) also
# reach the client's event model, whose serializer warns on each that it ignores them there. It is right to.
logging.getLogger("azure.eventgrid._legacy._generated._serialization").setLevel(logging.ERROR)
# 401 and 403 are retried: a new "EventGrid Data Sender" assignment (or a rotated key) takes minutes to apply.
_RETRIED = {401, 403, 408, 429}


class TokenSource(Protocol):
    """What the SDK needs of a token credential (``azure.core.credentials.TokenCredential``): ``get_token``."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken: ...


class EventGridDeliveries:
    """The output: one delivery task per event, attempted by ``jobs.flows.delivery`` through ``EventGridSender``."""

    name = "event grid"

    def __init__(self, storage: StorageAccount, deliver_queue: str, retry_hours: float,
                 clock: Callable[[], datetime]) -> None:
        self._storage = storage
        self._queue = deliver_queue
        self._retry_hours = retry_hours
        self._clock = clock

    def publish(self, event: ResultEvent) -> str | None:
        task = DeliveryTask(event.tracking_id, event.subscriber.key, event.status, EVENTGRID_TARGET, 1,
                            self._clock().isoformat())
        send_task(self._storage.queue(self._queue), task.to_message(), work_seconds=self._retry_hours * 3600)
        return "event grid topic"


class EventGridSender:
    """Sends one event to the topic in one request and classifies the answer as a ``DeliveryOutcome``."""

    def __init__(self, endpoint: str, *, key: str | None = None, credential: TokenSource | None = None,
                 namespace_topic: str | None = None, key_problem: str | None = None,
                 timeout_seconds: float = 15.0) -> None:
        self.endpoint = endpoint
        self._key = key
        self._credential = credential
        self._namespace_topic = namespace_topic
        self._key_problem = key_problem
        self._timeout = timeout_seconds
        self._client: Any = None

    @classmethod
    def from_settings(cls, settings: Settings) -> EventGridSender | None:
        """The sender the settings ask for, or ``None`` when no topic is set."""
        if not settings.eventgrid_endpoint:
            return None
        return cls(settings.eventgrid_endpoint, key=settings.eventgrid_key,
                   namespace_topic=settings.eventgrid_namespace_topic, key_problem=settings.eventgrid_key_problem,
                   timeout_seconds=settings.webhook_timeout_seconds)

    def _publisher(self) -> Any:
        if self._client is None:
            from azure.eventgrid import EventGridPublisherClient

            credential: Any
            if self._key is not None:
                credential = AzureKeyCredential(self._key)
            elif self._credential is not None:
                credential = self._credential
            else:
                from azure.identity import DefaultAzureCredential  # honours AZURE_CLIENT_ID (the app's identity)

                credential = self._credential = DefaultAzureCredential()
            self._client = EventGridPublisherClient(self.endpoint, credential, namespace_topic=self._namespace_topic)
        return self._client

    def send(self, event: dict[str, Any]) -> DeliveryOutcome:
        if self._key_problem:
            # The key exists but cannot be read yet: never fall back to another credential, retry on the schedule.
            return DeliveryOutcome(False, 0.0, UNRESOLVED_KEY)
        try:
            # Per request: the client hands a custom topic's constructor options to nothing (azure-eventgrid 4.22).
            self._publisher().send([event], retry_total=0, connection_timeout=min(5.0, self._timeout),
                                   read_timeout=self._timeout)
        except ClientAuthenticationError as exc:
            # A 401 from the topic, or the credential could not get a token (identity not ready): both pass.
            status = exc.status_code
            return DeliveryOutcome(False, 0.0, f"HTTP {status}: refused" if status else
                                   f"no token for Event Grid: {type(exc).__name__}")
        except HttpResponseError as exc:
            return _classified(exc)
        except (ServiceRequestError, ServiceResponseError) as exc:
            return DeliveryOutcome(False, 0.0, f"network error: {type(exc).__name__}")
        return DeliveryOutcome(True)


def _classified(exc: HttpResponseError) -> DeliveryOutcome:
    # The client re-raises a 404 as a ResourceNotFoundError of its own, the answer's error as its cause.
    answered = exc if exc.status_code or not isinstance(exc.__cause__, HttpResponseError) else exc.__cause__
    status = answered.status_code or 0
    response = answered.response
    if status in _RETRIED or status >= 500 or status == 0:
        retry_after = parse_retry_after(response.headers) if response is not None else None
        return DeliveryOutcome(False, retry_after or 0.0, f"HTTP {status}" if status else "no answer")
    return DeliveryOutcome(False, None, f"HTTP {status}: permanent failure")
