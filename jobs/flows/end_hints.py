"""End hints: when a running job can end at the earliest, from what Azure and the table already say.

Without a fresh detector, vault rounds list a vault every round for as long as any of its jobs runs. Most of those
lists only say "still running". A hint lets a job rest until shortly before it can end (``PollPolicy.next_poll``):
its vault is listed only when one of its jobs is near its end, on the vault's long grid otherwise.

Two sources, the earlier of the two wins:
- **history**: how long the same entity's earlier jobs of the same type and operation took (``TableDurationLog``,
  shared by every instance), from the job's ``startTime``. A new job is expected to take at least ``SAFETY`` of the
  shortest of them.
- **Azure's estimate**: a VM job's ``estimatedRemainingDuration`` and ``progressPercentage``, in the detailed job
  only (a GET: a list's summary has no ``extendedInfo``), so used when a GET was made anyway.

A job that ends before its hint is found at the next point of its vault's long grid (``JOBS_MAX_POLL_INTERVAL_SECONDS``
at most): a hint only ever delays a result by that much, and the benchmark measures how often it does.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from jobs.domain.azure_time import parse_time
from jobs.domain.tracked_item import TrackedItem

__all__ = ["SAFETY", "DurationLog", "EndHints", "history_key"]

log = logging.getLogger(__name__)

SAFETY = 0.8  # a job is expected to take at least this share of its shortest estimate
MIN_SAMPLES = 1  # earlier jobs of an entity needed before its history is trusted
SUCCESS = ("Completed", "CompletedWithWarnings")  # only these took their whole course
CACHE_FOR = timedelta(minutes=15)  # how long an instance reuses an entity's durations it read
CACHE_SIZE = 20_000


class DurationLog(Protocol):
    """Where the durations of earlier jobs are kept (``jobs.storage.duration_log.TableDurationLog``)."""

    def get_durations(self, key: str) -> list[float]: ...

    def add_duration(self, key: str, seconds: float) -> list[float]: ...


class JobFacts(Protocol):
    """What the hints ask of a provider (``jobs.providers.base.Provider``)."""

    def event_fields(self, job: dict[str, Any] | None) -> dict[str, Any]: ...

    def progress(self, job: dict[str, Any] | None) -> tuple[float | None, float | None]: ...


def history_key(vault_key: str, fields: dict[str, Any]) -> str | None:
    """The duration log's key for a job's entity, job type and operation; ``None`` without an entity."""
    entity = fields.get("entityFriendlyName")
    if not isinstance(entity, str) or not entity:
        return None
    text = "\n".join([vault_key, entity.lower(), str(fields.get("jobType") or "").lower(),
                      str(fields.get("operation") or "").lower()])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass
class EndHints:
    """Computes a running job's ``expected_end_at`` and records the durations of the jobs that completed. A
    failure of the table costs the hint, never the poll."""

    durations: DurationLog
    safety: float = SAFETY
    _cache: dict[str, tuple[datetime, list[float]]] = field(default_factory=dict)

    def expected_end(self, item: TrackedItem, provider: JobFacts, now: datetime, *,
                     detailed: bool = False) -> datetime | None:
        """When ``item`` (a running job) can end at the earliest, or ``None`` when nothing says. Azure's estimate is
        read only from a job just read in detail (``detailed``); otherwise the estimate made then still stands."""
        if item.kind != "job" or item.ended or item.resource is None:
            return None
        fields = provider.event_fields(item.resource)
        candidates: list[datetime] = []
        started = parse_time(fields.get("startTime"))
        key = history_key(item.vault.key, fields)
        if started is not None and key is not None:
            durations = self._durations(key, now)
            if len(durations) >= MIN_SAMPLES:
                candidates.append(started + timedelta(seconds=self.safety * min(durations)))
        if detailed:
            remaining, percent = provider.progress(item.resource)
            if remaining is not None:
                candidates.append(now + timedelta(seconds=self.safety * remaining))
            if percent is not None and started is not None:
                elapsed = max(0.0, (now - started).total_seconds())
                candidates.append(now + timedelta(seconds=self.safety * elapsed * (100 - percent) / percent))
        elif item.expected_end_at is not None:
            candidates.append(item.expected_end_at)
        return min(candidates) if candidates else None

    def record(self, item: TrackedItem, provider: JobFacts) -> None:
        """Keeps the duration of a job that completed, for the entity's next job."""
        if item.kind != "job" or item.result_status not in SUCCESS or item.resource is None:
            return
        fields = provider.event_fields(item.resource)
        key = history_key(item.vault.key, fields)
        started, ended = parse_time(fields.get("startTime")), parse_time(fields.get("endTime"))
        if key is None or started is None or ended is None or ended <= started:
            return
        try:
            self._cache[key] = (ended, self.durations.add_duration(key, (ended - started).total_seconds()))
        except Exception as exc:  # a measure, never a reason to hold a result back
            log.warning("recording the duration of %s failed: %s", item.tracking_id, exc)

    def _durations(self, key: str, now: datetime) -> list[float]:
        """The entity's durations, read once per ``CACHE_FOR`` (other instances add to them meanwhile)."""
        cached = self._cache.get(key)
        if cached is None or now - cached[0] >= CACHE_FOR or now < cached[0]:
            try:
                cached = (now, self.durations.get_durations(key))
            except Exception as exc:
                log.warning("reading earlier durations failed: %s", exc)
                return []
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = cached
        return cached[1]
