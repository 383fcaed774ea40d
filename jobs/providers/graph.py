"""The detector of ended jobs: Azure Resource Graph (``jobs.arm.resource_graph``) asked with each provider's query.

One query a round answers for every tracked job of every subscription at once. How fresh Resource Graph is cannot
be checked from here, so the tracker only lets it hasten a result: a job it does not show as ended is still found on
its vault's own schedule (``jobs.flows.poll_worker``), and its result always comes from the provider's own read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from jobs.arm.resource_graph import ResourceGraph
from jobs.providers import PROVIDERS, Provider, Registry

__all__ = ["GraphDetector", "TrackedJob"]


class TrackedJob(Protocol):
    """What the detector needs of a running job (the running index's ``IndexEntry`` has it)."""

    tracking_id: str  # "<job guid>-<vault hash>" for a job
    vault_id: str  # the vault's locator
    subscription_id: str


class GraphDetector:
    """``jobs.flows.poll_round.Detector`` over Resource Graph: each provider's table, through one client."""

    def __init__(self, graph: ResourceGraph, kinds: Sequence[type[Provider]] = PROVIDERS) -> None:
        self.graph = graph
        self._registry = Registry(kinds)

    @property
    def queries(self) -> int:
        """Requests sent to Resource Graph, pages included."""
        return self.graph.queries

    def list_ended(self, entries: Sequence[TrackedJob]) -> set[str]:
        """The tracking ids of ``entries`` (jobs) that Resource Graph shows as ended; what it could not ask about
        (quota spent, an error) is simply not in the answer."""
        wanted: dict[type[Provider], dict[str, list[tuple[str, str]]]] = {}  # job id -> (locator, tracking id)
        scopes: dict[type[Provider], dict[str, set[str]]] = {}  # job id -> subscriptions
        for entry in entries:
            job_id = _job_id(entry.tracking_id)
            if job_id is None:
                continue
            kind = self._registry.for_vault(entry.vault_id)
            wanted.setdefault(kind, {}).setdefault(job_id, []).append((entry.vault_id.lower(), entry.tracking_id))
            scopes.setdefault(kind, {}).setdefault(job_id, set()).add(entry.subscription_id.lower())
        ended: set[str] = set()
        for kind in self._registry.kinds:
            if kind not in wanted or not kind.resource_graph:
                continue  # no job of this kind, or its jobs are not in Resource Graph
            for row in self.graph.ask(scopes[kind], kind.ended_jobs_query):
                found = kind.job_of_row(row)
                if found is None:
                    continue
                vault, job_id = found
                ended.update(tracking_id for locator, tracking_id in wanted[kind].get(job_id, ()) if locator == vault)
        return ended


def _job_id(tracking_id: str) -> str | None:
    """The job GUID of a job's tracking id (``<guid>-<vault hash>``), lower-case; None for anything else."""
    if len(tracking_id) < 37 or tracking_id[36] != "-" or tracking_id.startswith("op-"):
        return None
    return tracking_id[:36].lower()
