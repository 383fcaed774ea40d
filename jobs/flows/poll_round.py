"""The poll round: which running jobs are due, handed vault by vault to the poll queue.

The timer's round reads the running index only, picks the items that are due, skips subscriptions inside a
Retry-After window, groups the rest by vault, leases them and hands each group to a worker through the poll queue:
queue triggers are how Functions scales out.

A lease is ``NextPollAt`` moved past the round plus a token (``Lease``) written on each index row and carried in
the message. A worker polls only the items whose row still holds its message's token, and clears it when it writes
their next poll. So a job is polled once per lease, however late its message is read: a lease whose message still
waits in the poll queue is not handed out again (unless it is older than ``STALE_LEASES`` leases, when its message
must be lost), and a copy that was handed out anyway is skipped by the worker that reads the older one.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from azure.core.exceptions import HttpResponseError

from jobs.domain.tracked_item import IndexEntry
from jobs.storage import JobStore, TableThrottleBoard

__all__ = ["BATCH_SIZE", "PollWork", "RoundReport", "lease_seconds", "plan_round", "run_round", "sweep"]

log = logging.getLogger(__name__)

BATCH_SIZE = 50
STALE_LEASES = 10  # a lease this many lease periods old is handed out again even while the poll queue holds work
DEFAULT_RETENTION_DAYS = 30.0  # JOBS_RETENTION_DAYS


@dataclass(frozen=True)
class PollWork:
    """One poll-queue message: due items of one vault."""

    vault_id: str
    tracking_ids: tuple[str, ...]
    lease: str = ""  # the token the round wrote on each item's index row; "" polls them unchecked

    def to_message(self) -> str:
        return json.dumps(
            {"kind": "poll", "vaultId": self.vault_id, "trackingIds": list(self.tracking_ids), "lease": self.lease},
            separators=(",", ":"),
        )

    @classmethod
    def from_message(cls, text: str) -> PollWork:
        data = json.loads(text)
        return cls(vault_id=str(data["vaultId"]), tracking_ids=tuple(str(t) for t in data["trackingIds"]),
                   lease=str(data.get("lease") or ""))


@dataclass
class RoundReport:
    running: int  # index rows the round read: since the due-filter, the due ones only
    due: int
    messages: int
    swept: int = 0  # ended jobs removed after JOBS_RETENTION_DAYS


def plan_round(
    entries: list[IndexEntry], now: datetime, blocked: dict[str, datetime], batch_size: int = BATCH_SIZE, *,
    lease: str = "", backlog: bool = False, stale_after: timedelta | None = None,
) -> list[PollWork]:
    """Due items grouped by vault in batches under the lease token ``lease``, leaving out subscriptions blocked
    until later than ``now`` and, while the poll queue holds work (``backlog``), items whose lease is still out
    (unless it is older than ``stale_after``)."""
    by_vault: dict[str, list[IndexEntry]] = {}
    for entry in entries:
        if entry.next_poll_at > now:
            continue
        if entry.lease and backlog and (stale_after is None or now - entry.next_poll_at < stale_after):
            continue  # its message still waits to be read: handing it out again would only double the reads
        until = blocked.get(entry.subscription_id.lower())
        if until is not None and until > now:
            continue
        by_vault.setdefault(entry.vault_id.lower(), []).append(entry)
    work = []
    for group in by_vault.values():
        group.sort(key=lambda e: e.next_poll_at)
        for start in range(0, len(group), batch_size):
            chunk = group[start : start + batch_size]
            work.append(PollWork(chunk[0].vault_id, tuple(e.tracking_id for e in chunk), lease))
    return work


def lease_seconds(poll_seconds: float) -> float:
    """How long a handed-out job is left to its worker before a round may hand it out again."""
    return min(max(3 * poll_seconds, 10), 300)


def run_round(
    store: JobStore, board: TableThrottleBoard, send: Callable[[str], object], now: datetime, poll_seconds: float,
    retention_days: float = DEFAULT_RETENTION_DAYS, *, backlog: int = 0,
) -> RoundReport:
    """One round: leases the due items and sends one poll message per vault batch through ``send``; then sweeps
    a bounded number of jobs that ended more than ``retention_days`` ago. ``backlog`` is how many messages the
    poll queue holds (approximately) as the round starts."""
    entries = store.list_due(now)
    lease = timedelta(seconds=lease_seconds(poll_seconds))
    token = uuid.uuid4().hex[:16]
    work = plan_round(entries, now, board.list_throttles(), lease=token, backlog=backlog > 0,
                      stale_after=STALE_LEASES * lease)
    store.set_next_poll(((tracking_id, now + lease) for w in work for tracking_id in w.tracking_ids), lease=token)
    for item in work:
        send(item.to_message())
    report = RoundReport(running=len(entries), due=sum(len(w.tracking_ids) for w in work), messages=len(work))
    report.swept = sweep(store, now, retention_days)
    return report


def sweep(store: JobStore, now: datetime, retention_days: float) -> int:
    """Removes up to ``SWEEP_LIMIT`` jobs ended more than ``retention_days`` before ``now``. A storage error is
    one WARNING, never a failed round: the jobs are still there next round."""
    try:
        swept = store.sweep_ended(now - timedelta(days=retention_days))
    except HttpResponseError as exc:
        log.warning("sweeping ended jobs failed (%s); trying again next round", exc.reason or exc.status_code)
        return 0
    if swept:
        log.info("removed %d jobs ended more than %g days ago", swept, retention_days)
    return swept
