"""The log sink's heartbeat: one line a minute, or sooner when a number or the detector's state changes."""

from __future__ import annotations

import logging

import pytest

from jobs.telemetry import Heartbeat
from jobs.telemetry.logs import LogObserver


def _beats(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("heartbeat:")]


def test_the_detectors_figures_alone_do_not_repeat_the_line_but_its_state_does(caplog) -> None:
    caplog.set_level(logging.INFO, logger="jobs")
    now = [0.0]
    sink = LogObserver(heartbeat_seconds=60, monotonic=lambda: now[0])
    sink.heartbeat(Heartbeat(3, 1, 0, {}, "fresh; lag p50 4 s, p95 9 s over 20 ended jobs"))
    now[0] = 5
    sink.heartbeat(Heartbeat(3, 1, 0, {}, "fresh; lag p50 5 s, p95 11 s over 21 ended jobs"))
    assert len(_beats(caplog)) == 1  # the same state, new figures: no new line within the minute
    now[0] = 10
    sink.heartbeat(Heartbeat(3, 1, 0, {}, "late; p95 lag over 60 s"))
    now[0] = 15
    sink.heartbeat(Heartbeat(4, 1, 0, {}, "late; p95 lag over 60 s"))
    now[0] = 80
    sink.heartbeat(Heartbeat(4, 1, 0, {}, "late; p95 lag over 60 s"))
    beats = _beats(caplog)
    assert len(beats) == 4  # the state changed, a number changed, a minute passed
    assert beats[1].endswith("; Resource Graph: late; p95 lag over 60 s")
