"""Azure Resource Graph as a detector: which of the running jobs Azure shows as ended, in one query per round.

One ``Resources`` query answers for every tracked job of every subscription at once, where the vaults' own APIs
cost a ``BackupJobs_List`` per vault. Microsoft documents ``RecoveryServicesResources`` (type
``microsoft.recoveryservices/vaults/backupjobs``) as holding in-progress and ended jobs of the last 14 days; how
fresh it is cannot be checked from here, so the tracker only lets it hasten a result: a job it does not show as
ended is still found on its vault's own schedule (``jobs.flows.poll_worker``), and its result always comes from
``JobDetails_Get``. Every query is one read (the benchmark counts it).

The shapes follow Azure/azure-rest-api-specs ``specification/resourcegraph/resource-manager/Microsoft.ResourceGraph/
stable/2024-04-01/resourcegraph.json``, operation ``Resources`` (examples ``ResourcesFirstPageQuery.json``,
``ResourcesNextPageQuery.json``):

- request ``POST {ARM_ENDPOINT}/providers/Microsoft.ResourceGraph/resources?api-version=2024-04-01`` with a
  ``QueryRequest``: ``{"subscriptions": [...], "query": "<KQL>", "options": {"$top": 1000, "$skipToken": ...,
  "resultFormat": "objectArray"}}``;
- answer ``QueryResponse``: ``{"totalRecords", "count", "resultTruncated", "$skipToken", "data": [rows],
  "facets"}``; a further page is asked with the ``$skipToken`` of the last (the query projects ``id``, which
  Resource Graph needs to page in a stable order);
- quota (Microsoft Learn, "Guidance for throttled requests in Azure Resource Graph"): about 15 queries per 5 s per
  user, reported on every answer in ``x-ms-user-quota-remaining`` and ``x-ms-user-quota-resets-after``
  (``hh:mm:ss``); a 429 carries ``Retry-After``. The detector then pauses, and the vaults' schedules go on.

Reading needs no role beyond Backup Reader: Resource Graph shows a caller the resources it may read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol
from urllib.parse import urlencode

from jobs.arm.client import ArmClient
from jobs.arm.errors import ArmError
from jobs.arm.transport import Throttle, TransientFailure

__all__ = ["DEFAULT_API_VERSION", "IDS_PER_QUERY", "ResourceGraph", "TrackedJob", "ended_jobs_query",
           "parse_quota_resets_after"]

log = logging.getLogger(__name__)

DEFAULT_API_VERSION = "2024-04-01"
PATH = "/providers/Microsoft.ResourceGraph/resources"
IDS_PER_QUERY = 300  # job ids named in one query (about 12 KB of KQL)
PAGE_SIZE = 1000  # Resource Graph's largest $top
TERMINAL = ("Completed", "CompletedWithWarnings", "Failed", "Cancelled")
FAILURE_PAUSE_SECONDS = 300.0  # after a refusal (401, 403, 400): the vaults' schedules carry on meanwhile


def ended_jobs_query(job_ids: Iterable[str]) -> str:
    """KQL for the jobs among ``job_ids`` (GUIDs, validated at intake) that Resource Graph shows as ended."""
    names = ", ".join(f"'{job_id.lower()}'" for job_id in job_ids)
    statuses = ", ".join(f"'{status}'" for status in TERMINAL)
    return (
        "RecoveryServicesResources"
        " | where type =~ 'microsoft.recoveryservices/vaults/backupjobs'"
        f" | where name in~ ({names})"
        f" | where tostring(properties.status) in~ ({statuses})"
        " | project id, name, status = tostring(properties.status)"
    )


def parse_quota_resets_after(value: str | None) -> float | None:
    """``x-ms-user-quota-resets-after`` (``hh:mm:ss``) in seconds, or ``None`` when absent or unreadable."""
    if not value:
        return None
    try:
        hours, minutes, seconds = value.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


class TrackedJob(Protocol):
    """What the detector needs of a running job (the running index's ``IndexEntry`` has it)."""

    tracking_id: str  # "<job guid>-<vault hash>" for a job
    vault_id: str
    subscription_id: str


class ResourceGraph:
    """Queries Resource Graph for ended jobs; never raises for Azure's failures (the detector only hastens)."""

    def __init__(self, arm: ArmClient, api_version: str = DEFAULT_API_VERSION, *,
                 monotonic: Callable[[], float] = time.monotonic, ids_per_query: int = IDS_PER_QUERY) -> None:
        self._arm = arm
        self._api_version = api_version
        self._monotonic = monotonic
        self._ids_per_query = max(1, ids_per_query)
        self._paused_until = 0.0
        self.queries = 0  # requests sent, pages included

    def list_ended(self, entries: list[TrackedJob]) -> set[str]:
        """The tracking ids of ``entries`` (jobs) that Resource Graph shows as ended; what it could not ask about
        (quota spent, an error) is simply not in the answer."""
        wanted: dict[str, list[tuple[str, str]]] = {}  # job id -> (vault id, tracking id), lower-case ids
        subscriptions: dict[str, set[str]] = {}
        for entry in entries:
            job_id = _job_id(entry.tracking_id)
            if job_id is None:
                continue
            wanted.setdefault(job_id, []).append((entry.vault_id.lower(), entry.tracking_id))
            subscriptions.setdefault(job_id, set()).add(entry.subscription_id.lower())
        ended: set[str] = set()
        job_ids = sorted(wanted)
        for start in range(0, len(job_ids), self._ids_per_query):
            chunk = job_ids[start : start + self._ids_per_query]
            scope = sorted({sub for job_id in chunk for sub in subscriptions[job_id]})
            try:
                for row in self.query(scope, ended_jobs_query(chunk)):
                    resource_id = str(row.get("id") or "").lower()
                    vault_id, _, job_id = resource_id.rpartition("/backupjobs/")
                    for vault, tracking_id in wanted.get(job_id, ()):
                        if vault == vault_id:
                            ended.add(tracking_id)
            except _Paused:
                break
        return ended

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


def _job_id(tracking_id: str) -> str | None:
    """The job GUID of a job's tracking id (``<guid>-<vault hash>``), lower-case; None for anything else."""
    if len(tracking_id) < 37 or tracking_id[36] != "-" or tracking_id.startswith("op-"):
        return None
    return tracking_id[:36].lower()
