"""How far the detector (Azure Resource Graph) can be trusted, measured on the jobs it was asked about.

Every time the tracker learns that a job ended, it knows Azure's ``endTime`` and who told it first: the detector,
the vault's list (the job left it) or the job's own GET. Each such job is a sample in the table, shared by every
instance (``jobs.storage.detector_log``). Each round assesses the newest ``WINDOW`` samples:

- ``fresh``: the detector told first for at least ``FRESH_SHARE`` of them (so the p95 of results owes nothing to the
  fallback lists): the vaults of the kinds it covers may rest up to ``JOBS_MAX_POLL_INTERVAL_SECONDS``;
- ``late``: it did not; ``unproven``: fewer than ``MIN_SAMPLES`` samples yet; ``unavailable``: its last round was not
  answered in full (throttled, quota spent, refused, unreachable). In each of these the vaults are listed every
  round, so results come within one poll period whatever Resource Graph does.

A job kind the detector does not cover (cross-region restores) is always on the every-round schedule.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from jobs.storage.detector_log import LagSample, TableDetectorLog
from jobs.telemetry import Observer

__all__ = ["FRESH_SHARE", "MIN_SAMPLES", "WINDOW", "DetectorAssessment", "DetectorHealth", "assess"]

WINDOW = 40  # the newest samples an assessment looks at
MIN_SAMPLES = 10  # fewer than this: unproven
FRESH_SHARE = 0.95  # told first for at least this share: fresh
KEEP_SAMPLES = 200  # the table keeps this many; older ones are trimmed now and then


@dataclass(frozen=True)
class DetectorAssessment:
    state: str  # "fresh", "late", "unproven" or "unavailable"
    samples: int = 0
    told_first: int = 0  # samples the detector told first
    lag_p50: float | None = None  # seconds from Azure's endTime to the tracker learning it, over the samples
    lag_p95: float | None = None
    censored: bool = False  # some ends came from a list or a GET first: the detector's own lag is at least this
    reason: str = ""
    assessed_at: datetime | None = None

    @property
    def fresh(self) -> bool:
        return self.state == "fresh"

    def describe(self) -> str:
        """One line: the state, the measure behind it, and what the tracker does about it."""
        measured = ""
        if self.samples:
            at_least = "at least " if self.censored else ""
            measured = (f"told first for {self.told_first} of the last {self.samples} ended jobs, lag p50 "
                        f"{_seconds(self.lag_p50)}, p95 {at_least}{_seconds(self.lag_p95)}")
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


def assess(samples: Sequence[LagSample], unavailable: str | None, now: datetime) -> DetectorAssessment:
    """The assessment of the newest ``samples`` (newest first), given whether the detector's last round was
    answered in full (``unavailable`` says why not)."""
    window = list(samples[:WINDOW])
    lags = sorted(max(0.0, s.lag_seconds) for s in window)
    told = sum(1 for s in window if s.source == "detector")
    measured = {"samples": len(window), "told_first": told, "lag_p50": _percentile(lags, 50),
                "lag_p95": _percentile(lags, 95), "censored": told < len(window), "assessed_at": now}
    if unavailable:
        return DetectorAssessment("unavailable", reason=f"Resource Graph {unavailable}", **measured)
    if len(window) < MIN_SAMPLES:
        return DetectorAssessment("unproven", reason=f"{len(window)} of {MIN_SAMPLES} ended jobs measured",
                                  **measured)
    if told >= math.ceil(FRESH_SHARE * len(window)):
        return DetectorAssessment("fresh", **measured)
    return DetectorAssessment("late", **measured)


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

    def record_end(self, tracking_id: str, locator: str, source: str, end_time: datetime | None,
                   learned_at: datetime) -> float | None:
        """A job the detector covers ended and ``source`` told the tracker first: one sample. Returns the lag
        recorded (``None`` without Azure's ``endTime``)."""
        if end_time is None or not self.covers(locator):
            return None
        lag = max(0.0, (learned_at - end_time).total_seconds())
        self.log.add_sample(tracking_id, source, lag, learned_at)
        return lag

    def assess_round(self, unavailable: str | None) -> DetectorAssessment:
        """A round's assessment, from the table's samples; written back for the other instances."""
        now = self.clock()
        assessment = assess(self.log.list_samples(WINDOW), unavailable, now)
        with self._lock:
            previous, self._current, self._loaded_at = self._current, assessment, now
            self._rounds += 1
            trim = self._rounds % 50 == 1
        self.log.put_assessment(assessment.to_entity())
        if trim:
            self.log.trim(KEEP_SAMPLES)
        self.observer.detector_assessed(assessment, previous.state != assessment.state)
        return assessment
