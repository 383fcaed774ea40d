"""Publishing results: once a job ended, each subscriber gets its event, exactly as stored, at least once.

``finish(item)`` is idempotent and safe to repeat after a crash at any point: subscribers already published for
the item's result are skipped; the others get the event on the results queue and one delivery task per webhook
target; then the item leaves the running index. An operation that named its jobs hands its subscribers on to
them instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from jobs.config import Settings
from jobs.delivery import CALLBACK_TARGET, DeliveryTask, webhook_target
from jobs.events import build_event, serialize_event
from jobs.references import JobRef
from jobs.storage_account import StorageAccount
from jobs.store import JobStore, SubscriberRecord, TrackedItem
from jobs.tracking import OPERATION_SUCCEEDED

__all__ = ["Publisher", "event_for"]

log = logging.getLogger(__name__)

MAX_QUEUE_MESSAGE = 64 * 1024


def event_for(item: TrackedItem, record: SubscriberRecord) -> dict:
    """The result event of an ended item for one subscriber, as a JSON-ready dict."""
    return json.loads(event_bytes(item, record))


def event_bytes(item: TrackedItem, record: SubscriberRecord) -> bytes:
    assert item.result_status is not None and item.ended_at is not None
    subscriber = record.subscriber
    extra = {}
    if item.kind == "operation":
        extra["operationStatus"] = item.resource
    event = build_event(
        tracking_id=item.tracking_id,
        status=item.result_status,
        seen_at=item.ended_at,
        vault_id=item.vault_id,
        subscriber_key=record.key,
        job_id=item.job_id,
        job_resource_id=item.job_resource_id,
        job=item.resource if item.kind == "job" else None,
        errors=item.errors,
        correlation_id=subscriber.correlation_id,
        context=subscriber.context,
        extra=extra,
    )
    return serialize_event(event)


class Publisher:
    def __init__(self, settings: Settings, storage: StorageAccount, store: JobStore,
                 clock: Callable[[], datetime]) -> None:
        self._settings = settings
        self._storage = storage
        self._store = store
        self._clock = clock

    def finish(self, item: TrackedItem) -> int:
        """Publishes an ended item to every subscriber not yet served; returns how many events went out."""
        if not item.ended:
            return 0
        if item.kind == "operation" and item.result_status == OPERATION_SUCCEEDED:
            published = self._hand_on(item)
        else:
            published = sum(
                self._publish(item, record)
                for record in self._store.list_subscribers(item.tracking_id)
                if record.published_status != item.result_status
            )
        self._store.delete_index(item.tracking_id)
        return published

    def publish_one(self, item: TrackedItem, record: SubscriberRecord) -> int:
        """For a subscriber added after the end: publishes to it alone (if not already)."""
        if item.kind == "operation" and item.result_status == OPERATION_SUCCEEDED:
            return self._hand_on(item)
        if record.published_status == item.result_status:
            return 0
        return self._publish(item, record)

    def _publish(self, item: TrackedItem, record: SubscriberRecord) -> int:
        body = event_bytes(item, record)
        if self._settings.results_queue:
            if len(body) > MAX_QUEUE_MESSAGE:
                self._storage.queue(self._settings.deadletter_queue).send_message(json.dumps({
                    "reason": f"the event is {len(body)} bytes, more than a queue message holds",
                    "target": f"queue:{self._settings.results_queue}",
                    "trackingId": item.tracking_id,
                    "subscriber": record.key,
                }))
            else:
                self._storage.queue(self._settings.results_queue).send_message(body.decode("utf-8"))
        targets = [webhook_target(url) for url in self._settings.webhook_urls]
        if record.subscriber.callback_url:
            targets.append(CALLBACK_TARGET)
        first = self._clock().isoformat()
        deliver = self._storage.queue(self._settings.deliver_queue)
        for target in targets:
            task = DeliveryTask(item.tracking_id, record.key, str(item.result_status), target, 1, first)
            deliver.send_message(task.to_message())
        self._store.mark_published(item.tracking_id, record.key, str(item.result_status))
        log.info("published %s for %s to subscriber %s (%d webhook targets)", item.result_status,
                 item.tracking_id, record.key, len(targets))
        return 1

    def _hand_on(self, operation: TrackedItem) -> int:
        """The operation named its jobs: each job is tracked with the operation's subscribers."""
        subscribers = self._store.list_subscribers(operation.tracking_id)
        now = self._clock()
        published = 0
        for job_id in operation.named_jobs or []:
            ref = JobRef.create(operation.vault, job_id)
            deadline = max(operation.deadline_at, now + timedelta(minutes=1))
            job, _ = self._store.create(TrackedItem.for_job(ref, now, deadline))
            if not job.ended:
                self._store.ensure_index(job, now)
            for record in subscribers:
                self._store.add_subscriber(job.tracking_id, record.subscriber)
            if job.ended:
                published += self.finish(job)
        return published
