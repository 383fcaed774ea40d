"""How fast this process may read from ARM, per subscription, and the Retry-After windows every instance shares.

``ReadBudget`` is a token bucket per subscription below ARM's own; ``SubscriptionGate`` keeps one request in flight
per subscription and blocks it until its Retry-After has passed, shared through the table's ``ThrottleBoard``.
How they combine with ``jobs.arm.pacing``: docs/design.md.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

from jobs.arm.errors import ArmThrottled
from jobs.arm.pacing import ReadPacer

__all__ = ["ReadBudget", "SubscriptionGate", "ThrottleBoard"]

log = logging.getLogger(__name__)


class ThrottleBoard(Protocol):
    """Where instances share Retry-After windows (the table, in ``jobs.storage.throttle_board``)."""

    def get_throttle(self, subscription_id: str) -> datetime | None: ...

    def set_throttle(self, subscription_id: str, until: datetime) -> None: ...


class ReadBudget:
    """A token bucket per subscription that keeps this process's reads below ARM's own bucket."""

    def __init__(
        self, capacity: float = 200, refill_per_second: float = 20, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = capacity
        self.refill_per_second = refill_per_second
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, subscription: str) -> float:
        """Takes one read; returns 0, or the seconds to wait before one is available (nothing taken then)."""
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.get(subscription, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - at) * self.refill_per_second)
            if tokens >= 1 - 1e-9:  # a wait of exactly the missing fraction refills it, give or take rounding
                self._buckets[subscription] = (tokens - 1, now)
                return 0.0
            self._buckets[subscription] = (tokens, now)
            return (1 - tokens) / self.refill_per_second


class SubscriptionGate:
    """Admits one read at a time per subscription, within the read budget and outside any Retry-After window."""

    def __init__(
        self,
        *,
        budget: ReadBudget | None = None,
        pacer: ReadPacer | None = None,
        concurrency: int = 1,
        board: ThrottleBoard | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._budget = budget or ReadBudget(clock=clock)
        self.pacer = pacer or ReadPacer(clock=clock)
        self._wall = wall  # the board's windows are wall-clock times
        self._concurrency = max(1, concurrency)
        self.board = board
        self._clock = clock
        self._sleep = sleep
        self._blocked_until: dict[str, float] = {}
        self._in_flight: dict[str, threading.Semaphore] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def slot(self, subscription_id: str) -> Iterator[None]:
        """Holds one of the subscription's in-flight slots for the duration of a request (and its retries)."""
        with self._lock:
            gate = self._in_flight.setdefault(subscription_id.lower(), threading.Semaphore(self._concurrency))
        with gate:
            yield

    def blocked_until(self, subscription_id: str) -> float | None:
        with self._lock:
            until = self._blocked_until.get(subscription_id.lower())
        return until if until is not None and until > self._clock() else None

    def block(self, subscription_id: str, seconds: float) -> float:
        """Blocks a subscription for ``seconds`` (as a 429's Retry-After does); returns the monotonic end."""
        until = self._clock() + seconds
        with self._lock:
            key = subscription_id.lower()
            self._blocked_until[key] = max(until, self._blocked_until.get(key, 0.0))
            return self._blocked_until[key]

    def throttled(self, subscription_id: str, seconds: float) -> float:
        """A 429 answered: blocks the subscription here and on the board; returns the monotonic end."""
        until = self.block(subscription_id, seconds)
        self._share(subscription_id, seconds)
        return until

    def admit(self, subscription_id: str) -> None:
        """Returns when one read may leave now; raises ``ArmThrottled`` when it may not leave soon.

        In order: a Retry-After window (this instance's or another's, from the board), then the pace ARM's
        remaining reads call for (deployment-wide), then this process's own budget. A wait of up to 2 s is slept
        here; a longer one is raised, so the caller reschedules rather than holding an invocation."""
        while True:
            until = self.blocked_until(subscription_id) or self._shared_block(subscription_id)
            if until is not None:
                raise ArmThrottled(429, "SubscriptionThrottled", "waiting out Retry-After", retry_at=until)
            wait = self.pacer.delay(subscription_id)
            if wait > 2:
                raise ArmThrottled(429, "SubscriptionReadsLow", "ARM reports few reads left for the subscription",
                                   retry_at=self._clock() + wait)
            if wait > 0:
                self._sleep(wait)
                continue
            wait = self._budget.take(subscription_id.lower())
            if wait <= 0:
                self.pacer.sent(subscription_id)
                return
            if wait > 2:
                raise ArmThrottled(429, "ReadBudgetSpent", "local read budget spent", retry_at=self._clock() + wait)
            self._sleep(wait)

    def observe(self, subscription_id: str, headers: Mapping[str, str]) -> None:
        """An answer's headers: the reads ARM says are left for the subscription pace the next ones."""
        self.pacer.observe(subscription_id, headers)

    def _shared_block(self, subscription_id: str) -> float | None:
        """A Retry-After window another instance was given (one table read before each ARM request)."""
        if self.board is None:
            return None
        try:
            until = self.board.get_throttle(subscription_id)
        except Exception:
            log.warning("reading the shared throttle state failed; going on with this instance's own")
            return None
        if until is None:
            return None
        seconds = (until - self._wall()).total_seconds()
        return self.block(subscription_id, seconds) if seconds > 0 else None

    def _share(self, subscription_id: str, seconds: float) -> None:
        if self.board is None:
            return
        try:
            self.board.set_throttle(subscription_id, self._wall() + timedelta(seconds=seconds))
        except Exception:
            log.warning("sharing a Retry-After window failed; other instances learn it from Azure")
