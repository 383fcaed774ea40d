"""Webhook delivery: one attempt per queue message, retries as delayed messages, dead-letter at the end.

Each (event, target) pair is its own message on the deliver queue, so a slow or dead subscriber never holds up
another. A message carries no URL and no event: only the tracking id, the subscriber key and which target (a
hash of a ``JOBS_WEBHOOK_URLS`` entry, or the subscriber's ``callbackUrl``); the event is rebuilt from Table
Storage, identical on every attempt (same ``webhook-id``).

``Delivery.attempt`` makes one attempt (``jobs.webhooks.sender`` sends and classifies) and decides what follows:
a retry after the schedule's delay (or the receiver's ``Retry-After``, when longer), with growing, jittered
delays for ``JOBS_DELIVERY_RETRY_HOURS`` (24), the last attempt made as the window closes, no delay longer than the
queue accepts (``MAX_VISIBILITY_SECONDS``, 7 days); or, after a permanent failure, at the window's end, or when the
receiver's ``Retry-After`` falls after the window closes, the dead-letter queue (``<JOBS_RESULTS_QUEUE>-deadletter``)
with the URL and reason.

While ``JOBS_WEBHOOK_SECRET`` is a Key Vault reference the platform has not resolved, no request is made: each
attempt is a retryable failure saying so (the tracker logs the problem once, when it is built), so nothing is sent
unsigned and nothing is lost while the role assignment takes effect and the app restarts.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jobs.config import Settings
from jobs.domain.tracked_item import SubscriberRecord, TrackedItem
from jobs.flows.result_events import event_bytes
from jobs.outputs.eventgrid import EVENTGRID_TARGET, EventGridSender
from jobs.outputs.results_queue import pointer_event
from jobs.outputs.webhooks import CALLBACK_TARGET, DeliveryTask, webhook_target
from jobs.storage import JobStore, StorageAccount
from jobs.storage.queue_messages import fit_record, fits, send_output, send_task
from jobs.telemetry import Observer
from jobs.webhooks.sender import DeliveryOutcome, WebhookSender, describe_url

__all__ = [
    "CALLBACK_TARGET",
    "MAX_VISIBILITY_SECONDS",
    "UNRESOLVED_SECRET",
    "Delivery",
    "DeliveryTask",
    "deadletter_message",
    "retry_deadline",
    "retry_delay",
    "webhook_target",
]

log = logging.getLogger(__name__)

UNRESOLVED_SECRET = "not sent: JOBS_WEBHOOK_SECRET is an unresolved Key Vault reference (it would go unsigned)"
# Multiples of JOBS_DELIVERY_FIRST_RETRY_SECONDS (10 s): 10 s, 30 s, 1 min, 5 min, 10 min, 30 min, 1 h, 3 h, 6 h,
# then every 12 h — Event Grid's schedule.
_SCHEDULE = (1, 3, 6, 30, 60, 180, 360, 1080, 2160, 4320)
# Azure Queue storage refuses a visibility timeout longer than 7 days (Put Message): no retry waits longer.
MAX_VISIBILITY_SECONDS = 7 * 24 * 3600


def retry_delay(attempt: int, first_seconds: float, jitter: float = 0.2) -> float:
    """Delay before attempt ``attempt + 1`` (attempt counts from 1)."""
    factor = _SCHEDULE[min(attempt, len(_SCHEDULE)) - 1]
    return first_seconds * factor * random.uniform(1 - jitter, 1 + jitter)


def deadletter_message(task: DeliveryTask, url: str, reason: str, event: dict[str, Any] | None,
                       now: datetime) -> str:
    """The dead-letter record, within a queue message: an event too large goes in as its pointer form
    (``jobs.outputs.results_queue.pointer_event``); a record still too large has its reason, then its target, cut."""
    record: dict[str, Any] = {
        "reason": reason,
        "target": describe_url(url),  # scheme and host: Slack and Teams URLs carry their secret in the path
        "trackingId": task.tracking_id,
        "subscriber": task.subscriber,
        "attempts": task.attempt,
        "firstAttemptAt": task.first_attempt_at,
        "deadLetteredAt": now.isoformat(),
        "event": event,
    }
    if event is not None:
        record["event"] = pointer_event(event, lambda candidate: fits(_compact({**record, "event": candidate})))
    return fit_record(record, ("reason", "target"), _compact)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def retry_deadline(task: DeliveryTask, window_hours: float, now: datetime) -> datetime:
    first = datetime.fromisoformat(task.first_attempt_at) if task.first_attempt_at else now
    return first + timedelta(hours=window_hours)


@dataclass
class Delivery:
    """One delivery attempt per deliver-queue message, and what follows it: done, a delayed retry, or dead-letter."""

    settings: Settings
    storage: StorageAccount
    store: JobStore
    sender: WebhookSender
    clock: Callable[[], datetime]
    observer: Observer = field(default_factory=Observer)
    eventgrid: EventGridSender | None = None  # JOBS_EVENTGRID_TOPIC_ENDPOINT's attempts (jobs.outputs.eventgrid)

    def attempt(self, task: DeliveryTask) -> str:
        """One attempt; returns what happened: delivered, retry, deadletter or dropped."""
        outcome = self._attempt(task)
        self.observer.delivery_attempted(task.tracking_id, task.target, outcome)
        return outcome

    def _attempt(self, task: DeliveryTask) -> str:
        item = self.store.get(task.tracking_id)
        record = self.store.get_subscriber(task.tracking_id, task.subscriber)
        if item is None or record is None or not item.ended:
            log.info("delivery for %s dropped: job or subscriber no longer tracked", task.tracking_id)
            return "dropped"
        if task.target == EVENTGRID_TARGET:
            return self._attempt_eventgrid(task, item, record)
        callback = task.target == CALLBACK_TARGET
        url = record.subscriber.callback_url if callback else next(
            (u for u in self.settings.webhook_urls if webhook_target(u) == task.target), None
        )
        if not url:
            log.info("delivery for %s dropped: target no longer configured", task.tracking_id)
            return "dropped"
        body = event_bytes(item, record)
        event = json.loads(body)
        if self.settings.webhook_secret_problem:
            # The secret exists but cannot be read yet: never send unsigned, retry on the usual schedule.
            outcome = DeliveryOutcome(False, 0.0, UNRESOLVED_SECRET)
        else:
            outcome = self.sender.send(url, event["id"], body, callback=callback)
        if outcome.delivered:
            return "delivered"
        return self._after_failure(task, url, event, outcome)

    def _attempt_eventgrid(self, task: DeliveryTask, item: TrackedItem, record: SubscriberRecord) -> str:
        if self.eventgrid is None:
            log.info("delivery for %s dropped: no Event Grid topic configured", task.tracking_id)
            return "dropped"
        event = json.loads(event_bytes(item, record))
        outcome = self.eventgrid.send(event)
        if outcome.delivered:
            return "delivered"
        return self._after_failure(task, self.eventgrid.endpoint, event, outcome)

    def _after_failure(self, task: DeliveryTask, url: str, event: dict[str, Any], outcome: DeliveryOutcome) -> str:
        now = self.clock()
        settings = self.settings
        if outcome.retry_in is not None:
            # Retried for the whole window: the last attempt is made when the window closes.
            window = settings.delivery_retry_hours
            left = (retry_deadline(task, window, now) - now).total_seconds()
            if left > 0 and outcome.retry_in > left:
                # The receiver itself asks for a retry after the window closes: nothing to wait for.
                reason = (f"the receiver asked to be retried in {outcome.retry_in:.0f} s (Retry-After), after the "
                          f"{window:g}-hour retry window (JOBS_DELIVERY_RETRY_HOURS) closes; last: {outcome.reason}")
            elif left > 0:
                delay = min(left, max(retry_delay(task.attempt, settings.delivery_first_retry_seconds),
                                      outcome.retry_in), MAX_VISIBILITY_SECONDS)
                send_task(self.storage.queue(settings.deliver_queue), task.next_attempt().to_message(),
                          work_seconds=window * 3600, visibility_timeout=max(1, math.ceil(delay)))
                log.info("delivery attempt %d of event %s to %s failed (%s); next in %.0f s", task.attempt,
                         event["id"], describe_url(url), outcome.reason, delay)
                return "retry"
            else:
                reason = f"not delivered within {window:g} hours; last: {outcome.reason}"
        else:
            reason = outcome.reason
        send_output(self.storage.queue(settings.deadletter_queue), deadletter_message(task, url, reason, event, now))
        log.warning("event %s to %s dead-lettered: %s", event["id"], describe_url(url), reason)
        return "deadletter"
