"""Pacing on what ARM says is left: a read budget that holds for the whole deployment, not for one process.

ARM throttles reads with a token bucket per subscription, per security principal and per region: 250 reads,
refilled at 25 per second, and a global bucket per subscription 15 times larger shared by every principal
(Microsoft Learn, "Understand how Azure Resource Manager throttles requests", section "Regional throttling and
token bucket algorithm":
https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling). Every instance
of the tracker runs as the same managed identity, so they all drain the same bucket, and a budget kept per process
(``ReadBudget``) cannot hold for the deployment: two instances at 200 reads each spend 400 of 250.

ARM reports the bucket on every answer (same page, "Remaining requests"):
``x-ms-ratelimit-remaining-subscription-reads`` (this principal's reads left) and, since the token-bucket
architecture, ``x-ms-ratelimit-remaining-subscription-global-reads`` (the subscription's reads left across all
principals: answers seen in the wild pair 249 with 3749). That number is already deployment-wide: it counts the
reads of every instance (and of anything else using the identity). So each instance paces on it, and the instances
need no table of their own to agree:

- at or above ``pace_below`` (halfway between the reserve and a full bucket), reads go as fast as the local budget
  lets them;
- below it, an instance spaces its reads to the subscription at ``refill * (level - reserve) / (pace_below -
  reserve)`` per second, where ``level`` is the last level ARM reported plus the refill since. N instances then
  settle where their reads add up to the refill rate, at ``reserve + (pace_below - reserve) / N``: above the
  reserve however many there are. What an instance has not seen yet (the others' reads since its last answer)
  takes the bucket under that by at most about one read per instance (``tests/unit/test_read_pacing.py``
  simulates 1 to 20 instances), so there is no 429 while the reserve exceeds the instances reading at once;
- the ``reserve`` (``JOBS_ARM_READ_RESERVE``, 50 by default) is left for other callers of the identity and
  subscription (a script, the portal's view through the global bucket): under it, an instance waits for the refill.

The global value is divided by 15 so that both buckets read on one scale (3750 refilled at 375/s becomes 250 at
25/s), and the lower of the two counts. A missing or unreadable header is no information: the instance then keeps
to its local budget, and the Retry-After windows shared through the table stay the backstop. One request in flight
per subscription per instance (``SubscriptionGate``) means each read is admitted after the previous answer's level
was seen, so the error of an instance's view is bounded by what the other instances sent since: a few reads, well
inside the reserve. Instances that start together see a level after their first answer; before it, each sends at
most that one read.
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
