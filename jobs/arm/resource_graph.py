"""Azure Resource Graph: one query over many subscriptions, within its quota, page after page.

The tracker uses it as a detector (``jobs.providers.graph``): one query a round tells which of the tracked jobs
Azure shows as ended, where the vaults' own APIs cost a list per vault. Each provider brings the query of its own
table and reads its rows; here is only what every query shares: batching the names asked about, paging, the quota,
pausing when Resource Graph refuses or throttles (``GraphPause`` says why and until when), and rotating: where the
quota stopped one round is where the next starts, so past what one quota window can ask (15 queries of 300 names)
every name is still asked within ceil(chunks / 15) windows. Every request is one read (the benchmark counts it).

The shapes follow Azure/azure-rest-api-specs ``specification/resourcegraph/resource-manager/Microsoft.ResourceGraph/
stable/2024-04-01/resourcegraph.json``, operation ``Resources`` (examples ``ResourcesFirstPageQuery.json``,
``ResourcesNextPageQuery.json``):

- request ``POST {ARM_ENDPOINT}/providers/Microsoft.ResourceGraph/resources?api-version=2024-04-01`` with a
  ``QueryRequest``: ``{"subscriptions": [...], "query": "<KQL>", "options": {"$top": 1000, "$skipToken": ...,
  "resultFormat": "objectArray"}}``;
- answer ``QueryResponse``: ``{"totalRecords", "count", "resultTruncated", "$skipToken", "data": [rows],
  "facets"}``; a further page is asked with the ``$skipToken`` of the last (a query projects ``id``, which
  Resource Graph needs to page in a stable order);
- quota (Microsoft Learn, "Guidance for throttled requests in Azure Resource Graph"): about 15 queries per 5 s per
  user, reported on every answer in ``x-ms-user-quota-remaining`` and ``x-ms-user-quota-resets-after``
  (``hh:mm:ss``); a 429 carries ``Retry-After``. The client then pauses, and the vaults' schedules go on.

Reading needs no role beyond a reader's: Resource Graph shows a caller the resources it may read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from jobs.arm.client import ArmClient
from jobs.arm.errors import ArmError
from jobs.arm.transport import Throttle, TransientFailure

__all__ = ["DEFAULT_API_VERSION", "IDS_PER_QUERY", "GraphAnswer", "GraphPause", "Question", "ResourceGraph",
           "parse_quota_resets_after"]

log = logging.getLogger(__name__)

DEFAULT_API_VERSION = "2024-04-01"
PATH = "/providers/Microsoft.ResourceGraph/resources"
IDS_PER_QUERY = 300  # names asked about in one query (about 12 KB of KQL)
PAGE_SIZE = 1000  # Resource Graph's largest $top
FAILURE_PAUSE_SECONDS = 300.0  # after a refusal (401, 403, 400): the vaults' schedules carry on meanwhile


def parse_quota_resets_after(value: str | None) -> float | None:
    """``x-ms-user-quota-resets-after`` (``hh:mm:ss``) in seconds, or ``None`` when absent or unreadable."""
    if not value:
        return None
    try:
        hours, minutes, seconds = value.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


@dataclass(frozen=True)
class GraphPause:
    """Why Resource Graph stopped being asked, and until when (``monotonic`` seconds) it is not asked again.

    ``reason``: ``"throttled"`` (a 429; until its Retry-After), ``"quota"`` (an answer said the user quota is spent;
    until ``x-ms-user-quota-resets-after``), ``"refused"`` (an error answer such as 401, 403 or 400; for
    ``FAILURE_PAUSE_SECONDS``) or ``"unreachable"`` (no answer, or a 5xx: the rest of the round goes without it;
    ``until`` is when that happened, so the next round asks again)."""

    reason: str
    until: float


@dataclass(frozen=True)
class Question:
    """What to ask about: ``names``, each with the subscriptions to look in, and the query of a chunk of them.
    ``key`` tells the questions of one ``ResourceGraph.ask_many`` apart (their order in the rotation)."""

    names: Mapping[str, Collection[str]]
    query_for: Callable[[list[str]], str]
    key: str = ""


@dataclass(frozen=True)
class GraphAnswer:
    """What one ``ResourceGraph.ask`` got: the rows, which names were answered, and why it stopped short if it did.

    A name is ``answered`` when its chunk got every page; a chunk cut short (not asked, or a later page refused)
    leaves its names in ``unanswered``, though rows of its first pages are in ``rows`` (they are facts all the same).
    ``stopped`` is the pause that cut the asking short, None when every chunk was asked."""

    rows: list[dict[str, Any]]
    answered: frozenset[str]
    unanswered: frozenset[str]
    stopped: GraphPause | None


class ResourceGraph:
    """Queries Resource Graph; never raises for Azure's failures (what it could not ask is not in the answer).

    The names of an ``ask`` go in chunks whose boundaries stay put while the names do (each question's sorted names,
    every ``ids_per_query``); the chunk the quota (or any pause) left unasked is where the next ``ask`` of the same
    ``rotation`` starts, wrapping around to the head. So when the quota lets K chunks through per window, each of
    N chunks is asked within ceil(N / K) windows, however many there are, where asking from the head every time
    would ask the same K again and again. The place is kept in this object (one per process)."""

    def __init__(self, arm: ArmClient, api_version: str = DEFAULT_API_VERSION, *,
                 monotonic: Callable[[], float] = time.monotonic, ids_per_query: int = IDS_PER_QUERY) -> None:
        self._arm = arm
        self._api_version = api_version
        self._monotonic = monotonic
        self._ids_per_query = max(1, ids_per_query)
        self._pause: GraphPause | None = None
        self._resume_at: dict[str, tuple[str, str]] = {}  # rotation -> (key, first name) of the chunk to ask first
        self.queries = 0  # requests sent, pages included

    @property
    def pause(self) -> GraphPause | None:
        """The pause in force now (Resource Graph is not asked before ``until``), None when it may be asked."""
        pause = self._pause
        return pause if pause is not None and self._monotonic() < pause.until else None

    @property
    def last_pause(self) -> GraphPause | None:
        """The latest pause, over or not (``"unreachable"`` is over at once); None before the first."""
        return self._pause

    def ask(
        self, names: Mapping[str, Collection[str]], query_for: Callable[[list[str]], str], *, rotation: str = ""
    ) -> GraphAnswer:
        """The rows of ``query_for(chunk)`` for ``names`` (each with the subscriptions to look in): ``ask_many``
        with that one question."""
        return self.ask_many([Question(names, query_for)], rotation=rotation)[0]

    def ask_many(self, questions: Sequence[Question], *, rotation: str = "") -> list[GraphAnswer]:
        """The answer to each of ``questions`` (in their order), asked as one sequence of chunks: by ``key``, then
        in chunks of at most ``ids_per_query`` of the question's sorted names, each chunk over its names'
        subscriptions. The first chunk asked is the one where the last ``ask_many`` of this ``rotation`` stopped
        short, then on, wrapping around to the head. It stops, quietly, at the first answer that says Resource
        Graph may not be asked now (quota spent, throttled, an error), or at once while a pause is in force."""
        by_key = sorted(questions, key=lambda question: question.key)
        if len({question.key for question in by_key}) != len(by_key):
            raise ValueError("each question of one ask needs its own key")
        size = self._ids_per_query
        chunks: list[tuple[Question, list[str]]] = []
        for question in by_key:
            ordered = sorted(question.names)
            chunks.extend((question, ordered[start : start + size]) for start in range(0, len(ordered), size))
        resume = self._resume_at.get(rotation)
        first = 0  # the chunk holding the place where the last ask stopped (or the first after it), else the head
        if resume is not None:
            first = next((n for n, (question, chunk) in enumerate(chunks) if (question.key, chunk[-1]) >= resume), 0)
        rows: dict[str, list[dict[str, Any]]] = {question.key: [] for question in by_key}
        answered: dict[str, set[str]] = {question.key: set() for question in by_key}
        stopped: GraphPause | None = None
        for n in range(len(chunks)):
            question, chunk = chunks[(first + n) % len(chunks)]
            scope = sorted({subscription for name in chunk for subscription in question.names[name]})
            try:
                rows[question.key].extend(self.query(scope, question.query_for(chunk)))
            except _Paused as paused:
                stopped = paused.pause
                self._resume_at[rotation] = (question.key, chunk[0])
                break
            answered[question.key].update(chunk)
        else:
            if chunks:
                question, chunk = chunks[first]
                self._resume_at[rotation] = (question.key, chunk[0])
        return [GraphAnswer(rows[question.key], frozenset(answered[question.key]),
                            frozenset(question.names) - answered[question.key], stopped) for question in questions]

    def query(self, subscriptions: list[str], query: str) -> Iterator[dict[str, Any]]:
        """The rows of ``query`` over ``subscriptions``, page after page (``$skipToken``); raises ``_Paused`` when
        Resource Graph may not be asked (now or any more this round)."""
        url = f"{self._arm.endpoint}{PATH}?{urlencode({'api-version': self._api_version})}"
        skip_token: str | None = None
        while True:
            if (pause := self.pause) is not None:
                raise _Paused(pause)
            options: dict[str, Any] = {"$top": PAGE_SIZE, "resultFormat": "objectArray"}
            if skip_token:
                options["$skipToken"] = skip_token
            body = {"subscriptions": subscriptions, "query": query, "options": options}
            self.queries += 1
            try:
                answer, headers = self._arm.transport.post_query(url, body)
            except TransientFailure as failure:
                log.warning("Resource Graph did not answer (%s); the vaults' own schedules go on", failure.error.code)
                raise _Paused(self._paused("unreachable", 0.0)) from None
            except ArmError as exc:
                log.warning("Resource Graph refused the query (%s %s: %s); not asking it for %.0f s", exc.status,
                            exc.code, exc.message[:200], FAILURE_PAUSE_SECONDS)
                raise _Paused(self._paused("refused", FAILURE_PAUSE_SECONDS)) from None
            self._note_quota(headers)
            if isinstance(answer, Throttle):
                seconds = answer.retry_after if answer.retry_after is not None else 5.0
                log.warning("Resource Graph throttled the tracker for %.0f s", seconds)
                raise _Paused(self._paused("throttled", seconds))
            yield from (row for row in answer.get("data") or [] if isinstance(row, dict))
            skip_token = answer.get("$skipToken") or None
            if not skip_token:
                return

    def _paused(self, reason: str, seconds: float) -> GraphPause:
        """Pauses for ``seconds`` from now, unless a pause already runs longer (it keeps its reason)."""
        until = self._monotonic() + seconds
        current = self._pause
        if current is None or current.until <= until:
            self._pause = GraphPause(reason, until)
        return self._pause

    def _note_quota(self, headers: Mapping[str, str]) -> None:
        remaining = headers.get("x-ms-user-quota-remaining")
        try:
            spent = remaining is not None and int(remaining) <= 0
        except ValueError:
            spent = False
        if spent:
            self._paused("quota", parse_quota_resets_after(headers.get("x-ms-user-quota-resets-after")) or 5.0)


class _Paused(Exception):
    """Resource Graph may not be asked now: the rest of the round goes without it."""

    def __init__(self, pause: GraphPause) -> None:
        super().__init__(pause.reason)
        self.pause = pause

