"""ARM read throttling: a token bucket per subscription (current regional model: 250 reads, refilled 25/s).

A request that finds less than one token is rejected with 429 and ``Retry-After`` = whole seconds until a token is
available (at least 1). Rejected requests take no token. The simulator also remembers, per subscription, until when
the last Retry-After runs, so it can count requests that arrive too early (``retry_after_violations``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class TokenBucket:
    size: int
    refill_per_second: float
    tokens: float
    updated: float

    @classmethod
    def full(cls, size: int, refill_per_second: float, now: float) -> TokenBucket:
        return cls(size, refill_per_second, float(size), now)

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(float(self.size), self.tokens + (now - self.updated) * self.refill_per_second)
        self.updated = max(self.updated, now)

    def take(self, now: float) -> tuple[bool, int, int]:
        """(allowed, remaining whole tokens, retry_after seconds when refused)."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True, math.floor(self.tokens), 0
        wait = (1.0 - self.tokens) / self.refill_per_second
        return False, 0, max(1, math.ceil(wait - 1e-9))

    def remaining(self, now: float) -> int:
        self._refill(now)
        return math.floor(self.tokens)
