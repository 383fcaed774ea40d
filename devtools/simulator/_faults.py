"""Random (or on-cue) transient faults for ARM requests, vaults whose every read fails, and a list index that lags."""

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

    Beside the configuration (``set_faults`` replaces it; these stay): ``failing`` vaults answer every request
    under them (GETs of jobs and operations, every list page) with their fault kind, always, as a vault whose reads
    all fail; ``list_lag_seconds`` has BackupJobs_List match its ``$filter`` against each job as it was that long
    ago (an index behind the jobs), while the rows show the job as it is now: a job that ended within the lag is
    still listed under ``status eq 'InProgress'``, with its terminal status.
    """

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"faults:{seed}")
        self.config = FaultConfig()
        self.cue_left = 0
        self.failing: dict[str, str] = {}  # a vault's lower-case path -> the fault kind every request under it gets
        self.list_lag_seconds = 0.0

    def fail_vault(self, vault_path: str, kind: str = "503") -> None:
        """Every request under ``vault_path`` (a vault's resource id) gets ``kind`` until ``heal_vault``."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}, not {kind!r}")
        self.failing[vault_path.rstrip("/").lower()] = kind

    def heal_vault(self, vault_path: str) -> None:
        self.failing.pop(vault_path.rstrip("/").lower(), None)

    def _failing_kind(self, path: str) -> str | None:
        lowered = path.lower()
        for prefix, kind in self.failing.items():
            if lowered == prefix or lowered.startswith(prefix + "/"):
                return kind
        return None

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

    def draw(self, path: str = "") -> FaultDecision:
        """The fault for one request to ``path``: a failing vault's, else drawn from the configuration."""
        kind = self._failing_kind(path) if path else None
        if kind is not None:
            return FaultDecision(kind, 0.0)
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
