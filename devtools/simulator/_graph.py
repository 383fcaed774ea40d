"""Azure Resource Graph's ``resources`` query, as far as the tracker uses it: backup jobs by name and status.

Shapes from Azure/azure-rest-api-specs ``specification/resourcegraph/resource-manager/Microsoft.ResourceGraph/
stable/2024-04-01/resourcegraph.json`` (operation ``Resources``; ``QueryRequest``, ``QueryRequestOptions``,
``QueryResponse``) and its examples ``ResourcesFirstPageQuery.json`` / ``ResourcesNextPageQuery.json``:
``POST /providers/Microsoft.ResourceGraph/resources?api-version=...`` with ``{"subscriptions", "query",
"options": {"$top", "$skip", "$skipToken", "resultFormat"}}``; the answer ``{"totalRecords", "count",
"resultTruncated", "$skipToken" (when more), "data", "facets"}``. The per-user quota (Microsoft Learn, "Guidance
for throttled requests in Azure Resource Graph": 15 queries per 5 s window) is reported in
``x-ms-user-quota-remaining`` and ``x-ms-user-quota-resets-after`` (``hh:mm:ss``); past it, 429 with Retry-After.

Only the tracker's queries are understood (``RecoveryServicesResources``, type ``microsoft.recoveryservices/vaults/
backupjobs`` or ``microsoft.dataprotection/backupvaults/backupjobs``, each showing only its own kind's jobs,
``name in~ (...)``, ``tostring(properties.status) in~ (...)``); anything else is a 400, so a change
of the tracker's query cannot pass unnoticed. ``lag_seconds`` shows each job as it was that long ago: Resource
Graph's freshness cannot be measured from here (no figure is published for backup jobs: docs/fidelity.md, "Resource
Graph's freshness"), so the tests and the benchmark set it. ``lag_seconds = math.inf`` is a detector that never
shows an end: each job appears as it runs and stays running (``InProgress``, or ``Cancelling``) after its end.
``refuse_status`` (e.g. 403) answers every query with that error, as Resource Graph does to a caller it refuses
(``AuthorizationFailed`` for 403, ARM's error shape; the exact text is not verified); a refused query does not count
against the quota.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import _arm as arm
from ._model import Job

PATH = "/providers/microsoft.resourcegraph/resources"
API_VERSIONS = frozenset({"2019-04-01", "2020-04-01-preview", "2021-03-01", "2021-06-01-preview", "2022-10-01",
                          "2024-04-01"})
QUOTA = 15
WINDOW_SECONDS = 5.0
DEFAULT_TOP = 100  # Resource Graph's default page size
MAX_TOP = 1000

_TABLE = re.compile(r"^\s*RecoveryServicesResources\s*\|\s*where\s+type\s*=~\s*"
                    r"'(?P<type>microsoft\.recoveryservices/vaults/backupjobs|"
                    r"microsoft\.dataprotection/backupvaults/backupjobs)'", re.IGNORECASE)
_NAMES = re.compile(r"\|\s*where\s+name\s+in~\s*\(([^)]*)\)", re.IGNORECASE)
_STATUSES = re.compile(r"\|\s*where\s+tostring\(properties\.status\)\s+in~\s*\(([^)]*)\)", re.IGNORECASE)
_QUOTED = re.compile(r"'([^']*)'")


@dataclass
class ResourceGraph:
    """Answers queries over the simulator's jobs; ``lag_seconds`` behind them (``math.inf``: never an end), or
    ``refuse_status`` to every query."""

    clock: Callable[[], float]
    lag_seconds: float = 0.0
    refuse_status: int | None = None  # every query answered with this error status (403: the caller is refused)
    page_size: int | None = None  # rows per page whatever $top asks (to show paging with few jobs)
    queries: int = 0
    _window: tuple[float, int] = field(default=(float("-inf"), 0))

    def handle(
        self, method: str, query: dict[str, str], body: bytes, jobs: Callable[[set[str] | None], Iterable[Job]]
    ) -> arm.Response:
        """One query; ``jobs(names)`` gives the jobs it may show: those with one of ``names`` (lower-case job ids),
        or every job for None."""
        if method != "POST":
            return arm.method_not_allowed(method)
        api_version = query.get("api-version")
        if not api_version:
            return arm.missing_api_version()
        if api_version not in API_VERSIONS:
            return arm.invalid_api_version(api_version)
        if self.refuse_status is not None:
            return _refusal(self.refuse_status)
        now = self.clock()
        start, used = self._window
        if now - start >= WINDOW_SECONDS:
            start, used = now, 0
        used += 1
        self._window = (start, used)
        resets = max(0.0, WINDOW_SECONDS - (now - start))
        quota = [("x-ms-user-quota-remaining", str(max(0, QUOTA - used))),
                 ("x-ms-user-quota-resets-after", f"00:00:{int(resets) + (resets > int(resets)):02d}")]
        if used > QUOTA:
            return arm.error_response(429, "RateLimiting", "Please provide below info when asking for support: "
                                      "the user quota of Resource Graph is spent.",
                                      [("Retry-After", str(max(1, round(resets)))), *quota])
        self.queries += 1
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return arm.error_response(400, "BadRequest", "The request body is not valid JSON.")
        text = request.get("query") if isinstance(request, dict) else None
        table = _TABLE.match(text) if isinstance(text, str) else None
        if not isinstance(text, str) or table is None:
            return arm.error_response(400, "BadRequest", "The simulator answers the tracker's backup-job query only "
                                      "(RecoveryServicesResources, type microsoft.recoveryservices/vaults/backupjobs).")
        subscriptions = {str(s).lower() for s in request.get("subscriptions") or []}
        names_match, statuses_match = _NAMES.search(text), _STATUSES.search(text)
        names = {n.lower() for n in _QUOTED.findall(names_match[1])} if names_match else None
        statuses = {s.lower() for s in _QUOTED.findall(statuses_match[1])} if statuses_match else None
        never = math.isinf(self.lag_seconds)
        seen = now if never else now - self.lag_seconds
        rows = []
        wanted_type = table["type"].lower()
        for job in jobs(names):
            if job.graph_type != wanted_type:
                continue
            if job.vault.ref.subscription.lower() not in subscriptions or not job.visible(seen):
                continue
            if names is not None and job.job_id.lower() not in names:
                continue
            status = _still_running(job, seen) if never else job.status(seen)
            if statuses is not None and status.lower() not in statuses:
                continue
            rows.append({"id": job.resource_id.lower(), "name": job.job_id, "status": status})
        rows.sort(key=lambda row: row["id"])
        options = request.get("options") or {}
        top = min(MAX_TOP, max(1, int(options.get("$top") or DEFAULT_TOP)), self.page_size or MAX_TOP)
        offset = _offset(options.get("$skipToken")) + int(options.get("$skip") or 0)
        page = rows[offset : offset + top]
        payload: dict[str, Any] = {"totalRecords": len(rows), "count": len(page), "resultTruncated": "false",
                                   "facets": [], "data": page}
        if offset + top < len(rows):
            payload["$skipToken"] = base64.b64encode(json.dumps({"offset": offset + top}).encode()).decode()
        return arm.json_response(200, payload, quota)


def _still_running(job: Job, now: float) -> str:
    """The job's status now, or the last one it had before its end (a detector that never shows an end)."""
    return job.status(min(now, math.nextafter(job.t0 + job.end_at, -math.inf)))


def _refusal(status: int) -> arm.Response:
    if status == 403:
        return arm.error_response(403, "AuthorizationFailed", "The client does not have authorization to perform "
                                  "action 'Microsoft.ResourceGraph/resources/read' over scope '/'.")
    return arm.error_response(status, "ResourceGraphRefused", f"The simulator refuses every Resource Graph query "
                              f"with {status}.")


def _offset(token: object) -> int:
    if not token:
        return 0
    try:
        return int(json.loads(base64.b64decode(str(token)))["offset"])
    except (ValueError, KeyError, TypeError):
        return 0
