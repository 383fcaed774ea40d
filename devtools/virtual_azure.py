"""Azure Backup's job endpoints on a virtual clock, for the benchmark: jobs that start, stay invisible for a while
(404), run, end (Cancelled through Cancelling), and ARM's read throttling (a token bucket of 250 reads per
subscription, refilled at 25 per second), with every read recorded.

It stands where HTTP would: the tracker's own ``ArmClient`` (its read budget, its one-request-in-flight gate, its
Retry-After handling) sends through ``VirtualAzure.get(url)`` as through ``jobs.arm.transport.ArmTransport``, on the
virtual clock, so hours of polling run in seconds. The HTTP simulator (``devtools.simulator``) stays what the tests
run against: this model shares its lifecycle rules, not its code paths.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from jobs.arm import ArmError, ArmNotFound
from jobs.arm.transport import Throttle

__all__ = ["GRAPH", "ArmRead", "TokenBucket", "VirtualAzure", "VirtualJob"]

BUCKET_CAPACITY = 250.0
BUCKET_REFILL_PER_SECOND = 25.0
RETRY_AFTER_SECONDS = 17.0
GRAPH = "resourcegraph"  # the "subscription" Resource Graph queries are recorded under (its quota is per user)
GRAPH_QUOTA = 15  # queries per GRAPH_WINDOW_SECONDS per user (Microsoft Learn, Resource Graph throttling guidance)
GRAPH_WINDOW_SECONDS = 5.0
_GRAPH_PATH = "/providers/microsoft.resourcegraph/resources"
_GRAPH_NAMES = re.compile(r"\| where name in~ \(([^)]*)\)")

_JOB = re.compile(r"^(?P<vault>/subscriptions/[^/]+/resourceGroups/[^/]+/providers/[^/]+/vaults/[^/]+)/backupJobs/"
                  r"(?P<job>[^/?]+)$", re.IGNORECASE)
_LIST = re.compile(r"^(?P<vault>/subscriptions/[^/]+/resourceGroups/[^/]+/providers/[^/]+/vaults/[^/]+)/backupJobs$",
                   re.IGNORECASE)


@dataclass
class VirtualJob:
    """One job's life in Azure. ``visible_at`` None: it never appears (a wrong id, a job that failed to start)."""

    vault_id: str
    job_id: str
    job_type: str
    operation: str
    started_at: datetime
    ended_at: datetime
    final_status: str
    visible_at: datetime | None
    cancelling_from: datetime | None = None

    def status(self, now: datetime) -> str:
        if now >= self.ended_at:
            return self.final_status
        if self.cancelling_from is not None and now >= self.cancelling_from:
            return "Cancelling"
        return "InProgress"

    def resource(self, now: datetime, *, detailed: bool) -> dict[str, Any]:
        status = self.status(now)
        ended = now >= self.ended_at
        properties: dict[str, Any] = {
            "jobType": self.job_type, "operation": self.operation, "status": status,
            "backupManagementType": "AzureIaasVM", "entityFriendlyName": f"vm-{self.job_id[:8]}",
            "startTime": self.started_at.isoformat(), "activityId": self.job_id,
        }
        if ended:
            properties["endTime"] = self.ended_at.isoformat()
            properties["duration"] = f"PT{(self.ended_at - self.started_at).total_seconds():.0f}S"
        if detailed:
            properties["extendedInfo"] = {
                "tasksList": [{"taskId": "Take Snapshot", "status": "Completed" if ended else "InProgress"}],
                "propertyBag": {"VM Name": f"vm-{self.job_id[:8]}"},
            }
        return {"id": f"{self.vault_id}/backupJobs/{self.job_id}", "name": self.job_id,
                "type": "Microsoft.RecoveryServices/vaults/backupJobs", "properties": properties}


@dataclass(frozen=True)
class ArmRead:
    """One request ARM answered (or throttled)."""

    at: datetime
    subscription_id: str
    kind: str  # "get" or "list"
    job_id: str | None
    throttled: bool


class TokenBucket:
    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, datetime]] = {}

    def take(self, key: str) -> bool:
        now = self._clock()
        tokens, at = self._buckets.get(key, (BUCKET_CAPACITY, now))
        tokens = min(BUCKET_CAPACITY, tokens + (now - at).total_seconds() * BUCKET_REFILL_PER_SECOND)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1, now)
        return True

    def level(self, key: str) -> int:
        """Whole reads left, as ARM's ``x-ms-ratelimit-remaining-subscription-reads`` reports them."""
        tokens, at = self._buckets.get(key, (BUCKET_CAPACITY, self._clock()))
        return int(min(BUCKET_CAPACITY, tokens + (self._clock() - at).total_seconds() * BUCKET_REFILL_PER_SECOND))


@dataclass
class VirtualAzure:
    """ARM's answers for ``jobs`` at ``clock()``, through ``get(url)`` as a transport; ``reads`` records each."""

    clock: Callable[[], datetime]
    jobs: Mapping[str, VirtualJob]  # by job id
    endpoint: str = "https://management.azure.com"
    page_size: int = 50
    reads: list[ArmRead] = field(default_factory=list)
    # How far behind Azure Resource Graph shows a job's status (its freshness cannot be measured from here).
    graph_lag_seconds: float = 0.0
    # Set by the ArmClient: hears each answer's remaining-reads header, as from ArmTransport.
    on_headers: Callable[[str, Mapping[str, str]], None] | None = None

    def __post_init__(self) -> None:
        self._bucket = TokenBucket(self.clock)
        self._graph_window: tuple[datetime, int] | None = None
        self._by_vault: dict[str, list[VirtualJob]] = {}
        for job in self.jobs.values():
            self._by_vault.setdefault(job.vault_id.lower(), []).append(job)

    @property
    def requests_sent(self) -> int:
        return len(self.reads)

    def get(self, url: str) -> dict[str, Any] | Throttle:
        """One GET, as ``jobs.arm.transport.ArmTransport.get`` answers it."""
        parts = urlsplit(url)
        path, query = unquote(parts.path), {k: v[0] for k, v in parse_qs(parts.query).items()}
        subscription_id = path.split("/")[2].lower()
        if match := _JOB.match(path):
            return self._job(subscription_id, match["job"].lower())
        if match := _LIST.match(path):
            return self._list(subscription_id, match["vault"].lower(), query)
        raise ValueError(f"the virtual Azure serves job details and lists only, not {path}")

    def post_query(self, url: str, body: Mapping[str, Any]) -> tuple[dict[str, Any] | Throttle, dict[str, str]]:
        """Resource Graph's ``resources`` query, as ``jobs.arm.transport.ArmTransport.post`` answers it: the tracker's
        own query (jobs by name, ended) over its status ``graph_lag_seconds`` ago, with the per-user quota."""
        if urlsplit(url).path.lower() != _GRAPH_PATH:
            raise ValueError(f"the virtual Azure serves Resource Graph queries only, not POST {url}")
        now = self.clock()
        start, used = self._graph_window or (now, 0)
        if (now - start).total_seconds() >= GRAPH_WINDOW_SECONDS:
            start, used = now, 0
        used += 1
        self._graph_window = (start, used)
        resets = max(0.0, GRAPH_WINDOW_SECONDS - (now - start).total_seconds())
        headers = {"x-ms-user-quota-remaining": str(max(0, GRAPH_QUOTA - used)),
                   "x-ms-user-quota-resets-after": f"00:00:{resets:06.3f}"}
        throttled = used > GRAPH_QUOTA
        self.reads.append(ArmRead(now, GRAPH, "graph", None, throttled))
        if throttled:
            return Throttle("RateLimiting", "Resource Graph quota spent", resets), headers
        names = _GRAPH_NAMES.search(str(body.get("query") or ""))
        if names is None:
            raise ArmError(400, "BadRequest", "the virtual Azure answers the tracker's own query only")
        seen = now - timedelta(seconds=self.graph_lag_seconds)
        subscriptions = {str(s).lower() for s in body.get("subscriptions") or []}
        rows = []
        for name in re.findall(r"'([^']+)'", names[1]):
            job = self.jobs.get(name.lower())
            if (job is None or job.visible_at is None or seen < job.visible_at or seen < job.ended_at
                    or job.vault_id.split("/")[2].lower() not in subscriptions):
                continue
            rows.append({"id": f"{job.vault_id}/backupJobs/{job.job_id}".lower(), "name": job.job_id,
                         "status": job.final_status})
        return {"totalRecords": len(rows), "count": len(rows), "resultTruncated": "false", "data": rows,
                "facets": []}, headers

    def _read(self, subscription_id: str, kind: str, job_id: str | None) -> Throttle | None:
        allowed = self._bucket.take(subscription_id)
        self.reads.append(ArmRead(self.clock(), subscription_id, kind, job_id, not allowed))
        if allowed:
            if self.on_headers is not None:  # what is left after this read, as ARM reports it on each answer
                left = str(self._bucket.level(subscription_id))
                self.on_headers(f"{self.endpoint}/subscriptions/{subscription_id}",
                                {"x-ms-ratelimit-remaining-subscription-reads": left})
            return None
        return Throttle("SubscriptionRequestsThrottled", "read budget of the subscription spent", RETRY_AFTER_SECONDS)

    def _job(self, subscription_id: str, job_id: str) -> dict[str, Any] | Throttle:
        if throttled := self._read(subscription_id, "get", job_id):
            return throttled
        job = self.jobs.get(job_id)
        now = self.clock()
        if job is None or job.visible_at is None or now < job.visible_at:
            raise ArmNotFound(404, "BMSUserErrorJobNotFound", f"The job with Id {job_id} was not found.")
        return job.resource(now, detailed=True)

    def _list(self, subscription_id: str, vault: str, query: dict[str, str]) -> dict[str, Any] | Throttle:
        if throttled := self._read(subscription_id, "list", None):
            return throttled
        wanted = re.search(r"status eq '(\w+)'", query.get("$filter", ""))
        now = self.clock()
        listed = [
            job for job in self._by_vault.get(vault, [])
            if job.visible_at is not None and now >= job.visible_at
            and (wanted is None or job.status(now) == wanted[1])
        ]
        listed.sort(key=lambda job: (job.started_at, job.job_id), reverse=True)
        skip = int(query.pop("$skiptoken", "0"))
        page = {"value": [job.resource(now, detailed=False) for job in listed[skip : skip + self.page_size]]}
        if skip + self.page_size < len(listed):
            next_query = urlencode({**query, "$skiptoken": str(skip + self.page_size)})
            page["nextLink"] = f"{self.endpoint}{listed[0].vault_id}/backupJobs?{next_query}"
        return page

    def reads_of(self, job_id: str) -> int:
        return sum(1 for read in self.reads if read.job_id == job_id)

    def worst_rate(self, window: timedelta = timedelta(seconds=10)) -> float:
        """The most reads one subscription sent within any ``window``, per second."""
        worst = 0
        by_subscription: dict[str, list[datetime]] = {}
        for read in self.reads:
            if read.subscription_id == GRAPH:
                continue  # Resource Graph's quota is per user, not the subscription's bucket
            by_subscription.setdefault(read.subscription_id, []).append(read.at)
        for times in by_subscription.values():
            times.sort()
            start = 0
            for end, at in enumerate(times):
                while at - times[start] >= window:
                    start += 1
                worst = max(worst, end - start + 1)
        return worst / window.total_seconds()
