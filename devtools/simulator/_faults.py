"""Random (or on-cue) transient faults for ARM requests."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ._model import FaultConfig

FAULT_KINDS = ("429", "500", "503", "reset", "truncated")


@dataclass(frozen=True)
class FaultDecision:
    kind: str | None  # one of FAULT_KINDS, or None
    slow: float  # seconds to wait before answering (0 = no delay)


class FaultInjector:
    """Draws a fault per request.

    Normal mode: each request independently gets at most one of 429/500/503/reset/truncated with the configured
    probabilities, and independently a delay of ``slow_seconds`` with probability ``rate_slow``.

    Cue mode (``only_on_cue = N > 0``): the next N requests each get a fault for sure, chosen among the kinds whose
    rate is > 0 (weighted by rate), plus the delay if ``rate_slow`` > 0; after that no more faults (the throttle
    model, which is not a fault, stays as configured).
    """

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"faults:{seed}")
        self.config = FaultConfig()
        self.cue_left = 0

    def configure(self, config: FaultConfig) -> None:
        self.config = config
        self.cue_left = config.only_on_cue

    def _rates(self) -> list[tuple[str, float]]:
        c = self.config
        return [
            ("429", c.rate_429),
            ("500", c.rate_500),
            ("503", c.rate_503),
            ("reset", c.rate_reset),
            ("truncated", c.rate_truncated),
        ]

    def draw(self) -> FaultDecision:
        c = self.config
        if c.only_on_cue > 0:
            if self.cue_left <= 0:
                return FaultDecision(None, 0.0)
            self.cue_left -= 1
            weighted = [(k, r) for k, r in self._rates() if r > 0]
            kind = self._rng.choices([k for k, _ in weighted], [r for _, r in weighted])[0] if weighted else None
            return FaultDecision(kind, c.slow_seconds if c.rate_slow > 0 else 0.0)
        roll = self._rng.random()
        kind = None
        acc = 0.0
        for name, rate in self._rates():
            acc += rate
            if rate > 0 and roll < acc:
                kind = name
                break
        slow = c.slow_seconds if c.rate_slow > 0 and self._rng.random() < c.rate_slow else 0.0
        return FaultDecision(kind, slow)
