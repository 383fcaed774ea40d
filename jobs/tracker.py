"""The tracker: one object whose methods are what the Functions triggers (and the local runner) call.

- ``accept_message``: an intake message (queue trigger on ``JOBS_INTAKE_QUEUE``).
- ``run_poll_round``: the timer's round, which hands due work to the poll queue.
- ``handle_poll_message``: a poll-queue message (queue trigger).
- ``handle_delivery_message``: a deliver-queue message (queue trigger): one webhook attempt.

Nothing here knows which trigger called it.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from jobs.arm import ArmClient
from jobs.config import Settings
from jobs.delivery import (
    CALLBACK_TARGET,
    DeliveryTask,
    WebhookSender,
    deadletter_message,
    retry_deadline,
    retry_delay,
    webhook_target,
)
from jobs.intake import IntakeRejected, Subscriber, TrackRequest, parse_message
from jobs.poller import Poller, PollReport, PollWork, plan_round
from jobs.publisher import Publisher, event_bytes
from jobs.references import OperationRef
from jobs.storage_account import StorageAccount
from jobs.store import JobStore, TrackedItem
from jobs.tracking import end_failed_operation

__all__ = ["Acceptance", "RoundReport", "Tracker"]

log = logging.getLogger(__name__)

MAX_REJECTED_ORIGINAL = 48 * 1024
# A queue message holds 64 KB of request body; the record's JSON escapes (\u00e9, \") and the XML around it
# (&amp;) can make a 48 KB original several times larger, so the record is cut to this size on the wire.
MAX_REJECTED_RECORD = 60 * 1024


@dataclass
class Acceptance:
    tracking_ids: list[str] = field(default_factory=list)
    rejected: str | None = None
    published: int = 0


@dataclass
class RoundReport:
    running: int
    due: int
    messages: int


class Tracker:
    def __init__(
        self,
        settings: Settings,
        *,
        storage: StorageAccount | None = None,
        arm: ArmClient | None = None,
        clock: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self.storage = storage or StorageAccount(settings.storage)
        self.store = JobStore(self.storage.table(settings.table), self.clock)
        self.arm = arm or ArmClient.from_settings(settings)
        if self.arm.board is None:
            self.arm.board = self.store  # Retry-After windows shared by every instance
        self.publisher = Publisher(settings, self.storage, self.store, self.clock)
        self.poller = Poller(settings, self.store, self.arm, self.publisher, self.clock, monotonic)
        self.sender = WebhookSender(
            secret=settings.webhook_secret,
            allowed_callback_hosts=settings.callback_allowed_hosts,
            timeout_seconds=settings.webhook_timeout_seconds,
        )

    def setup(self) -> None:
        """Creates the queues and the table when they are missing (local runs; Bicep creates them in Azure)."""
        self.storage.ensure(self.settings.all_queues(), self.settings.table)

    # -- intake ------------------------------------------------------------------------------------------------
    def accept_message(self, body: bytes | str) -> Acceptance:
        try:
            request = parse_message(
                body, arm_endpoint=self.settings.arm_endpoint, allowed_hosts=self.settings.callback_allowed_hosts
            )
        except IntakeRejected as exc:
            self.reject(body, str(exc))
            return Acceptance(rejected=str(exc))
        return self.track(request)

    def reject(self, body: bytes | str, reason: str) -> None:
        raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        record: dict[str, object] = {"reason": reason, "rejectedAt": self.clock().isoformat()}
        try:
            record["message"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            record["message"] = base64.b64encode(raw).decode("ascii")
            record["messageEncoding"] = "base64"
        if len(raw) > MAX_REJECTED_ORIGINAL:
            record["message"] = str(record["message"])[:MAX_REJECTED_ORIGINAL]
            record["truncated"] = True
        text = json.dumps(record)
        while (size := _wire_size(text)) > MAX_REJECTED_RECORD:
            message = str(record["message"])
            record["message"] = message[: int(len(message) * MAX_REJECTED_RECORD / size * 0.95)]
            record["truncated"] = True
            text = json.dumps(record)
        self.storage.queue(self.settings.rejected_queue).send_message(text)
        log.warning("rejected an intake message: %s", reason)

    def track(self, request: TrackRequest) -> Acceptance:
        now = self.clock()
        minutes = request.timeout_minutes
        deadline = now + (timedelta(minutes=minutes) if minutes else timedelta(hours=self.settings.max_tracking_hours))
        acceptance = Acceptance()
        items: list[TrackedItem] = []
        if request.failed_operation is not None:
            failed = request.failed_operation
            item = TrackedItem.for_operation(OperationRef.for_vault(failed.vault, failed.operation_id), now, deadline)
            end_failed_operation(item, failed.operation, failed.status, now)
            items.append(item)
        items += [TrackedItem.for_job(job, now, deadline) for job in request.jobs]
        if request.operation is not None:
            items.append(TrackedItem.for_operation(request.operation, now, deadline))
        for new in items:
            acceptance.published += self._add(new, request.subscriber, now)
            acceptance.tracking_ids.append(new.tracking_id)
        return acceptance

    def _add(self, new: TrackedItem, subscriber: Subscriber, now: datetime) -> int:
        item, _ = self.store.create(new)
        if not item.ended:
            self.store.ensure_index(item, now)
        self.store.add_subscriber(item.tracking_id, subscriber)
        item = self.store.get(item.tracking_id) or item  # it may have ended meanwhile
        if not item.ended:
            return 0
        record = self.store.get_subscriber(item.tracking_id, subscriber.key)
        return self.publisher.publish_one(item, record) if record else 0

    # -- polling -----------------------------------------------------------------------------------------------
    def run_poll_round(self) -> RoundReport:
        now = self.clock()
        entries = self.store.list_index()
        work = plan_round(entries, now, self.store.list_throttles())
        lease = timedelta(seconds=min(max(3 * self.settings.poll_seconds, 10), 300))
        self.store.set_next_poll((tracking_id, now + lease) for w in work for tracking_id in w.tracking_ids)
        queue = self.storage.queue(self.settings.poll_queue)
        for item in work:
            queue.send_message(item.to_message())
        return RoundReport(running=len(entries), due=sum(len(w.tracking_ids) for w in work), messages=len(work))

    def handle_poll_message(self, text: str) -> PollReport:
        return self.poller.poll(PollWork.from_message(text))

    # -- delivery ----------------------------------------------------------------------------------------------
    def handle_delivery_message(self, text: str) -> str:
        """One delivery attempt; returns what happened: delivered, retry, deadletter or dropped."""
        task = DeliveryTask.from_message(text)
        item = self.store.get(task.tracking_id)
        record = self.store.get_subscriber(task.tracking_id, task.subscriber)
        if item is None or record is None or not item.ended:
            log.info("delivery for %s dropped: job or subscriber no longer tracked", task.tracking_id)
            return "dropped"
        callback = task.target == CALLBACK_TARGET
        url = record.subscriber.callback_url if callback else next(
            (u for u in self.settings.webhook_urls if webhook_target(u) == task.target), None
        )
        if not url:
            log.info("delivery for %s dropped: target no longer configured", task.tracking_id)
            return "dropped"
        body = event_bytes(item, record)
        event = json.loads(body)
        outcome = self.sender.send(url, event["id"], body, callback=callback)
        if outcome.delivered:
            return "delivered"
        now = self.clock()
        if outcome.retry_in is not None:
            # Retried for the whole window: the last attempt is made when the window closes.
            left = (retry_deadline(task, self.settings.delivery_retry_hours, now) - now).total_seconds()
            delay = min(left, max(retry_delay(task.attempt, self.settings.delivery_first_retry_seconds),
                                  outcome.retry_in))
            if left > 0:
                self.storage.queue(self.settings.deliver_queue).send_message(
                    task.next_attempt().to_message(), visibility_timeout=max(1, math.ceil(delay))
                )
                log.info("delivery attempt %d for %s failed (%s); next in %.0f s", task.attempt,
                         task.tracking_id, outcome.reason, delay)
                return "retry"
            reason = f"not delivered within {self.settings.delivery_retry_hours:g} hours; last: {outcome.reason}"
        else:
            reason = outcome.reason
        self.storage.queue(self.settings.deadletter_queue).send_message(
            deadletter_message(task, url, reason, event, now)
        )
        log.warning("event %s dead-lettered: %s", event["id"], reason)
        return "deadletter"


def _wire_size(text: str) -> int:
    """Bytes ``text`` takes in a queue request body (XML-escaped UTF-8)."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    return len(escaped.replace("'", "&apos;").encode("utf-8"))
