"""Publishing results: once a job ended, each subscriber gets its event, exactly as stored, at least once.

``finish(item)`` is idempotent and safe to repeat after a crash at any point: subscribers already published for
the item's result are skipped; the others get the event on the results queue and one delivery task per webhook
target; then the item leaves the running index. An operation that named its jobs has no event of its own (the
intake hands its subscribers on to the jobs before it is finished). The event's job fields and ``type`` come from
the job's provider.

The results queue gets the event whole, or, when it is larger than a queue message holds, as a pointer
(``result_events.pointer_event``: ``data.job`` null, ``data.truncated`` true); it never expires there. A delivery
task lives longer than the retry window (``jobs.storage.queue_messages``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from jobs.config import Settings
from jobs.domain.tracked_item import SubscriberRecord, TrackedItem
from jobs.flows.delivery import CALLBACK_TARGET, DeliveryTask, webhook_target
from jobs.flows.result_events import event_bytes, named_its_jobs, queue_event_text
from jobs.storage import JobStore, StorageAccount
from jobs.storage.queue_messages import send_output, send_task

__all__ = ["Publisher"]

log = logging.getLogger(__name__)


@dataclass
class Publisher:
    settings: Settings
    storage: StorageAccount
    store: JobStore
    clock: Callable[[], datetime]

    def finish(self, item: TrackedItem) -> int:
        """Publishes an ended item to every subscriber not yet served; returns how many events went out."""
        if not item.ended:
            return 0
        published = 0
        if not named_its_jobs(item):
            published = sum(
                self._publish(item, record)
                for record in self.store.list_subscribers(item.tracking_id)
                if record.published_status != item.result_status
            )
        self.store.delete_index(item.tracking_id)
        return published

    def publish_one(self, item: TrackedItem, record: SubscriberRecord) -> int:
        """For a subscriber added after the end: publishes to it alone (if not already)."""
        if named_its_jobs(item) or record.published_status == item.result_status:
            return 0
        return self._publish(item, record)

    def _publish(self, item: TrackedItem, record: SubscriberRecord) -> int:
        body = event_bytes(item, record)
        if self.settings.results_queue:
            text = queue_event_text(body)
            if text.encode("utf-8") != body:
                log.info("the event of %s for subscriber %s is too large for a queue message: the results queue "
                         "gets it without the job (data.truncated)", item.tracking_id, record.key)
            send_output(self.storage.queue(self.settings.results_queue), text)
        targets = [webhook_target(url) for url in self.settings.webhook_urls]
        if record.subscriber.callback_url:
            targets.append(CALLBACK_TARGET)
        first = self.clock().isoformat()
        deliver = self.storage.queue(self.settings.deliver_queue)
        for target in targets:
            task = DeliveryTask(item.tracking_id, record.key, str(item.result_status), target, 1, first)
            send_task(deliver, task.to_message(), work_seconds=self.settings.delivery_retry_hours * 3600)
        self.store.mark_published(item.tracking_id, record.key, str(item.result_status))
        log.info("published %s for %s to subscriber %s (correlationId %s, %d webhook targets)", item.result_status,
                 item.tracking_id, record.key, record.subscriber.correlation_id or "-", len(targets))
        return 1
