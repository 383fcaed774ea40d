"""Pacing on what ARM says is left: a read budget that holds for the whole deployment, not for one process.

``ReadPacer`` reads ``x-ms-ratelimit-remaining-subscription-reads`` (and ``-global-reads``) from every answer and,
when a subscription's bucket runs low, spaces this instance's reads in proportion to what is left above
``JOBS_ARM_READ_RESERVE``. Why this holds for N instances, and Microsoft's page it rests on: docs/design.md.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping

__all__ = [
    "ARM_READ_BUCKET", "ARM_READ_REFILL_PER_SECOND", "DEFAULT_READ_RESERVE", "GLOBAL_READS_HEADER", "READS_HEADER",
    "ReadPacer", "remaining_reads",
]

ARM_READ_BUCKET = 250  # reads per subscription and principal (Microsoft Learn, request limits and throttling)
ARM_READ_REFILL_PER_SECOND = 25.0
GLOBAL_FACTOR = 15  # the global subscription bucket is 15 times a principal's (same page)
DEFAULT_READ_RESERVE = 50
MIN_WAIT_SECONDS = 0.001  # a shorter wait is rounding, not a pace
READS_HEADER = "x-ms-ratelimit-remaining-subscription-reads"
GLOBAL_READS_HEADER = "x-ms-ratelimit-remaining-subscription-global-reads"


def remaining_reads(headers: Mapping[str, str]) -> float | None:
    """The reads ARM says are left for the subscription, on the principal's scale; None when it does not say.

    The lower of the principal's value and the global one divided by ``GLOBAL_FACTOR``. Tolerant: header names in
    any case, blanks around the number, a value that is not a number (or not finite) counts as absent, and a
    negative one as 0."""
    lowered = {str(name).lower(): value for name, value in headers.items()}
    levels = []
    for name, scale in ((READS_HEADER, 1), (GLOBAL_READS_HEADER, GLOBAL_FACTOR)):
        raw = lowered.get(name)
        if raw is None:
            continue
        try:
            value = float(str(raw).strip())
        except ValueError:
            continue
        if math.isfinite(value):
            levels.append(max(0.0, value) / scale)
    return min(levels) if levels else None


class ReadPacer:
    """Spaces this instance's reads to a subscription when ARM reports its bucket running low (see the module)."""

    def __init__(
        self,
        *,
        capacity: float = ARM_READ_BUCKET,
        refill_per_second: float = ARM_READ_REFILL_PER_SECOND,
        reserve: float = DEFAULT_READ_RESERVE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= reserve < capacity or refill_per_second <= 0:
            raise ValueError("the reserve must be within 0 and the bucket's capacity, the refill positive")
        self.capacity = float(capacity)
        self.refill_per_second = float(refill_per_second)
        self.reserve = float(reserve)
        self.pace_below = self.reserve + (self.capacity - self.reserve) / 2
        self._clock = clock
        self._levels: dict[str, tuple[float, float]] = {}  # subscription -> (level ARM reported, when)
        self._sent: dict[str, float] = {}  # subscription -> when this instance last sent a read
        self._lock = threading.Lock()

    def observe(self, subscription_id: str, headers: Mapping[str, str]) -> float | None:
        """Records the level an answer reports (nothing when it reports none); returns it."""
        level = remaining_reads(headers)
        if level is not None:
            with self._lock:
                self._levels[subscription_id.lower()] = (level, self._clock())
        return level

    def sent(self, subscription_id: str) -> None:
        """A read to the subscription leaves now."""
        with self._lock:
            self._sent[subscription_id.lower()] = self._clock()

    def level(self, subscription_id: str) -> float | None:
        """The bucket's level as this instance sees it now: the last reported level plus the refill since."""
        with self._lock:
            seen = self._levels.get(subscription_id.lower())
            now = self._clock()
        if seen is None:
            return None
        reported, at = seen
        return min(self.capacity, reported + max(0.0, now - at) * self.refill_per_second)

    def delay(self, subscription_id: str) -> float:
        """Seconds before this instance's next read to the subscription may leave (0: now)."""
        key = subscription_id.lower()
        with self._lock:
            seen = self._levels.get(key)
            last = self._sent.get(key)
            now = self._clock()
        if seen is None:
            return 0.0
        reported, at = seen
        level = min(self.capacity, reported + max(0.0, now - at) * self.refill_per_second)
        if level >= self.pace_below:
            return 0.0
        span = self.pace_below - self.reserve
        since = now - last if last is not None else span / self.refill_per_second
        # The earliest s (seconds after the last read) with s * rate(level at s) >= 1, where the level grows with
        # the refill: rate(l) = refill * (l - reserve) / span and l(s) = level + refill * (s - since).
        # That is refill^2 s^2 + refill (level - reserve - refill since) s - span >= 0: its positive root.
        a = self.refill_per_second**2
        b = self.refill_per_second * (level - self.reserve - self.refill_per_second * since)
        root = math.sqrt(b * b + 4 * a * span)
        s = 2 * span / (b + root) if b > 0 else (root - b) / (2 * a)  # the form without cancellation
        wait = s - since
        return wait if wait > MIN_WAIT_SECONDS else 0.0
