"""The webhooks output: one delivery task per (event, target) on the deliver queue.

A target is a ``JOBS_WEBHOOK_URLS`` entry (named by a hash: ``webhook_target``) or the subscriber's own
``callbackUrl`` (``CALLBACK_TARGET``). A task carries no URL and no event, only what rebuilds them from the table,
so every attempt sends the same event; ``jobs.flows.delivery`` makes the attempts. A task lives longer than the
retry window (``jobs.storage.queue_messages.send_task``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime

from jobs.outputs import ResultEvent
from jobs.storage import StorageAccount
from jobs.storage.queue_messages import send_task

__all__ = ["CALLBACK_TARGET", "DeliveryTask", "WebhookDeliveries", "webhook_target"]

CALLBACK_TARGET = "callback"


def webhook_target(url: str) -> str:
    return "webhook:" + hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class DeliveryTask:
    tracking_id: str
    subscriber: str
    status: str
    target: str
    attempt: int = 1
    first_attempt_at: str = ""

    def to_message(self) -> str:
        return json.dumps({"kind": "delivery", **asdict(self)}, separators=(",", ":"))

    @classmethod
    def from_message(cls, text: str) -> DeliveryTask:
        data = json.loads(text)
        data.pop("kind", None)
        return cls(**data)

    def next_attempt(self) -> DeliveryTask:
        return DeliveryTask(self.tracking_id, self.subscriber, self.status, self.target, self.attempt + 1,
                            self.first_attempt_at)


class WebhookDeliveries:
    name = "webhooks"

    def __init__(self, storage: StorageAccount, deliver_queue: str, webhook_urls: tuple[str, ...],
                 retry_hours: float, clock: Callable[[], datetime]) -> None:
        self._storage = storage
        self._queue = deliver_queue
        self._targets = [webhook_target(url) for url in webhook_urls]
        self._retry_hours = retry_hours
        self._clock = clock

    def publish(self, event: ResultEvent) -> str | None:
        targets = list(self._targets)
        if event.subscriber.subscriber.callback_url:
            targets.append(CALLBACK_TARGET)
        if not targets:
            return None
        first = self._clock().isoformat()
        deliver = self._storage.queue(self._queue)
        for target in targets:
            task = DeliveryTask(event.tracking_id, event.subscriber.key, event.status, target, 1, first)
            send_task(deliver, task.to_message(), work_seconds=self._retry_hours * 3600)
        return f"{len(targets)} webhook target{'s' if len(targets) != 1 else ''}"
