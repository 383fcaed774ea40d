"""The poll round: which running jobs are due, handed vault by vault to the poll queue.

The timer's round reads the running index only, picks the items that are due, skips subscriptions inside a
Retry-After window, groups the rest by vault, leases them (``NextPollAt`` moved past the round) and hands each group
to a worker through the poll queue: queue triggers are how Functions scales out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from jobs.domain.tracked_item import IndexEntry
from jobs.storage import JobStore, TableThrottleBoard

__all__ = ["BATCH_SIZE", "PollWork", "RoundReport", "lease_seconds", "plan_round", "run_round"]

BATCH_SIZE = 50


@dataclass(frozen=True)
class PollWork:
    """One poll-queue message: due items of one vault."""

    vault_id: str
    tracking_ids: tuple[str, ...]

    def to_message(self) -> str:
        return json.dumps({"kind": "poll", "vaultId": self.vault_id, "trackingIds": list(self.tracking_ids)},
                          separators=(",", ":"))

    @classmethod
    def from_message(cls, text: str) -> PollWork:
        data = json.loads(text)
        return cls(vault_id=str(data["vaultId"]), tracking_ids=tuple(str(t) for t in data["trackingIds"]))


@dataclass
class RoundReport:
    running: int
    due: int
    messages: int


def plan_round(
    entries: list[IndexEntry], now: datetime, blocked: dict[str, datetime], batch_size: int = BATCH_SIZE
) -> list[PollWork]:
    """Due items grouped by vault in batches, leaving out subscriptions blocked until later than ``now``."""
    by_vault: dict[str, list[IndexEntry]] = {}
    for entry in entries:
        if entry.next_poll_at > now:
            continue
        until = blocked.get(entry.subscription_id.lower())
        if until is not None and until > now:
            continue
        by_vault.setdefault(entry.vault_id.lower(), []).append(entry)
    work = []
    for group in by_vault.values():
        group.sort(key=lambda e: e.next_poll_at)
        for start in range(0, len(group), batch_size):
            chunk = group[start : start + batch_size]
            work.append(PollWork(chunk[0].vault_id, tuple(e.tracking_id for e in chunk)))
    return work


def lease_seconds(poll_seconds: float) -> float:
    """How long a handed-out job is left to its worker before a round may hand it out again."""
    return min(max(3 * poll_seconds, 10), 300)


def run_round(
    store: JobStore, board: TableThrottleBoard, send: Callable[[str], object], now: datetime, poll_seconds: float
) -> RoundReport:
    """One round: leases the due items and sends one poll message per vault batch through ``send``."""
    entries = store.list_index()
    work = plan_round(entries, now, board.list_throttles())
    lease = timedelta(seconds=lease_seconds(poll_seconds))
    store.set_next_poll((tracking_id, now + lease) for w in work for tracking_id in w.tracking_ids)
    for item in work:
        send(item.to_message())
    return RoundReport(running=len(entries), due=sum(len(w.tracking_ids) for w in work), messages=len(work))
