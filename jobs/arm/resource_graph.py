"""Azure Resource Graph: one query over many subscriptions, within its quota, page after page.

The tracker uses it as a detector (``jobs.providers.graph``): one query a round tells which of the tracked jobs
Azure shows as ended, where the vaults' own APIs cost a list per vault. Each provider brings the query of its own
table and reads its rows; here is only what every query shares: batching the names asked about, paging, the quota,
and pausing when Resource Graph refuses or throttles. Every request is one read (the benchmark counts it).

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
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

from jobs.arm.client import ArmClient
from jobs.arm.errors import ArmError
from jobs.arm.transport import Throttle, TransientFailure

__all__ = ["DEFAULT_API_VERSION", "IDS_PER_QUERY", "ResourceGraph", "parse_quota_resets_after"]

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


class ResourceGraph:
    """Queries Resource Graph; never raises for Azure's failures (what it could not ask is not in the answer)."""

    def __init__(self, arm: ArmClient, api_version: str = DEFAULT_API_VERSION, *,
                 monotonic: Callable[[], float] = time.monotonic, ids_per_query: int = IDS_PER_QUERY) -> None:
        self._arm = arm
        self._api_version = api_version
        self._monotonic = monotonic
        self._ids_per_query = max(1, ids_per_query)
        self._paused_until = 0.0
        self.queries = 0  # requests sent, pages included

    def ask(
        self, names: Mapping[str, Collection[str]], query_for: Callable[[list[str]], str]
    ) -> Iterator[dict[str, Any]]:
        """The rows of ``query_for(chunk)`` for ``names`` (each with the subscriptions to look in), in sorted
        chunks of at most ``ids_per_query`` names, each chunk over its names' subscriptions. It stops, quietly,
        at the first answer that says Resource Graph may not be asked now (quota spent, throttled, an error)."""
        ordered = sorted(names)
        for start in range(0, len(ordered), self._ids_per_query):
            chunk = ordered[start : start + self._ids_per_query]
            scope = sorted({subscription for name in chunk for subscription in names[name]})
            try:
                yield from self.query(scope, query_for(chunk))
            except _Paused:
                return

    def query(self, subscriptions: list[str], query: str) -> Iterator[dict[str, Any]]:
        """The rows of ``query`` over ``subscriptions``, page after page (``$skipToken``)."""
        url = f"{self._arm.endpoint}{PATH}?{urlencode({'api-version': self._api_version})}"
        skip_token: str | None = None
        while True:
            if self._monotonic() < self._paused_until:
                raise _Paused
            options: dict[str, Any] = {"$top": PAGE_SIZE, "resultFormat": "objectArray"}
            if skip_token:
                options["$skipToken"] = skip_token
            body = {"subscriptions": subscriptions, "query": query, "options": options}
            self.queries += 1
            try:
                answer, headers = self._arm.transport.post_query(url, body)
            except TransientFailure as failure:
                log.warning("Resource Graph did not answer (%s); the vaults' own schedules go on", failure.error.code)
                raise _Paused from None
            except ArmError as exc:
                log.warning("Resource Graph refused the query (%s %s: %s); not asking it for %.0f s", exc.status,
                            exc.code, exc.message[:200], FAILURE_PAUSE_SECONDS)
                self._paused_until = self._monotonic() + FAILURE_PAUSE_SECONDS
                raise _Paused from None
            self._note_quota(headers)
            if isinstance(answer, Throttle):
                seconds = answer.retry_after if answer.retry_after is not None else 5.0
                log.warning("Resource Graph throttled the tracker for %.0f s", seconds)
                self._paused_until = max(self._paused_until, self._monotonic() + seconds)
                raise _Paused
            yield from (row for row in answer.get("data") or [] if isinstance(row, dict))
            skip_token = answer.get("$skipToken") or None
            if not skip_token:
                return

    def _note_quota(self, headers: Mapping[str, str]) -> None:
        remaining = headers.get("x-ms-user-quota-remaining")
        try:
            spent = remaining is not None and int(remaining) <= 0
        except ValueError:
            spent = False
        if spent:
            seconds = parse_quota_resets_after(headers.get("x-ms-user-quota-resets-after")) or 5.0
            self._paused_until = max(self._paused_until, self._monotonic() + seconds)


class _Paused(Exception):
    """Resource Graph may not be asked now: the rest of the round goes without it."""

