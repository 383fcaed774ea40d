"""The detector of ended jobs: Azure Resource Graph (``jobs.arm.resource_graph``) asked with each provider's query.

One query a round answers for every tracked job of every subscription at once. How fresh Resource Graph is cannot
be checked from here, so the tracker only lets it hasten a result: a job it does not show as ended is still found on
its vault's own schedule (``jobs.flows.poll_worker``), and its result always comes from the provider's own read.
After each round ``GraphDetector.last_round`` (``DetectorRound``) tells how many of the jobs asked about were
answered and, if not all, why; ``covers`` tells whether a vault's jobs are in Resource Graph at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from jobs.arm.resource_graph import Question, ResourceGraph
from jobs.domain.references import InvalidReference
from jobs.providers import PROVIDERS, Provider, Registry

__all__ = ["DetectorRound", "GraphDetector", "TrackedJob"]


class TrackedJob(Protocol):
    """What the detector needs of a running job (the running index's ``IndexEntry`` has it)."""

    tracking_id: str  # "<job guid>-<vault hash>" for a job
    vault_id: str  # the vault's locator
    subscription_id: str


@dataclass(frozen=True)
class DetectorRound:
    """How far the detector's last ``list_ended`` could be trusted.

    - ``asked``: the jobs (tracking ids) it asked Resource Graph about: those of the entries whose provider is in
      Resource Graph (``GraphDetector.covers``);
    - ``answered``: those among them whose query got a full answer this round, every page (a job not shown as ended
      by a full answer was running in Resource Graph's view);
    - ``unavailable``: why the rest were not answered: ``"throttled"`` (a 429), ``"quota"`` (the user quota was
      spent), ``"refused"`` (an error answer), ``"unreachable"`` (no answer, or a 5xx); None when every asked job
      was answered;
    - ``paused_until``: while Resource Graph is not asked (``monotonic`` seconds, the client's clock), None when it
      may be asked again at once;
    - ``unanswered``: the tracking ids asked about and not answered (``asked - answered`` of them).

    Before the first round: all zero and None."""

    asked: int = 0
    answered: int = 0
    unavailable: str | None = None
    paused_until: float | None = None
    unanswered: frozenset[str] = field(default=frozenset())


class GraphDetector:
    """``jobs.flows.poll_round.Detector`` over Resource Graph: each provider's table, through one client.

    Every provider's jobs are asked in one ``ResourceGraph.ask_many``: when the quota cuts a round short, the next
    starts where it stopped, across providers too, so no job waits more than ceil(chunks / chunks per quota
    window) windows, and no provider is starved by the ones before it."""

    def __init__(self, graph: ResourceGraph, kinds: Sequence[type[Provider]] = PROVIDERS) -> None:
        self.graph = graph
        self._registry = Registry(kinds)
        self._last_round = DetectorRound()

    @property
    def queries(self) -> int:
        """Requests sent to Resource Graph, pages included."""
        return self.graph.queries

    @property
    def last_round(self) -> DetectorRound:
        """The availability of the last ``list_ended`` (``DetectorRound``)."""
        return self._last_round

    def covers(self, locator: str) -> bool:
        """Whether Resource Graph holds the jobs of the vault at ``locator`` (``<vault id>[@<region>]``) at all: its
        provider's ``resource_graph`` (cross-region restore jobs, of a locator with ``@<region>``, are not)."""
        try:
            return bool(self._registry.for_vault(locator).resource_graph)
        except InvalidReference:
            return False

    @property
    def kinds(self) -> tuple[str, ...]:
        """The labels (``kind_of``) of the vault kinds whose jobs Resource Graph holds, the first provider's first."""
        return tuple(dict.fromkeys(self._label(kind) for kind in self._registry.kinds if kind.resource_graph))

    def kind_of(self, locator: str) -> str:
        """The label of the vault kind at ``locator``, under which its lag is measured: "" for the first provider
        (Recovery Services), the namespace's last word in lower case for another (``dataprotection``)."""
        try:
            return self._label(self._registry.for_vault(locator))
        except InvalidReference:
            return ""

    def _label(self, kind: type[Provider]) -> str:
        return "" if kind.namespace == self._registry.default.namespace else kind.namespace.rsplit(".", 1)[-1].lower()

    def list_ended(self, entries: Sequence[TrackedJob]) -> set[str]:
        """The tracking ids of ``entries`` (jobs) that Resource Graph shows as ended; what it could not ask about
        (quota spent, an error) is simply not in the answer, and counted in ``last_round``."""
        wanted: dict[type[Provider], dict[str, list[tuple[str, str]]]] = {}  # job id -> (locator, tracking id)
        scopes: dict[type[Provider], dict[str, set[str]]] = {}  # job id -> subscriptions
        for entry in entries:
            job_id = _job_id(entry.tracking_id)
            if job_id is None:
                continue
            try:
                kind = self._registry.for_vault(entry.vault_id)
            except InvalidReference:
                continue
            if not kind.resource_graph:
                continue  # its jobs are not in Resource Graph
            wanted.setdefault(kind, {}).setdefault(job_id, []).append((entry.vault_id.lower(), entry.tracking_id))
            scopes.setdefault(kind, {}).setdefault(job_id, set()).add(entry.subscription_id.lower())
        ended: set[str] = set()
        unanswered: set[str] = set()
        kinds = [kind for kind in self._registry.kinds if kind in wanted]
        questions = [Question(scopes[kind], kind.ended_jobs_query, f"{kind.__module__}.{kind.__qualname__}")
                     for kind in kinds]
        answers = self.graph.ask_many(questions, rotation="detector") if questions else []
        for kind, answer in zip(kinds, answers, strict=True):
            for row in answer.rows:
                found = kind.job_of_row(row)
                if found is None:
                    continue
                vault, job_id = found
                ended.update(tracking_id for locator, tracking_id in wanted[kind].get(job_id, ()) if locator == vault)
            unanswered.update(tracking_id for job_id in answer.unanswered for _, tracking_id in wanted[kind][job_id])
        asked = sum(len(jobs) for by_job in wanted.values() for jobs in by_job.values())
        unavailable = answers[0].stopped.reason if answers and answers[0].stopped is not None else None
        pause = self.graph.pause
        self._last_round = DetectorRound(asked, asked - len(unanswered), unavailable,
                                         pause.until if pause is not None else None, frozenset(unanswered))
        return ended


def _job_id(tracking_id: str) -> str | None:
    """The job GUID of a job's tracking id (``<guid>-<vault hash>``), lower-case; None for anything else."""
    if len(tracking_id) < 37 or tracking_id[36] != "-" or tracking_id.startswith("op-"):
        return None
    return tracking_id[:36].lower()
