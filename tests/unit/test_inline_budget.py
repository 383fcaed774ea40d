"""The timer's inline polling keeps within host.json's functionTimeout (issue 20, point 7)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

from jobs.arm import ArmClient
from jobs.flows.poll_round import INLINE_BUDGET_MAX_SECONDS, inline_budget_seconds

ROOT = Path(__file__).resolve().parents[2]


def _function_timeout_seconds() -> float:
    hours, minutes, seconds = json.loads((ROOT / "host.json").read_text())["functionTimeout"].split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def test_point7_the_inline_budget_and_the_read_in_flight_end_within_the_function_timeout() -> None:
    defaults = {name: p.default for name, p in inspect.signature(ArmClient.__init__).parameters.items()}
    attempts, (connect, read), backoff = defaults["attempts"], defaults["timeout"], defaults["backoff_seconds"]
    worst_read = attempts * (connect + read) + sum(min(backoff * 2**n, 5) for n in range(attempts - 1))
    # the budget, the read in flight when it runs out, and a minute for the round's table work and the sweep
    assert INLINE_BUDGET_MAX_SECONDS + worst_read + 60 <= _function_timeout_seconds()


def test_point7_the_inline_budget_is_one_timer_period_within_its_bounds() -> None:
    assert inline_budget_seconds(30) == 30
    assert inline_budget_seconds(1) == 10  # a short period still polls a small round inline
    assert inline_budget_seconds(3600) == INLINE_BUDGET_MAX_SECONDS
