"""The HTTP API (docs/reference.md, "HTTP API"): plain Python, request in, response out, no web framework.

The Functions HTTP triggers (``jobs.http_functions``) and ``python -m jobs run --http-port`` (``jobs.local_http``)
both turn their request into an ``ApiRequest`` and hand it to ``HttpApi``; nothing here knows which one called.

- ``POST /api/jobs``: any intake body (the queue's shapes and rules, through ``Intake.parse`` and ``Intake.track``:
  one validation). 202 with an absolute ``Location``, the job's status URL; 400 ``application/problem+json``
  naming the field. A rejected body is answered, not queued: the caller hears the reason at once and still holds
  its body, so ``<JOBS_INTAKE_QUEUE>-rejected`` (which exists for messages nobody would hear of) does not get it.
- ``GET /api/jobs/{trackingId}?sig=...``: 202 with ``Retry-After`` while the job runs, 200 with the result event
  once it ended, 404 when unknown. ``DELETE`` on the same URL drops a subscriber, and stops tracking when none is
  left. ``DELETE /api/jobs?callbackUrl=...``: the Logic Apps unsubscribe, by callback URL, whatever the job.
- ``GET /api/health``: 200, or 503 naming what does not work.

The status URL is a capability: a Logic App's polling GET carries no function key, so the URL itself must
authorise. ``POST`` draws 32 random bytes (``sig``) per status URL and stores only their SHA-256 (never the token)
on a row of the job's partition, with the subscriber it was issued for. A request's ``sig`` is hashed and looked
up by that hash (a point read) and compared in constant time; a missing ``sig`` is 401, a wrong one or an
unknown job the same 404, so nothing tells whether a job exists. Random tokens were chosen over an HMAC of the
tracking id: no signing secret to deploy, and nothing to rotate that would break status URLs already handed
out; a URL lives exactly as long as its job's rows (``JOBS_RETENTION_DAYS`` after the end).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import math
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from jobs.config import ConfigError
from jobs.domain.references import JobRef
from jobs.domain.tracked_item import TrackedItem
from jobs.flows.intake import IntakeRejected
from jobs.flows.result_events import event_bytes, named_its_jobs
from jobs.storage.account import ClientOptions, StorageAccount, is_unreachable
from jobs.tracker import Tracker

__all__ = [
    "PROBLEM_JSON",
    "ROUTE_PREFIX",
    "ApiRequest",
    "ApiResponse",
    "HttpApi",
    "public_base_url",
    "token_hash",
]

log = logging.getLogger(__name__)

ROUTE_PREFIX = "/api"  # host.json's routePrefix (the default, "api"), and the local server's
PROBLEM_JSON = "application/problem+json"
JSON = "application/json; charset=utf-8"
PROBLEM_BASE = "urn:backup-job-tracker:problem:"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
_TRACKING_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,250}")
# The health check's own clients: an unreachable account is answered within seconds, not after the SDK's retries.
HEALTH_STORAGE = ClientOptions(retry_total=0, connection_timeout=3, read_timeout=5)


@dataclass(frozen=True)
class ApiRequest:
    """One HTTP request as the API sees it. ``headers`` keys are lower case; ``url`` is what the host saw."""

    method: str
    path: str
    url: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def public_base_url(url: str, headers: Mapping[str, str]) -> str:
    """``scheme://host`` as the caller reached the app. Behind Azure's front ends (App Service, API Management,
    Front Door) the host sees an internal hop: ``X-Forwarded-Host`` and ``X-Forwarded-Proto`` (or App Service's
    ``X-ARR-SSL``) say what the caller used; otherwise the ``Host`` header and the request's own scheme."""
    parts = urlsplit(url)
    forwarded_host = _first(headers.get("x-forwarded-host"))
    forwarded_proto = _first(headers.get("x-forwarded-proto"))
    host = forwarded_host or headers.get("host") or parts.netloc
    if forwarded_proto in ("http", "https"):
        scheme = forwarded_proto
    elif headers.get("x-arr-ssl") or forwarded_host:
        scheme = "https"
    else:
        scheme = parts.scheme or "http"
    return f"{scheme}://{host}"


def _first(value: str | None) -> str:
    return (value or "").split(",")[0].strip().lower() if value else ""


def _problem(status: int, kind: str, title: str, detail: str, **extra: Any) -> ApiResponse:
    """RFC 9457 problem details: type, title, status, detail, plus members of our own (``field``, ``checks``)."""
    body = {"type": PROBLEM_BASE + kind, "title": title, "status": status, "detail": detail, **extra}
    return ApiResponse(status, {"Content-Type": PROBLEM_JSON}, json.dumps(body).encode("utf-8"))


def _json(status: int, value: Any, headers: dict[str, str] | None = None) -> ApiResponse:
    return ApiResponse(status, {"Content-Type": JSON, **(headers or {})}, json.dumps(value).encode("utf-8"))


_NOT_FOUND = ("not-found", "Not found", "no job is tracked at this URL (or the URL's sig is not one this API issued)")


class _Refused(Exception):
    """A request answered before its handler's work: a problem response (``_problem``'s arguments)."""

    def __init__(self, status: int, kind: str, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.response = _problem(status, kind, title, detail, **extra)


def _answering_refusals(handler: Callable[..., ApiResponse]) -> Callable[..., ApiResponse]:
    """A handler whose ``_Refused`` (no tracker, a bad capability) is its answer."""

    @functools.wraps(handler)
    def answer(*args: Any, **kwargs: Any) -> ApiResponse:
        try:
            return handler(*args, **kwargs)
        except _Refused as refused:
            return refused.response

    return answer


class HttpApi:
    """The API over a tracker. ``get_tracker`` may raise ``ConfigError`` (a wrong setting): each call then answers
    503 naming it, as the health check does."""

    def __init__(self, get_tracker: Callable[[], Tracker]) -> None:
        self._get_tracker = get_tracker
        self._probe: StorageAccount | None = None

    # -- routing (the local server; the Functions triggers call the methods below directly) ---------------------
    def handle(self, request: ApiRequest) -> ApiResponse:
        path = request.path.rstrip("/")
        if not path.startswith(ROUTE_PREFIX + "/"):
            return _problem(404, *_NOT_FOUND)
        route = path[len(ROUTE_PREFIX) + 1 :]
        if route == "jobs":
            if request.method == "POST":
                return self.post_job(request)
            if request.method == "DELETE":
                return self.unsubscribe(request)
            return self._not_allowed("POST, DELETE")
        if route.startswith("jobs/") and "/" not in route[5:]:
            tracking_id = route[5:]
            if request.method == "GET":
                return self.get_job(request, tracking_id)
            if request.method == "DELETE":
                return self.delete_job(request, tracking_id)
            return self._not_allowed("GET, DELETE")
        if route == "health":
            return self.health(request) if request.method == "GET" else self._not_allowed("GET")
        return _problem(404, *_NOT_FOUND)

    @staticmethod
    def _not_allowed(allow: str) -> ApiResponse:
        response = _problem(405, "method-not-allowed", "Method not allowed", f"this route answers {allow}")
        response.headers["Allow"] = allow
        return response

    def _tracker(self) -> Tracker:
        try:
            return self._get_tracker()
        except ConfigError as exc:
            raise _Refused(503, "unhealthy", "Backup Job Tracker is not healthy", str(exc),
                           checks={"configuration": str(exc)}) from None

    # -- POST /api/jobs ----------------------------------------------------------------------------------------
    @_answering_refusals
    def post_job(self, request: ApiRequest) -> ApiResponse:
        tracker = self._tracker()
        try:
            track = tracker.intake.parse(request.body)
        except IntakeRejected as exc:
            log.info("POST /api/jobs refused (400): %s", exc)
            return _problem(400, "invalid-intake", "The body is not a job the tracker can track", str(exc),
                            field=exc.field)
        acceptance = tracker.intake.track(track)
        base = public_base_url(request.url, request.headers)
        jobs = []
        for tracking_id in acceptance.tracking_ids:
            token = secrets.token_urlsafe(32)
            tracker.store.add_capability(tracking_id, token_hash(token), track.subscriber.key)
            jobs.append({"trackingId": tracking_id, "statusUrl": _status_url(base, tracking_id, token)})
        first = jobs[0]
        retry = self._retry_after(tracker, [tracker.store.get(first["trackingId"])])
        log.info("POST /api/jobs: tracking %s", ", ".join(acceptance.tracking_ids))
        return _json(202, {**first, "jobs": jobs},
                     {"Location": first["statusUrl"], "Retry-After": str(retry)})

    # -- GET /api/jobs/{trackingId} ----------------------------------------------------------------------------
    @_answering_refusals
    def get_job(self, request: ApiRequest, tracking_id: str) -> ApiResponse:
        tracker = self._tracker()
        granted = self._capability(tracker, request, tracking_id)
        item = tracker.store.get(tracking_id)
        record = tracker.store.get_subscriber(tracking_id, granted)
        if item is None or record is None:  # stopped, swept, or this subscriber unsubscribed
            return _problem(404, *_NOT_FOUND)
        targets = self._targets(tracker, item)
        running = [t for t in targets if not t.ended]
        if running or not targets:
            location = _status_url(public_base_url(request.url, request.headers), tracking_id,
                                   request.query.get("sig", ""))
            retry = self._retry_after(tracker, running or [item])
            body = {"trackingId": tracking_id, "status": (running[0].status if running else None) or "NotStarted"}
            return _json(202, body, {"Location": location, "Retry-After": str(retry)})
        events = [json.loads(event_bytes(t, record)) for t in targets]
        return _json(200, events[0] if len(events) == 1 else events)

    # -- DELETE /api/jobs/{trackingId} -------------------------------------------------------------------------
    @_answering_refusals
    def delete_job(self, request: ApiRequest, tracking_id: str) -> ApiResponse:
        tracker = self._tracker()
        granted = self._capability(tracker, request, tracking_id)
        item = tracker.store.get(tracking_id)
        if item is None:
            return _problem(404, *_NOT_FOUND)
        callback_url = request.query.get("callbackUrl")
        for target in [item.tracking_id, *(t.tracking_id for t in self._targets(tracker, item) if t is not item)]:
            if callback_url:
                keys = [r.key for r in tracker.store.list_subscribers(target)
                        if r.subscriber.callback_url == callback_url]
            else:
                keys = [granted]
            for key in keys:
                tracker.store.remove_subscriber(target, key, callback_url=callback_url)
            self._stop_if_unsubscribed(tracker, target)
        return ApiResponse(204)

    # -- DELETE /api/jobs?callbackUrl= -------------------------------------------------------------------------
    @_answering_refusals
    def unsubscribe(self, request: ApiRequest) -> ApiResponse:
        tracker = self._tracker()
        callback_url = request.query.get("callbackUrl")
        if not callback_url:
            return _problem(400, "invalid-request", "callbackUrl is missing",
                            "callbackUrl is missing: DELETE /api/jobs?callbackUrl=<the URL given when subscribing>",
                            field="callbackUrl")
        found = tracker.store.list_callback_subscriptions(callback_url)
        for tracking_id, key in found:
            tracker.store.remove_subscriber(tracking_id, key, callback_url=callback_url)
            self._stop_if_unsubscribed(tracker, tracking_id)
        log.info("unsubscribed a callback URL from %d job(s)", len(found))
        return ApiResponse(204)

    # -- GET /api/health ---------------------------------------------------------------------------------------
    @_answering_refusals
    def health(self, request: ApiRequest) -> ApiResponse:
        tracker = self._tracker()
        checks: dict[str, str] = {}
        problems: list[str] = []
        if tracker.settings.webhook_secret_problem:
            problems.append(f"configuration: {tracker.settings.webhook_secret_problem}")
            checks["configuration"] = tracker.settings.webhook_secret_problem
        else:
            checks["configuration"] = "ok"
        storage = self._check_storage(tracker)
        checks["storage"] = storage or "ok"
        if storage:
            problems.append(f"storage: {storage}")
        failing = tracker.failing_subscriptions()
        checks["arm"] = "; ".join(f"{key}: {why}" for key, why in sorted(failing.items())) or "ok"
        problems += [f"ARM reads refused for {key}: {why}" for key, why in sorted(failing.items())]
        if problems:
            return _problem(503, "unhealthy", "Backup Job Tracker is not healthy", "; ".join(problems), checks=checks)
        return _json(200, {"status": "healthy", "checks": checks})

    def _check_storage(self, tracker: Tracker) -> str | None:
        if self._probe is None:
            self._probe = StorageAccount(tracker.settings.storage, HEALTH_STORAGE)
        probe = self._probe
        try:
            probe.queue(tracker.settings.intake_queue).get_queue_properties()
            next(iter(probe.table(tracker.settings.table).query_entities(
                "PartitionKey eq @pk", parameters={"pk": "health"}, results_per_page=1)), None)
        except Exception as exc:
            if is_unreachable(exc):
                return probe.describe_unreachable(exc)
            status = getattr(exc, "status_code", None)
            code = getattr(exc, "error_code", None)
            if status:
                return f"the storage account answered {status} ({code or 'no error code'})"
            return f"{type(exc).__name__} while reading queue {tracker.settings.intake_queue} and table " \
                   f"{tracker.settings.table}"
        return None

    # -- helpers -----------------------------------------------------------------------------------------------
    def _capability(self, tracker: Tracker, request: ApiRequest, tracking_id: str) -> str:
        """The subscriber key a status URL was issued for; else ``_Refused`` with the answer to give (401 or 404)."""
        token = request.query.get("sig")
        if not token:
            raise _Refused(401, "unauthorized", "Unauthorized",
                           "this URL needs the sig that POST /api/jobs returned in its Location header")
        if not _TOKEN.fullmatch(token) or not _TRACKING_ID.fullmatch(tracking_id):
            raise _Refused(404, *_NOT_FOUND)
        wanted = token_hash(token)
        found = tracker.store.get_capability(tracking_id, wanted)
        if found is None or not hmac.compare_digest(found[0].encode(), wanted.encode()):
            raise _Refused(404, *_NOT_FOUND)
        return found[1]

    @staticmethod
    def _targets(tracker: Tracker, item: TrackedItem) -> list[TrackedItem]:
        """What the status answers for: the item, or, once an operation named its jobs, those jobs."""
        if not named_its_jobs(item):
            return [item]
        jobs = (tracker.store.get(JobRef.create(item.vault, job_id).key) for job_id in item.named_jobs or [])
        return [job for job in jobs if job is not None]

    @staticmethod
    def _retry_after(tracker: Tracker, items: list[TrackedItem | None]) -> int:
        """Seconds until the soonest next poll of ``items`` (a due row waits for the next round), at least 1."""
        now = tracker.clock()
        period = tracker.settings.poll_seconds
        waits = []
        for item in items:
            if item is None or item.ended:
                continue
            entry = tracker.store.get_index_entry(item.tracking_id)
            seconds = (entry.next_poll_at - now).total_seconds() if entry else period
            waits.append(seconds if seconds > 0 else period)
        return max(1, math.ceil(min(waits, default=period)))

    @staticmethod
    def _stop_if_unsubscribed(tracker: Tracker, tracking_id: str) -> None:
        """A running item nobody subscribes to any more is not tracked any longer; an ended one keeps its history."""
        item = tracker.store.get(tracking_id)
        if item is not None and not item.ended and not tracker.store.list_subscribers(tracking_id):
            tracker.store.delete(tracking_id)
            log.info("stopped tracking %s: its last subscriber unsubscribed", tracking_id)


def _status_url(base: str, tracking_id: str, token: str) -> str:
    return f"{base}{ROUTE_PREFIX}/jobs/{quote(tracking_id, safe='')}?sig={token}"
