"""Reads that Azure refuses: a bad credential (401) for a whole subscription, a missing role (403) on a vault.

Neither is a fact about a job, so neither may quietly become one. The poll worker records each refusal here; this
process then logs it loudly but not per call (one line per subscription or vault per ``log_every``), backs a bad
credential off, and reports what fails to the ``run`` heartbeat (``Tracker.failing_subscriptions``). A read of
the same subscription (401) or vault (403) that succeeds clears the entry.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["ReadFailure", "ReadFailures"]


@dataclass
class ReadFailure:
    status: int
    code: str
    message: str
    since: datetime
    count: int = 1
    logged_at: datetime | None = None

    def describe(self) -> str:
        said = f": {self.message[:400]}" if self.status == 401 and self.message else ""  # what to check
        return f"{self.status} {self.code} since {self.since:%Y-%m-%d %H:%M:%S %Z}, {self.count} reads refused{said}"


class ReadFailures:
    def __init__(self, log_every: timedelta = timedelta(minutes=5)) -> None:
        self._log_every = log_every
        self._failures: dict[str, ReadFailure] = {}
        self._lock = threading.Lock()

    def record(self, key: str, status: int, code: str, message: str, now: datetime) -> tuple[ReadFailure, bool]:
        """Records a refused read of ``key`` (a subscription or vault id); returns it and whether to log it now."""
        with self._lock:
            failure = self._failures.get(key)
            if failure is None:
                failure = self._failures[key] = ReadFailure(status, code, message, now, count=0)
            failure.count += 1
            failure.status, failure.code, failure.message = status, code, message
            due = failure.logged_at is None or now - failure.logged_at >= self._log_every
            if due:
                failure.logged_at = now
            return failure, due

    def clear(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)

    def backoff_seconds(self, key: str, first: float, cap: float) -> float:
        """Doubles with every refused read of ``key``: ``first``, 2x, 4x ... up to ``cap``."""
        with self._lock:
            failure = self._failures.get(key)
            count = failure.count if failure else 1
        return min(cap, first * 2 ** min(count - 1, 16))

    def snapshot(self) -> dict[str, str]:
        """What fails, by subscription or vault id: one line each."""
        with self._lock:
            return {key: failure.describe() for key, failure in self._failures.items()}
