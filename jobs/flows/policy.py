"""The poll policy: how the tracker spends its Azure reads, chosen once from the settings.

One object answers every question the flows used to answer by testing ``JOBS_POLL_STRATEGY`` and
``JOBS_RESOURCE_GRAPH`` themselves: how many items go in one poll message, when an item is first and next polled,
when one list of a vault's jobs replaces a GET per job, and whether a detector (Azure Resource Graph) is asked each
round. ``VaultRounds`` (the default) keeps every job of a vault on one grid, so one list answers for them all;
``PerJob`` polls each job on its own age-based schedule. docs/architecture.md compares them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from jobs.domain.tracked_item import TrackedItem
from jobs.domain.tracking import next_poll_at, next_vault_poll_at, vault_grid_after

__all__ = ["BATCH_SIZE", "VAULT_BATCH_SIZE", "DetectorView", "PerJob", "PollPolicy", "VaultRounds", "poll_policy",
           "uses_detector"]

BATCH_SIZE = 50
# Under vault rounds a vault's due jobs go in one message, so that one list answers for them (600 tracking ids
# are about 29 KB of a message's 64 KiB, base64 included); a larger vault takes one list per 600.
VAULT_BATCH_SIZE = 600


class PollPolicy(Protocol):
    """What the intake, the poll round and the poll worker ask about scheduling and reads."""

    name: str  # the JOBS_POLL_STRATEGY value it implements
    batch_size: int  # due items of one vault per poll message
    uses_detector: bool  # whether each round asks the detector (Azure Resource Graph) which running jobs ended

    def first_poll(self, item: TrackedItem, now: datetime) -> datetime:
        """When a newly tracked item is first polled."""
        ...

    def next_poll(self, item: TrackedItem, now: datetime) -> datetime:
        """When a running item is polled again after a read."""
        ...

    def lists(self, due_jobs: int) -> bool:
        """Whether one list of the vault's running jobs replaces a GET for each of ``due_jobs`` due jobs."""
        ...


class DetectorView(Protocol):
    """What the policy asks of the detector's measured health (``jobs.flows.detector_health.DetectorHealth``)."""

    def fresh_for(self, locator: str) -> bool:
        """Whether the detector covers this vault's jobs and has been measured fresh."""
        ...


@dataclass(frozen=True)
class VaultRounds:
    """``JOBS_POLL_STRATEGY=vault``: a vault's jobs share its grid, one list a round answers for them all.

    The grid's points are ``max_interval`` apart while the detector is measured fresh for the vault's jobs (it
    hastens the jobs it sees end); every round otherwise: without a detector, while it is late, refusing,
    throttled or unproven, and for the jobs it cannot see."""

    poll_seconds: float
    max_interval: float
    uses_detector: bool
    detector: DetectorView | None = None
    end_hints: bool = True  # JOBS_END_HINTS not off: a job far from its expected end rests
    name: str = "vault"
    batch_size: int = VAULT_BATCH_SIZE

    def interval_for(self, item: TrackedItem) -> float:
        """The vault grid's step for ``item``: long only while the detector watches it and is fresh."""
        if self.uses_detector and self.detector is not None and self.detector.fresh_for(item.vault_id):
            return self.max_interval
        return self.poll_seconds

    def first_poll(self, item: TrackedItem, now: datetime) -> datetime:
        """Now (the next round), except for a job the detector watches while fresh: it joins its vault's grid at
        once. A first look would mostly meet a job Azure does not show yet (404 for up to minutes); the detector
        shows its end, and the vault's grid finds it otherwise."""
        if item.kind == "job" and self.interval_for(item) > self.poll_seconds:
            return min(vault_grid_after(item.vault.key, now, self.poll_seconds, self.max_interval), item.deadline_at)
        return now

    def next_poll(self, item: TrackedItem, now: datetime) -> datetime:
        if item.kind == "job":
            interval = self.interval_for(item)
            if interval < self.max_interval:
                rest = self.rest_until(item, now)
                if rest is not None:
                    return min(rest, max(item.deadline_at, now))
            return next_vault_poll_at(item, now, self.poll_seconds, interval)
        return next_poll_at(item, now, self.poll_seconds, self.max_interval)

    def rest_until(self, item: TrackedItem, now: datetime) -> datetime | None:
        """Where a job far from its expected end (``jobs.flows.end_hints``) is next polled instead of next round:
        the round before that end, or sooner the next point of its vault's long grid (``max_interval``), where
        the vault's other resting jobs are due too, so one list answers for them all. ``None``: next round."""
        if not self.end_hints or item.expected_end_at is None or item.status is None or item.unknown_since:
            return None
        next_round = vault_grid_after(item.vault.key, now, self.poll_seconds, self.poll_seconds)
        last_round = item.expected_end_at - timedelta(seconds=self.poll_seconds)
        if last_round <= next_round:
            return None
        before_end = vault_grid_after(item.vault.key, last_round - timedelta(seconds=self.poll_seconds),
                                      self.poll_seconds, self.poll_seconds)
        return min(before_end, vault_grid_after(item.vault.key, now, self.poll_seconds, self.max_interval))

    def lists(self, due_jobs: int) -> bool:
        return due_jobs >= 1


@dataclass(frozen=True)
class PerJob:
    """``JOBS_POLL_STRATEGY=job``: each item on its own schedule (a tenth of its age, capped); a vault with at
    least ``list_threshold`` due jobs is listed once instead of one GET each."""

    poll_seconds: float
    max_interval: float
    list_threshold: int
    uses_detector: bool
    name: str = "job"
    batch_size: int = BATCH_SIZE

    def first_poll(self, item: TrackedItem, now: datetime) -> datetime:
        return now

    def next_poll(self, item: TrackedItem, now: datetime) -> datetime:
        return next_poll_at(item, now, self.poll_seconds, self.max_interval)

    def lists(self, due_jobs: int) -> bool:
        return due_jobs >= self.list_threshold


def uses_detector(settings: Any) -> bool:
    """Whether the settings have each round ask the detector (``JOBS_RESOURCE_GRAPH``)."""
    return bool(settings.resource_graph)


def poll_policy(settings: Any, detector: DetectorView | None = None) -> PollPolicy:
    """The policy the settings choose (``JOBS_POLL_STRATEGY``, ``JOBS_RESOURCE_GRAPH``, the intervals); under vault
    rounds, ``detector`` is the detector's measured health (without it, vaults are listed every round)."""
    if settings.poll_strategy == "job":
        return PerJob(settings.poll_seconds, settings.max_poll_interval_seconds, settings.list_threshold,
                      settings.resource_graph)
    return VaultRounds(settings.poll_seconds, settings.max_poll_interval_seconds, settings.resource_graph, detector,
                       settings.end_hints != "off")
