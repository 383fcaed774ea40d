"""The detector's assessment from its measured lag (docs/reference.md, "How jobs are polled")."""

from __future__ import annotations

from datetime import UTC, datetime

from jobs.flows.detector_health import MIN_SAMPLES, WINDOW, assess
from jobs.storage.detector_log import LagSample

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
BOUND = 60.0


def _samples(*lags: float, source: str = "detector") -> list[LagSample]:
    return [LagSample(source, lag, NOW) for lag in lags]


def test_fewer_than_the_minimum_is_unproven_whatever_the_lags() -> None:
    assert assess(_samples(*[1.0] * (MIN_SAMPLES - 1)), None, NOW, BOUND).state == "unproven"
    assert assess(_samples(*[1.0] * MIN_SAMPLES), None, NOW, BOUND).state == "fresh"


def test_fresh_while_the_p95_lag_is_within_the_bound() -> None:
    one_late = _samples(*[10.0] * 19, 600.0)  # 1 in 20 late: the p95 holds
    assert assess(one_late, None, NOW, BOUND).state == "fresh"
    two_late = _samples(*[10.0] * 18, 600.0, 600.0)  # 2 in 20: it does not
    late = assess(two_late, None, NOW, BOUND)
    assert late.state == "late" and late.lag_p95 == 600.0
    assert assess(_samples(*[BOUND] * 20), None, NOW, BOUND).state == "fresh"  # at the bound: fresh
    assert assess(_samples(*[BOUND + 1] * 20), None, NOW, BOUND).state == "late"


def test_ends_still_pending_past_the_bound_count_against_it() -> None:
    samples = _samples(*[5.0] * 12)
    assert assess(samples, None, NOW, BOUND).state == "fresh"
    late = assess(samples, None, NOW, BOUND, overdue=[90.0] * 3)
    assert late.state == "late" and late.censored and late.samples == 15


def test_an_unavailable_detector_is_so_whatever_was_measured() -> None:
    assessment = assess(_samples(*[1.0] * 40), "throttled", NOW, BOUND)
    assert assessment.state == "unavailable" and "throttled" in assessment.describe()
    assert not assessment.fresh


def test_only_the_newest_window_counts() -> None:
    newest_fresh = _samples(*[1.0] * WINDOW) + _samples(*[999.0] * 40)
    assert assess(newest_fresh, None, NOW, BOUND).state == "fresh"


def test_the_line_says_the_state_the_measure_and_what_the_tracker_does() -> None:
    line = assess(_samples(*[12.0] * 20, source="shown"), None, NOW, BOUND).describe()
    assert line.startswith("fresh") and "p95 12 s over 20 ended jobs (0 told first)" in line
    assert "vaults rest up to JOBS_MAX_POLL_INTERVAL_SECONDS" in line
    assert "listed every round" in assess([], None, NOW, BOUND).describe()
