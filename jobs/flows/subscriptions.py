"""Subscriptions: who follows an item, and the capabilities that stand for them.

The rules of who gets a result, whatever adapter asked: an item is put on record with its subscriber; an operation
that named its jobs hands its subscribers on to them; a status URL's ``sig`` is a capability for one subscription;
a subscriber leaves by its capability or by its callback URL, and a running item nobody follows any more is not
tracked any longer (an ended one keeps its history until the sweep).

A capability is 32 random bytes (``secrets.token_urlsafe``) of which only the SHA-256 is stored, on a row of the
item's partition with the subscriber it was issued for; a request's token is hashed, looked up by that hash and
compared in constant time. docs/reference.md ("HTTP API") says why random tokens rather than an HMAC.

Subscribers that give the same fields (none at all, say) share one row and one event, but each who subscribed
holds it: every status URL is a holder (its capability row), and a queue message is one too (a row of the same
kind, ``cap-message-<key>``, which no token can hash to). A ``DELETE`` on a status URL drops that URL; the
subscriber goes only when nobody holds it any more, so one HTTP caller's ``DELETE`` never costs a queue producer
(or another caller) its result. Rows written before holders were recorded have none but their status URLs' own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jobs.domain.references import JobRef
from jobs.domain.tracked_item import Subscriber, SubscriberRecord, TrackedItem
from jobs.domain.tracking import end_failed_job
from jobs.flows.policy import PollPolicy
from jobs.flows.result_events import event_bytes, named_its_jobs
from jobs.providers import Providers
from jobs.storage import JobStore

__all__ = ["CapabilityRefused", "StatusView", "Subscriptions", "token_hash"]

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
_TRACKING_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,250}")
# The holder row a queue message leaves (``cap-message-<subscriber key>``): never a SHA-256 hex, so no token finds it.
_MESSAGE_HOLDER = "message-"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


class CapabilityRefused(Exception):
    """A capability that grants nothing: ``status`` 401 when none was given, 404 when it is not one of ours (or
    the item is gone), so nothing tells whether an item exists."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class StatusView:
    """What a subscriber's status URL answers: running (Azure's status, seconds until the next poll) or ended
    (the result event of each job it follows: one, or the jobs an operation named)."""

    tracking_id: str
    running: bool
    status: str = ""
    retry_after: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Subscriptions:
    store: JobStore
    policy: PollPolicy
    providers: Providers
    clock: Callable[[], datetime]
    poll_seconds: float
    # Whether the detector asks about a vault locator's jobs every round (``DetectorHealth.covers``).
    watched: Callable[[str], bool] = lambda locator: False

    # -- on record -----------------------------------------------------------------------------------------------
    def add(self, new: TrackedItem, subscriber: Subscriber, now: datetime, *, by_message: bool = False) -> TrackedItem:
        """Puts ``new`` on record (or finds it there), schedules its first poll and adds ``subscriber``; returns the
        item as stored now (it may have ended meanwhile). ``by_message``: a queue message subscribed, which holds
        the subscription for good (a status URL, the other holder, is issued by ``issue_capability``)."""
        item = self._create(new, now)
        if by_message:  # the holder first: a crash in between leaves a holder of nothing, never a lone subscriber
            self.store.add_capability(item.tracking_id, _MESSAGE_HOLDER + subscriber.key, subscriber.key)
        self.store.add_subscriber(item.tracking_id, subscriber)
        return self.store.get(item.tracking_id) or item

    def _create(self, new: TrackedItem, now: datetime) -> TrackedItem:
        """``new`` on record (or the item already there), with its first poll scheduled while it runs."""
        item, _ = self.store.create(new)
        if not item.ended:
            self.store.ensure_index(item, self.policy.first_poll(item, now))
        return item

    def get_subscriber(self, tracking_id: str, key: str) -> SubscriberRecord | None:
        return self.store.get_subscriber(tracking_id, key)

    def list_subscribers(self, tracking_id: str) -> list[SubscriberRecord]:
        return self.store.list_subscribers(tracking_id)

    def hand_on(self, operation: TrackedItem) -> list[TrackedItem]:
        """The operation named its jobs: each is tracked from now with the operation's subscribers. Returns the
        jobs, some already ended (Azure failed to create them). Idempotent."""
        subscribers = self.store.list_subscribers(operation.tracking_id)
        now = self.clock()
        failed = self.providers.for_vault(operation.vault).failed_jobs(operation.resource)
        jobs = []
        for job_id in operation.named_jobs or []:
            ref = JobRef.create(operation.vault, job_id)
            deadline = max(operation.deadline_at, now + timedelta(minutes=1))
            new = TrackedItem.for_job(ref, now, deadline)
            if job_id.lower() in failed:  # Azure failed to create it: its result now, never a poll
                end_failed_job(new, failed[job_id.lower()], now)
            job = self._create(new, now)
            for record in subscribers:
                self.store.add_subscriber(job.tracking_id, record.subscriber)
            jobs.append(job)
        return jobs

    # -- capabilities --------------------------------------------------------------------------------------------
    def issue_capability(self, tracking_id: str, subscriber_key: str) -> str:
        """A new token standing for ``subscriber_key``'s subscription to ``tracking_id``; only its hash is kept."""
        token = secrets.token_urlsafe(32)
        self.store.add_capability(tracking_id, token_hash(token), subscriber_key)
        return token

    def resolve(self, tracking_id: str, token: str | None) -> str:
        """The subscriber key ``token`` was issued for, else ``CapabilityRefused``."""
        if not token:
            raise CapabilityRefused(401, "this URL needs the sig that POST /api/jobs returned in its Location header")
        if not _TOKEN.fullmatch(token) or not _TRACKING_ID.fullmatch(tracking_id):
            raise CapabilityRefused(404, "unknown")
        wanted = token_hash(token)
        found = self.store.get_capability(tracking_id, wanted)
        if found is None or not hmac.compare_digest(found[0].encode(), wanted.encode()):
            raise CapabilityRefused(404, "unknown")
        return found[1]

    # -- what a subscriber sees ----------------------------------------------------------------------------------
    def status(self, tracking_id: str, token: str | None) -> StatusView:
        """The status a capability grants; ``CapabilityRefused`` (404) once the item or the subscription is gone."""
        granted = self.resolve(tracking_id, token)
        item = self.store.get(tracking_id)
        record = self.store.get_subscriber(tracking_id, granted)
        if item is None or record is None:  # stopped, swept, or this subscriber unsubscribed
            raise CapabilityRefused(404, "gone")
        targets = self.targets(item)
        running = [t for t in targets if not t.ended]
        if running or not targets:
            status = (running[0].status if running else None) or "NotStarted"
            return StatusView(tracking_id, True, status, self.retry_after(running or [item]))
        return StatusView(tracking_id, False, events=[json.loads(event_bytes(t, record))
                                                      for t in targets])

    def targets(self, item: TrackedItem) -> list[TrackedItem]:
        """What a status answers for: the item, or, once an operation named its jobs, those jobs."""
        if not named_its_jobs(item):
            return [item]
        jobs = (self.store.get(JobRef.create(item.vault, job_id).key) for job_id in item.named_jobs or [])
        return [job for job in jobs if job is not None]

    def retry_after(self, items: list[TrackedItem | None]) -> int:
        """Seconds until the tracker may next learn something of ``items``: their soonest next poll (a due row
        waits for the next round), or the next round when the detector watches them (it asks about every running
        job it covers each round). At least 1, at most one poll period."""
        now = self.clock()
        period = self.poll_seconds
        waits = []
        for item in items:
            if item is None or item.ended:
                continue
            entry = self.store.get_index_entry(item.tracking_id)
            seconds = (entry.next_poll_at - now).total_seconds() if entry else period
            # never past one period: a job resting on its end hint may still end sooner than expected
            waits.append(min(seconds, period) if seconds > 0 else period)
            if self.watched(item.vault_id):
                waits.append(period)
        return max(1, math.ceil(min(waits, default=period)))

    def retry_after_for(self, tracking_id: str) -> int:
        return self.retry_after([self.store.get(tracking_id)])

    # -- leaving -------------------------------------------------------------------------------------------------
    def unsubscribe(self, tracking_id: str, token: str | None, callback_url: str | None = None) -> None:
        """Drops the subscription ``token`` stands for (or, with ``callback_url``, every subscriber of the item
        with that callback), from the item and from the jobs it named; ``CapabilityRefused`` when it grants
        nothing."""
        granted = self.resolve(tracking_id, token)
        item = self.store.get(tracking_id)
        if item is None or self.store.get_subscriber(tracking_id, granted) is None:
            raise CapabilityRefused(404, "gone")
        if not callback_url:  # this URL lets go; others who hold the same subscription keep it
            self.store.remove_capability(tracking_id, token_hash(str(token)))
            if granted in self.store.capability_holders(tracking_id):
                log.info("a status URL of %s let go; its subscriber has other holders", tracking_id)
                return
        dropped = 0
        for target in [item.tracking_id, *(t.tracking_id for t in self.targets(item) if t is not item)]:
            if callback_url:
                keys = [r.key for r in self.store.list_subscribers(target)
                        if r.subscriber.callback_url == callback_url]
            elif target != item.tracking_id and granted in self.store.capability_holders(target):
                keys = []  # the job itself was subscribed to as well (its own status URL, or a message)
            else:
                keys = [granted]
            for key in keys:
                dropped += self._drop(target, key, callback_url)
            self._stop_if_unsubscribed(target)
        if callback_url and not dropped:
            raise CapabilityRefused(404, "no subscriber of this job has that callbackUrl")

    def add_alias(self, tracking_id: str, subscriber_key: str, alias: str) -> None:
        """Lets ``unsubscribe_callback(alias)`` find this subscription: a Logic Apps webhook action's identity (its
        unsubscribe call cannot name the callback URL)."""
        self.store.add_callback_alias(alias, tracking_id, subscriber_key)

    def unsubscribe_callback(self, callback_url: str, correlation_id: str | None = None) -> int:
        """Drops every subscriber with ``callback_url`` (or the alias ``add_alias`` recorded), whatever its item
        (the Logic Apps unsubscribe), and from the jobs an item named; with ``correlation_id``, only subscribers
        that gave it. Returns how many subscriptions it dropped (0: nothing matched)."""
        dropped = 0
        for tracking_id, key in self.store.list_callback_subscriptions(callback_url):
            if correlation_id is not None:
                record = self.store.get_subscriber(tracking_id, key)
                if record is None or record.subscriber.correlation_id != correlation_id:
                    continue
            item = self.store.get(tracking_id)
            named = [t.tracking_id for t in self.targets(item) if t is not item] if item is not None else []
            for target in [tracking_id, *named]:
                dropped += self._drop(target, key, callback_url)
                self._stop_if_unsubscribed(target)
        log.info("unsubscribed a callback from %d subscription(s)", dropped)
        return dropped

    def _drop(self, tracking_id: str, key: str, callback_url: str | None) -> bool:
        """Removes a subscriber and the holder a message left for it (a later message starts afresh)."""
        removed = self.store.remove_subscriber(tracking_id, key, callback_url=callback_url)
        self.store.remove_capability(tracking_id, _MESSAGE_HOLDER + key)
        return removed

    def _stop_if_unsubscribed(self, tracking_id: str) -> None:
        """A running item nobody subscribes to any more is not tracked any longer; an ended one keeps its history."""
        item = self.store.get(tracking_id)
        if item is not None and not item.ended and not self.store.list_subscribers(tracking_id):
            self.store.delete(tracking_id)
            log.info("stopped tracking %s: its last subscriber unsubscribed", tracking_id)
