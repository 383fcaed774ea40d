"""How far the detector (Azure Resource Graph) can be trusted, measured on the jobs it covers.

Every time the tracker learns that a job ended, it knows Azure's ``endTime`` and who told it first: the detector,
the vault's list (the job left it) or the job's own GET. When the detector told first, its lag is measured at once;
otherwise the job stays on the detector's questions (``detector-pending`` in the table) until it shows the end or
``PENDING_WAIT_PERIODS`` pass: so its lag is measured whatever the schedule found first. The samples are shared by
every instance (``jobs.storage.detector_log``). Each round assesses the newest ``WINDOW`` of them, with the pending
ends already older than the fresh bound (lower bounds of their lag):

- ``fresh``: the p95 of the detector's lag is at most ``FRESH_LAG_PERIODS`` poll periods (it includes the wait for
  the round that asks): the vaults of the kinds it covers may rest up to ``JOBS_MAX_POLL_INTERVAL_SECONDS``, and a
  result comes at most about one period after the fixed loop's;
- ``late``: it is more; ``unproven``: fewer than ``MIN_SAMPLES``; ``unavailable``: its last round was not answered
  in full (throttled, quota spent, refused, unreachable). In each of these the vaults are listed every round, so
  results come within one poll period whatever Resource Graph does.

A job kind the detector does not cover (cross-region restores) is always on the every-round schedule. Each vault
kind the detector covers is measured and assessed apart (``DetectorHealthByKind``): Recovery Services jobs and
Backup vault jobs may reach Resource Graph with different lags, and one kind's lag never rests the other's vaults.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from jobs.domain.tracked_item import IndexEntry
from jobs.storage.detector_log import LagSample, PendingEnd, TableDetectorLog
from jobs.telemetry import Observer

__all__ = ["FRESH_LAG_PERIODS", "MIN_SAMPLES", "WINDOW", "DetectorAssessment", "DetectorHealth",
           "DetectorHealthByKind", "MeasuringDetector", "assess"]

WINDOW = 40  # the newest samples an assessment looks at
MIN_SAMPLES = 10  # fewer than this: unproven
FRESH_LAG_PERIODS = 2.0  # p95 of the detector's lag at most this many poll periods: fresh
PENDING_WAIT_PERIODS = 20.0  # an end the detector has not shown after this long is a "never" sample
KEEP_SAMPLES = 200  # the table keeps this many; older ones are trimmed now and then


@dataclass(frozen=True)
class DetectorAssessment:
    state: str  # "fresh", "late", "unproven" or "unavailable"
    samples: int = 0
    told_first: int = 0  # samples the detector told first
    lag_p50: float | None = None  # seconds from Azure's endTime to the detector showing it, over the samples
    lag_p95: float | None = None
    censored: bool = False  # some ends were never shown, or are still pending: the lag is at least the figure
    reason: str = ""
    assessed_at: datetime | None = None
    kind: str = ""  # the vault kind measured ("" for Recovery Services, "dataprotection" for Backup vaults)

    @property
    def fresh(self) -> bool:
        return self.state == "fresh"

    def describe(self) -> str:
        """One line: the state, the measure behind it, and what the tracker does about it."""
        measured = ""
        if self.samples:
            at_least = "at least " if self.censored else ""
            measured = (f"lag p50 {_seconds(self.lag_p50)}, p95 {at_least}{_seconds(self.lag_p95)} over "
                        f"{self.samples} ended jobs ({self.told_first} told first)")
        what = ("vaults rest up to JOBS_MAX_POLL_INTERVAL_SECONDS" if self.fresh
                else "vaults are listed every round")
        return "; ".join(part for part in (self.state, self.reason, measured, what) if part)

    def to_entity(self) -> dict[str, object]:
        values: dict[str, object] = {"State": self.state, "Samples": self.samples, "ToldFirst": self.told_first,
                                     "Censored": self.censored, "Reason": self.reason}
        if self.lag_p50 is not None:
            values["LagP50"] = float(self.lag_p50)
        if self.lag_p95 is not None:
            values["LagP95"] = float(self.lag_p95)
        if self.assessed_at is not None:
            values["AssessedAt"] = self.assessed_at
        return values

    @classmethod
    def from_entity(cls, values: dict[str, object]) -> DetectorAssessment:
        def number(name: str) -> float | None:
            value = values.get(name)
            return float(value) if isinstance(value, int | float) else None

        assessed = values.get("AssessedAt")
        return cls(state=str(values.get("State") or "unproven"), samples=int(number("Samples") or 0),
                   told_first=int(number("ToldFirst") or 0), lag_p50=number("LagP50"), lag_p95=number("LagP95"),
                   censored=bool(values.get("Censored")), reason=str(values.get("Reason") or ""),
                   assessed_at=assessed if isinstance(assessed, datetime) else None)


def assess(samples: Sequence[LagSample], unavailable: str | None, now: datetime, fresh_bound: float,
           overdue: Sequence[float] = ()) -> DetectorAssessment:
    """The assessment of the newest ``samples`` (newest first) and the ``overdue`` pending ends (their ages, each
    past ``fresh_bound``: the detector's lag is at least that), given whether the detector's last round was
    answered in full (``unavailable`` says why not). Fresh: the p95 lag is at most ``fresh_bound`` seconds."""
    window = list(samples[:WINDOW])
    lags = sorted([max(0.0, s.lag_seconds) for s in window] + [float(age) for age in overdue])
    told = sum(1 for s in window if s.source == "detector")
    p95 = _percentile(lags, 95)
    measured = {"samples": len(lags), "told_first": told, "lag_p50": _percentile(lags, 50), "lag_p95": p95,
                "censored": bool(overdue) or any(s.source == "never" for s in window), "assessed_at": now}
    if unavailable:
        return DetectorAssessment("unavailable", reason=f"Resource Graph {unavailable}", **measured)
    if len(lags) < MIN_SAMPLES:
        return DetectorAssessment("unproven", reason=f"{len(lags)} of {MIN_SAMPLES} ended jobs measured", **measured)
    if p95 is not None and p95 <= fresh_bound:
        return DetectorAssessment("fresh", **measured)
    return DetectorAssessment("late", reason=f"p95 lag over {fresh_bound:.0f} s", **measured)


def _percentile(ordered: list[float], percent: float) -> float | None:
    """The nearest-rank percentile of sorted values, or ``None`` when there are none."""
    if not ordered:
        return None
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} s"


@dataclass
class DetectorHealth:
    """The deployment's view of the detector: samples recorded by every instance, assessed by each round, read
    by an instance that runs no round once a poll period."""

    log: TableDetectorLog
    clock: Callable[[], datetime]
    covers: Callable[[str], bool]  # whether the detector is asked about a vault locator's jobs at all
    observer: Observer
    poll_seconds: float
    kind: str = ""  # the vault kind whose lag this is (``GraphDetector.kind_of``)
    _current: DetectorAssessment = field(default_factory=lambda: DetectorAssessment("unproven",
                                                                                    reason="not assessed yet"))
    _loaded_at: datetime | None = None
    _rounds: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def current(self) -> DetectorAssessment:
        """The newest assessment: this instance's own, or the table's once a poll period."""
        now = self.clock()
        with self._lock:
            stale = self._loaded_at is None or now - self._loaded_at >= timedelta(seconds=self.poll_seconds)
            if stale:
                self._loaded_at = now
        if stale:
            stored = self.log.get_assessment()
            if stored is not None:
                assessment = DetectorAssessment.from_entity(stored)
                with self._lock:
                    if (self._current.assessed_at is None or (assessment.assessed_at is not None
                                                              and assessment.assessed_at > self._current.assessed_at)):
                        self._current = assessment
        return self._current

    def fresh_for(self, locator: str) -> bool:
        """Whether ``locator``'s jobs may rest on the long interval: the detector covers them and is fresh."""
        return self.covers(locator) and self.current.fresh

    @property
    def fresh_bound(self) -> float:
        return FRESH_LAG_PERIODS * self.poll_seconds

    def record_end(self, tracking_id: str, locator: str, source: str, end_time: datetime | None,
                   learned_at: datetime, subscription_id: str = "") -> float | None:
        """A job the detector covers ended and ``source`` told the tracker first: the detector's lag when it was
        the detector, else the job joins the detector's questions until it shows the end. Returns the lag the
        tracker saw (``None`` without Azure's ``endTime``)."""
        if end_time is None or not self.covers(locator):
            return None
        lag = max(0.0, (learned_at - end_time).total_seconds())
        if source == "detector":
            self.log.add_sample(tracking_id, "detector", lag, learned_at)
        else:
            self.log.add_pending(PendingEnd(tracking_id, locator, subscription_id, end_time, learned_at))
        return lag

    def pending(self) -> list[PendingEnd]:
        """The ends the detector has not shown yet, to ask it about this round."""
        return self.log.list_pending()

    def settle(self, pending: Sequence[PendingEnd], shown: set[str]) -> list[float]:
        """After a round asked about ``pending``: those ``shown`` are samples of the detector's lag; those older
        than ``PENDING_WAIT_PERIODS`` are "never" samples; returns the ages of the rest past the fresh bound."""
        now = self.clock()
        overdue = []
        for end in pending:
            age = max(0.0, (now - end.end_time).total_seconds())
            if end.tracking_id in shown:
                self.log.add_sample(end.tracking_id, "shown", age, now)
                self.log.delete_pending(end.tracking_id)
            elif age >= PENDING_WAIT_PERIODS * self.poll_seconds:
                self.log.add_sample(end.tracking_id, "never", age, now)
                self.log.delete_pending(end.tracking_id)
            elif age > self.fresh_bound:
                overdue.append(age)
        return overdue

    def assess_round(self, unavailable: str | None, overdue: Sequence[float] = ()) -> DetectorAssessment:
        """A round's assessment, from the table's samples; written back for the other instances."""
        now = self.clock()
        assessment = assess(self.log.list_samples(WINDOW), unavailable, now, self.fresh_bound, overdue)
        if self.kind:
            assessment = replace(assessment, kind=self.kind)
        with self._lock:
            previous, self._current, self._loaded_at = self._current, assessment, now
            self._rounds += 1
            trim = self._rounds % 50 == 1
        self.log.put_assessment(assessment.to_entity())
        if trim:
            self.log.trim(KEEP_SAMPLES)
        self.observer.detector_assessed(assessment, previous.state != assessment.state)
        return assessment


class DetectorHealthByKind:
    """One ``DetectorHealth`` per vault kind the detector covers (``kind_of(locator)``: "" for the first provider,
    Recovery Services; ``backupvault`` for Backup vaults), each with its own samples, pending ends and assessment
    in the table; the same interface as one ``DetectorHealth``. ``current`` is the first kind's; ``assessments``
    has them all."""

    def __init__(self, healths: dict[str, DetectorHealth], kind_of: Callable[[str], str]) -> None:
        if not healths:
            raise ValueError("at least one kind of vault")
        self.healths = dict(healths)
        self.kind_of = kind_of
        self._first = next(iter(self.healths.values()))
        self._overdue: dict[str, list[float]] = {}

    @property
    def observer(self) -> Observer:
        """The observer every kind's health reports to (one for the tracker)."""
        return self._first.observer

    def _for(self, locator: str) -> DetectorHealth:
        return self.healths.get(self.kind_of(locator), self._first)

    @property
    def current(self) -> DetectorAssessment:
        return self._first.current

    @property
    def assessments(self) -> dict[str, DetectorAssessment]:
        return {kind: health.current for kind, health in self.healths.items()}

    @property
    def fresh_bound(self) -> float:
        return self._first.fresh_bound

    def covers(self, locator: str) -> bool:
        return self._first.covers(locator)

    def describe(self) -> str:
        """The first kind's line (Recovery Services), then each other kind's: ``<kind>: <its line>``."""
        lines = [assessment.describe() if not kind else f"{kind}: {assessment.describe()}"
                 for kind, assessment in self.assessments.items()]
        return " | ".join(lines)

    def fresh_for(self, locator: str) -> bool:
        """Whether ``locator``'s jobs may rest: the detector covers them and is fresh for their kind."""
        return self._for(locator).fresh_for(locator)

    def record_end(self, tracking_id: str, locator: str, source: str, end_time: datetime | None,
                   learned_at: datetime, subscription_id: str = "") -> float | None:
        return self._for(locator).record_end(tracking_id, locator, source, end_time, learned_at, subscription_id)

    def pending(self) -> list[PendingEnd]:
        return [end for health in self.healths.values() for end in health.pending()]

    def settle(self, pending: Sequence[PendingEnd], shown: set[str]) -> list[float]:
        """Each kind's pending ends settled in its own record; the overdue ages are kept per kind for
        ``assess_round`` (and returned together)."""
        by_kind: dict[str, list[PendingEnd]] = {}
        first = next(iter(self.healths))
        for end in pending:
            kind = self.kind_of(end.vault_id)
            by_kind.setdefault(kind if kind in self.healths else first, []).append(end)
        self._overdue = {kind: self.healths[kind].settle(ends, shown) for kind, ends in by_kind.items()}
        return [age for ages in self._overdue.values() for age in ages]

    def assess_round(self, unavailable: str | None, overdue: Sequence[float] = ()) -> DetectorAssessment:
        """Every kind assessed on its own samples and overdue ends; returns the first kind's assessment."""
        results = {kind: health.assess_round(unavailable, self._overdue.get(kind, ()))
                   for kind, health in self.healths.items()}
        self._overdue = {}
        return results[next(iter(self.healths))]


class MeasuringDetector:
    """The poll round's detector, measured: each round it also asks about the ends the detector has not shown yet
    (never handed to the round), settles them, and has the round's health assessed."""

    def __init__(self, detector: Any, health: DetectorHealth | DetectorHealthByKind) -> None:
        self._detector = detector
        self._health = health

    @property
    def last_round(self) -> Any:
        return getattr(self._detector, "last_round", None)

    def list_ended(self, entries: Sequence[Any]) -> set[str]:
        pending = self._health.pending()
        asked = [*entries, *(IndexEntry(p.tracking_id, "job", p.vault_id, p.subscription_id, p.learned_at)
                             for p in pending)]
        queries = getattr(self._detector, "queries", 0)
        ended = set(self._detector.list_ended(asked))
        pending_ids = {p.tracking_id for p in pending}
        overdue = self._health.settle(pending, ended & pending_ids)
        unavailable = getattr(self.last_round, "unavailable", None)
        self._health.observer.graph_asked(getattr(self._detector, "queries", 0) - queries, unavailable)
        self._health.assess_round(unavailable, overdue)
        return ended - pending_ids
