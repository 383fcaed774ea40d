"""Outputs: where a published result goes. The publisher hands each event to every output in a list.

An output is one module behind ``Output``: ``results_queue`` (the event on ``JOBS_RESULTS_QUEUE``), ``webhooks``
(one delivery task per webhook target on the deliver queue; the attempts are ``jobs.flows.delivery``'s) and
``eventgrid`` (one delivery task per event for ``JOBS_EVENTGRID_TOPIC_ENDPOINT``, attempted the same way).
``outputs_from_settings`` lists the ones the settings turn on, so the next output is one module and a setting.
An output must be idempotent per event id: the publisher may hand the same event again after a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from jobs.config import Settings
from jobs.domain.tracked_item import SubscriberRecord
from jobs.storage import StorageAccount

__all__ = ["Output", "ResultEvent", "outputs_from_settings"]


@dataclass(frozen=True)
class ResultEvent:
    """One subscriber's result event, as every output gets it: ``body`` is the CloudEvent as serialised once."""

    tracking_id: str
    status: str
    subscriber: SubscriberRecord
    body: bytes


class Output(Protocol):
    name: str  # how logs and telemetry name it

    def publish(self, event: ResultEvent) -> str | None:
        """Sends the event on (or records the work to send it); returns what it did in a few words, or ``None``
        when it had nothing to do for this subscriber."""
        ...


def outputs_from_settings(settings: Settings, storage: StorageAccount, clock: Callable[[], datetime]) -> list[Output]:
    """The outputs the settings turn on, in the order they are served."""
    from jobs.outputs.eventgrid import EventGridDeliveries
    from jobs.outputs.results_queue import ResultsQueue
    from jobs.outputs.webhooks import WebhookDeliveries

    outputs: list[Output] = []
    if settings.results_queue:
        outputs.append(ResultsQueue(storage, settings.results_queue))
    outputs.append(WebhookDeliveries(storage, settings.deliver_queue, settings.webhook_urls,
                                     settings.delivery_retry_hours, clock))
    if settings.eventgrid_endpoint:
        outputs.append(EventGridDeliveries(storage, settings.deliver_queue, settings.delivery_retry_hours, clock))
    return outputs
