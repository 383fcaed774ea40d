"""The poll round: which running jobs are due, handed vault by vault to the poll queue.

The timer's round reads the running index only, picks the items that are due, skips subscriptions inside a
Retry-After window, groups the rest by vault, leases them and hands each group to a worker through the poll queue:
queue triggers are how Functions scales out. A small round (``JOBS_INLINE_POLL_MAX`` due items at most) is polled
in the timer function itself, under the same leases: on Azure each queue hop may wait up to the host's
``maxPollingInterval`` when the queue was idle, which is most of a result's latency once the reads are few. Inline
polling has a time budget (``inline_budget_seconds``): no read starts after it, and what is left goes through the
poll queue under the same lease, so a slow or hanging ARM never holds the timer past host.json's
``functionTimeout``.

Watched vaults (``jobs.flows.watches``) are listed first, through ``discover`` within half the round's time
budget: the jobs a listing finds are due at once, so the same round polls them.

With Azure Resource Graph on (``JOBS_RESOURCE_GRAPH``), the round also asks it, in one query, which running jobs
have ended: those are due at once, whatever their schedule, unless a lease holds them: a worker has them already
(maybe inside a slow read), and a second round must not read them again. The detector only hastens: a job it does
not show is still found on its own schedule (its vault's list, then its GET).

A lease is ``NextPollAt`` moved past the round plus a token (``Lease``) written on each index row and carried in
the message. A worker polls only the items whose row still holds its message's token, and clears it when it writes
their next poll. So a job is polled once per lease, however late its message is read: a lease whose message still
waits in the poll queue is not handed out again (unless it is older than ``STALE_LEASES`` leases, when its message
must be lost), and a copy that was handed out anyway is skipped by the worker that reads the older one.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from azure.core.exceptions import HttpResponseError

from jobs.domain.tracked_item import IndexEntry
from jobs.flows.policy import BATCH_SIZE, VAULT_BATCH_SIZE
from jobs.storage import JobStore, TableThrottleBoard
from jobs.telemetry import Observer, RoundReport

__all__ = ["BATCH_SIZE", "INLINE_BUDGET_MAX_SECONDS", "VAULT_BATCH_SIZE", "Detector", "PollWork", "RoundReport",
           "inline_budget_seconds", "lease_seconds", "plan_round", "run_round", "sweep"]

log = logging.getLogger(__name__)

STALE_LEASES = 10  # a lease this many lease periods old is handed out again even while the poll queue holds work
DEFAULT_RETENTION_DAYS = 30.0  # JOBS_RETENTION_DAYS
# The timer's inline polling starts no read after this many seconds. With the read in flight (the ARM client's
# worst case: 3 attempts of a 5 s connect and a 30 s read, plus backoff, about 110 s; a list, its pages), the
# round's table work and the sweep, the function ends well within host.json's functionTimeout (600 s).
INLINE_BUDGET_MAX_SECONDS = 240.0
INLINE_BUDGET_MIN_SECONDS = 10.0  # a short timer period still polls a small round inline


@dataclass(frozen=True)
class PollWork:
    """One poll-queue message: due items of one vault."""

    vault_id: str
    tracking_ids: tuple[str, ...]
    lease: str = ""  # the token the round wrote on each item's index row; "" polls them unchecked
    # Items a detector (Azure Resource Graph) showed as ended: the worker asks for their details straight away.
    ended: tuple[str, ...] = ()

    def to_message(self) -> str:
        data: dict[str, object] = {"kind": "poll", "vaultId": self.vault_id, "trackingIds": list(self.tracking_ids),
                                   "lease": self.lease}
        if self.ended:  # positions in trackingIds: a subset, kept small
            positions = {tracking_id: n for n, tracking_id in enumerate(self.tracking_ids)}
            data["ended"] = [positions[t] for t in self.ended if t in positions]
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_message(cls, text: str) -> PollWork:
        data = json.loads(text)
        tracking_ids = tuple(str(t) for t in data["trackingIds"])
        ended = tuple(tracking_ids[n] for n in data.get("ended") or ()
                      if isinstance(n, int) and 0 <= n < len(tracking_ids))
        return cls(vault_id=str(data["vaultId"]), tracking_ids=tracking_ids, lease=str(data.get("lease") or ""),
                   ended=ended)


class Detector(Protocol):
    """Tells which running items have ended in Azure, for many at once (``jobs.providers.graph``)."""

    def list_ended(self, entries: list[IndexEntry]) -> set[str]:
        """The tracking ids among ``entries`` that Azure shows as ended; never raises for Azure's failures."""
        ...


def plan_round(
    entries: list[IndexEntry], now: datetime, blocked: dict[str, datetime], batch_size: int = BATCH_SIZE, *,
    lease: str = "", backlog: bool = False, stale_after: timedelta | None = None, ended: frozenset[str] = frozenset(),
) -> list[PollWork]:
    """Due items grouped by vault in batches under the lease token ``lease``, leaving out subscriptions blocked
    until later than ``now`` and, while the poll queue holds work (``backlog``), items whose lease is still out
    (unless it is older than ``stale_after``). Items in ``ended`` (a detector saw them end) are due whatever their
    schedule, and named in their batch's ``ended``."""
    by_vault: dict[str, list[IndexEntry]] = {}
    for entry in entries:
        if entry.next_poll_at > now and (entry.tracking_id not in ended or entry.lease):
            continue  # not due; or leased to a worker that may be reading it now: the lease decides, ended or not
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
            ids = tuple(e.tracking_id for e in chunk)
            work.append(PollWork(chunk[0].vault_id, ids, lease, tuple(t for t in ids if t in ended)))
    return work


def lease_seconds(poll_seconds: float) -> float:
    """How long a handed-out job is left to its worker before a round may hand it out again."""
    return min(max(3 * poll_seconds, 10), 300)


def inline_budget_seconds(poll_seconds: float) -> float:
    """How long the timer's round may poll inline: one timer period (the next round is due then), at least
    ``INLINE_BUDGET_MIN_SECONDS`` and at most ``INLINE_BUDGET_MAX_SECONDS`` (host.json's functionTimeout)."""
    return min(max(float(poll_seconds), INLINE_BUDGET_MIN_SECONDS), INLINE_BUDGET_MAX_SECONDS)


def run_round(
    store: JobStore, board: TableThrottleBoard, send: Callable[[str], object], now: datetime, poll_seconds: float,
    retention_days: float = DEFAULT_RETENTION_DAYS, *, backlog: int = 0, detector: Detector | None = None,
    poll: Callable[[PollWork, float], PollWork | None] | None = None, inline_max: int = 0,
    batch_size: int = BATCH_SIZE, observer: Observer | None = None,
    monotonic: Callable[[], float] = time.monotonic, inline_seconds: float | None = None,
    discover: Callable[[datetime, float], object] | None = None,
) -> RoundReport:
    """One round: leases the due items and sends one poll message per vault batch through ``send``; then sweeps
    a bounded number of jobs that ended more than ``retention_days`` ago. ``backlog`` is how many messages the
    poll queue holds (approximately) as the round starts.

    With a ``detector``, the round reads every running item (not only the due ones) and asks it which have ended:
    those are due now, whatever their schedule (unless leased). A round of at most ``inline_max`` due items is
    polled here through ``poll(work, until)``, under the same leases, saving the poll queue's hop; a larger one fans
    out through the queue, which is how Functions spreads work over instances. Inline polling starts no read once
    ``monotonic()`` passed ``inline_seconds`` (``inline_budget_seconds(poll_seconds)`` unless given): what ``poll``
    left unread, and the batches not started, go through the poll queue under the same lease.

    ``discover(now, until)`` (the watches) runs first, starting no read after ``until``: half the inline budget. A
    failure there is one WARNING: the round goes on with the jobs already on record."""
    started = monotonic()
    budget = inline_budget_seconds(poll_seconds) if inline_seconds is None else inline_seconds
    if discover is not None:
        try:
            discover(now, started + budget / 2)
        except Exception as exc:  # storage or a bug: the watches are listed again next round
            log.warning("listing the watched vaults failed (%s: %s); trying again next round", type(exc).__name__,
                        str(exc)[:300])
    ended: frozenset[str] = frozenset()
    if detector is not None:
        entries = store.list_index()
        ended = frozenset(detector.list_ended([e for e in entries if e.kind == "job"]))
    else:
        entries = store.list_due(now)
    lease = timedelta(seconds=lease_seconds(poll_seconds))
    token = uuid.uuid4().hex[:16]
    work = plan_round(entries, now, board.list_throttles(), batch_size, lease=token, backlog=backlog > 0,
                      stale_after=STALE_LEASES * lease, ended=ended)
    store.set_next_poll(((tracking_id, now + lease) for w in work for tracking_id in w.tracking_ids), lease=token)
    due = sum(len(w.tracking_ids) for w in work)
    report = RoundReport(running=len(entries), due=due, messages=0, detected=len(ended))
    report.whole_index = detector is not None  # the detector read every running row
    inline = poll is not None and 0 < due <= inline_max
    until = started + budget
    for batch in work:
        queued: PollWork | None = batch
        if inline and poll is not None and monotonic() < until:
            try:
                queued = poll(batch, until)  # what the round's time did not cover, under the same lease
                report.inline += 1
            except Exception as exc:  # the batch's leases stand: it goes through the poll queue after all
                log.warning("polling %s in the round failed (%s: %s); sending it to the poll queue", batch.vault_id,
                            type(exc).__name__, str(exc)[:300])
        if queued is not None:
            send(queued.to_message())
            report.messages += 1
    report.swept = sweep(store, now, retention_days)
    if observer is not None:
        observer.round_finished(report)
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
