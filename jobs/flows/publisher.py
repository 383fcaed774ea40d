"""Publishing results: once an item ended, each subscriber gets its event, exactly as stored, at least once.

``conclude(item)`` is what the poll worker calls for an ended item: an operation that named its jobs hands its
subscribers on to them (``Subscriptions.hand_on``) and has no event of its own; any other item's subscribers not
yet served get their event through every output (``jobs.outputs``); then the item leaves the running index. It is
idempotent and safe to repeat after a crash at any point: subscribers already published for the item's result are
skipped. The event's job fields and ``type`` come from the job's provider (``result_events``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jobs.domain.tracked_item import SubscriberRecord, TrackedItem
from jobs.flows.result_events import event_bytes, named_its_jobs
from jobs.flows.subscriptions import Subscriptions
from jobs.outputs import Output, ResultEvent
from jobs.storage import JobStore
from jobs.telemetry import Observer

__all__ = ["Publisher"]


@dataclass
class Publisher:
    store: JobStore
    subscriptions: Subscriptions
    outputs: Sequence[Output]
    observer: Observer

    def conclude(self, item: TrackedItem) -> int:
        """An ended item: an operation that named its jobs hands its subscribers on to them (those already ended
        are published at once); any other item is published to its subscribers. Returns events published."""
        if not item.ended:
            return 0
        published = 0
        if named_its_jobs(item):
            published = sum(self.finish(job) for job in self.subscriptions.hand_on(item) if job.ended)
        return published + self.finish(item)

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
        event = ResultEvent(item.tracking_id, str(item.result_status), record, event_bytes(item, record))
        done = [what for output in self.outputs if (what := output.publish(event))]
        self.store.mark_published(item.tracking_id, record.key, str(item.result_status))
        self.observer.result_published(item.tracking_id, str(item.result_status), record.key,
                                       record.subscriber.correlation_id, done)
        self.observer.event_published(event.body)
        return 1
