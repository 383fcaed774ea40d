"""The HTTP API (docs/reference.md, "HTTP API"): plain Python, request in, response out, no web framework.

The Functions HTTP triggers (``jobs.http_functions``) and ``python -m jobs run --http-port`` (``jobs.local_http``)
both turn their request into an ``ApiRequest`` and hand it to ``HttpApi``, which turns it into one call of the
tracker's front door and its result into a response (status, headers, problem details). The rules (which body is
trackable, what a status URL's ``sig`` grants, who unsubscribes what) are the tracker's (``jobs.flows``).

- ``POST /api/jobs``: any intake body. 202 with an absolute ``Location`` (the job's status URL, carrying its
  capability ``sig``); 400 ``application/problem+json`` naming the field. A rejected body is answered, not queued.
- ``GET /api/jobs/{trackingId}?sig=...``: 202 with ``Retry-After`` while the job runs, 200 with the result event
  once it ended; 401 without a ``sig``, 404 for a wrong one or an unknown job alike. ``DELETE`` on the same URL
  lets go of its subscription. ``DELETE /api/jobs``: the Logic Apps unsubscribe, by the headers its subscribe call
  carried (``webhook_action``) or by ``?callbackUrl=``; 404 when nothing matched.
- ``GET /api/health``: 200, or 503 naming what does not work.

Every route answers problem+json when it fails: 503 with ``Retry-After`` for a failure that passes (storage out of
reach or busy, a DNS server that could not answer for a callback host), 500 for anything else. A status URL starts
with ``JOBS_PUBLIC_BASE_URL`` when it is set, else with the caller's validated host.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from azure.core.exceptions import HttpResponseError

from jobs.config import ConfigError
from jobs.flows.intake import IntakeRejected
from jobs.flows.subscriptions import token_hash
from jobs.storage.account import is_unreachable
from jobs.tracker import CapabilityRefused, Tracker
from jobs.webhooks.callback_urls import CallbackUrlUnverified

__all__ = [
    "PROBLEM_JSON",
    "ROUTE_PREFIX",
    "ApiRequest",
    "ApiResponse",
    "HttpApi",
    "public_base_url",
    "token_hash",
    "webhook_action",
]

log = logging.getLogger(__name__)

ROUTE_PREFIX = "/api"  # host.json's routePrefix (the default, "api"), and the local server's
PROBLEM_JSON = "application/problem+json"
JSON = "application/json; charset=utf-8"
PROBLEM_BASE = "urn:backup-job-tracker:problem:"
# Seconds a caller is asked to wait after a 503 for a failure that passes (storage out of reach, a DNS server that
# could not answer): Logic Apps retries 408, 429 and 5xx, and a client that reads Retry-After waits this long.
UNAVAILABLE_RETRY_AFTER = 30


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


def public_base_url(url: str, headers: Mapping[str, str]) -> str:
    """``scheme://host`` as the caller reached the app, when ``JOBS_PUBLIC_BASE_URL`` does not say it. Behind
    Azure's front ends (App Service, API Management, Front Door) the host sees an internal hop: ``X-Forwarded-Host``
    and ``X-Forwarded-Proto`` (or App Service's ``X-ARR-SSL``) say what the caller used; otherwise the ``Host``
    header and the request's own scheme. The host must be a host name or an IP address with an optional port,
    else ``ValueError``: nothing else of a header reaches a ``Location``."""
    parts = urlsplit(url)
    forwarded_host = _first(headers.get("x-forwarded-host"))
    forwarded_proto = _first(headers.get("x-forwarded-proto"))
    raw = forwarded_host or (headers.get("host") or "").strip() or parts.netloc
    host = _authority(raw)
    if host is None:
        header = "X-Forwarded-Host" if forwarded_host else "Host"
        raise ValueError(f"the {header} header {raw[:100]!r} is not a host name or IP address with an optional port; "
                         "the app's operator can set JOBS_PUBLIC_BASE_URL")
    if forwarded_proto in ("http", "https"):
        scheme = forwarded_proto
    elif headers.get("x-arr-ssl") or forwarded_host:
        scheme = "https"
    else:
        scheme = parts.scheme or "http"
    return f"{scheme}://{host}"


_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_PORT = re.compile(r"[0-9]{1,5}")


def _authority(text: str) -> str | None:
    """``host[:port]`` lower-cased when it is a DNS name, an IPv4 or a bracketed IPv6 address with a port from 1
    to 65535; else None."""
    text = text.strip().lower()
    if text.startswith("["):
        address, bracket, port = text[1:].partition("]")
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            return None
        if not bracket or (port and not port.startswith(":")):
            return None
        port = port[1:]
        host_ok = True
    else:
        host, colon, port = text.partition(":")
        host_ok = len(host) <= 253 and _HOST_NAME.fullmatch(host) is not None
        if colon and not port:
            return None
    if not host_ok or (port and (not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535)):
        return None
    return text


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
    """A handler whose ``_Refused`` (no tracker, a bad capability) is its answer; a failure that passes (storage
    out of reach or busy, a DNS server that could not answer) is a 503 with ``Retry-After``, anything else a 500:
    problem+json either way, never the host's bare error page."""

    @functools.wraps(handler)
    def answer(*args: Any, **kwargs: Any) -> ApiResponse:
        try:
            return handler(*args, **kwargs)
        except _Refused as refused:
            return refused.response
        except Exception as exc:
            refused = _storage_refused(exc)
            if refused is not None:  # a wrong key or a missing role: lasts until the operator acts, no Retry-After
                log.error("%s answered 503: %s", handler.__name__, refused)
                return _problem(503, "unhealthy", "Backup Job Tracker is not healthy", refused,
                                checks={"storage": refused})
            transient = _transient(exc)
            if transient is None:
                log.exception("%s failed", handler.__name__)
                return _problem(500, "internal", "Internal error",
                                "the tracker failed on this request; the log has the details")
            log.warning("%s answered 503: %s", handler.__name__, transient)
            response = _problem(503, "unavailable", "Service unavailable, try again", transient)
            response.headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
            return response

    return answer


def _storage_refused(exc: Exception) -> str | None:
    """What a storage refusal (401, 403) says, as the health check would name it; None for anything else."""
    if isinstance(exc, HttpResponseError) and exc.status_code in (401, 403):
        return (f"the tracker's storage refused its request ({exc.status_code}): check AzureWebJobsStorage and the "
                "identity's roles on the account")
    return None


def _transient(exc: Exception) -> str | None:
    """What a failure that passes says to the caller (no endpoint, no secret), or None for any other failure."""
    if isinstance(exc, CallbackUrlUnverified):
        return f"{exc}; nothing was tracked, send the request again"
    if is_unreachable(exc):
        return "the tracker's storage cannot be reached just now"
    if isinstance(exc, HttpResponseError) and (exc.status_code in (408, 429) or (exc.status_code or 0) >= 500):
        return f"the tracker's storage answered {exc.status_code} just now"
    return None


class HttpApi:
    """The API over a tracker. ``get_tracker`` may raise ``ConfigError`` (a wrong setting): each call then answers
    503 naming it, as the health check does."""

    def __init__(self, get_tracker: Callable[[], Tracker]) -> None:
        self._get_tracker = get_tracker

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

    @staticmethod
    def _base(tracker: Tracker, request: ApiRequest) -> str:
        """What a status URL starts with: ``JOBS_PUBLIC_BASE_URL``, else the caller's validated host."""
        configured = tracker.public_base_url()
        if configured:
            return configured
        try:
            return public_base_url(request.url, request.headers)
        except ValueError as exc:
            raise _Refused(400, "invalid-request", "The request's host is not valid", str(exc), field="Host") from None

    def _refused(self, refused: CapabilityRefused) -> ApiResponse:
        if refused.status == 401:
            return _problem(401, "unauthorized", "Unauthorized", refused.detail)
        return _problem(404, *_NOT_FOUND)

    # -- POST /api/jobs ----------------------------------------------------------------------------------------
    @_answering_refusals
    def post_job(self, request: ApiRequest) -> ApiResponse:
        tracker = self._tracker()
        base = self._base(tracker, request)  # first: a request with a bad Host header tracks nothing
        try:
            tracked = tracker.track(request.body, webhook_action(request.headers))
        except IntakeRejected as exc:
            log.info("POST /api/jobs refused (400): %s", exc)
            return _problem(400, "invalid-intake", "The body is not a job the tracker can track", str(exc),
                            field=exc.field)
        jobs = [{"trackingId": grant.tracking_id, "statusUrl": _status_url(base, grant.tracking_id, grant.token)}
                for grant in tracked.grants]
        first = jobs[0]
        return _json(202, {**first, "jobs": jobs},
                     {"Location": first["statusUrl"], "Retry-After": str(tracked.retry_after)})

    # -- GET /api/jobs/{trackingId} ----------------------------------------------------------------------------
    @_answering_refusals
    def get_job(self, request: ApiRequest, tracking_id: str) -> ApiResponse:
        tracker = self._tracker()
        try:
            view = tracker.get_status(tracking_id, request.query.get("sig"))
        except CapabilityRefused as refused:
            return self._refused(refused)
        if view.running:
            location = _status_url(self._base(tracker, request), tracking_id, request.query.get("sig", ""))
            return _json(202, {"trackingId": tracking_id, "status": view.status},
                         {"Location": location, "Retry-After": str(view.retry_after)})
        return _json(200, view.events[0] if len(view.events) == 1 else view.events)

    # -- DELETE /api/jobs/{trackingId} -------------------------------------------------------------------------
    @_answering_refusals
    def delete_job(self, request: ApiRequest, tracking_id: str) -> ApiResponse:
        tracker = self._tracker()
        try:
            tracker.unsubscribe(tracking_id, request.query.get("sig"), request.query.get("callbackUrl"))
        except CapabilityRefused as refused:
            return self._refused(refused)
        return ApiResponse(204)

    # -- DELETE /api/jobs (a Logic Apps unsubscribe) -----------------------------------------------------------
    @_answering_refusals
    def unsubscribe(self, request: ApiRequest) -> ApiResponse:
        """By ``?callbackUrl=``, or by the Logic Apps headers the subscribe call carried (``?correlationId=``
        narrows it to the subscribers that gave it); 204, or 404 when nothing matched."""
        tracker = self._tracker()
        callback_url = request.query.get("callbackUrl") or webhook_action(request.headers)
        if not callback_url:
            return _problem(400, "invalid-request", "callbackUrl is missing",
                            "callbackUrl is missing: DELETE /api/jobs?callbackUrl=<the URL given when subscribing>, "
                            f"or send the {CLIENT_TRACKING_ID} and {OPERATION_NAME} headers of the Logic Apps "
                            "HTTP Webhook action that subscribed", field="callbackUrl")
        if not tracker.unsubscribe_callback(callback_url, request.query.get("correlationId")):
            return _problem(404, "not-found", "Not found", "no subscription matches this unsubscribe call")
        return ApiResponse(204)

    # -- GET /api/health ---------------------------------------------------------------------------------------
    @_answering_refusals
    def health(self, request: ApiRequest) -> ApiResponse:
        health = self._tracker().check_health()
        if not health.healthy:
            return _problem(503, "unhealthy", "Backup Job Tracker is not healthy", "; ".join(health.problems),
                            checks=health.checks)
        return _json(200, {"status": "healthy", "checks": health.checks})


# What a Logic Apps HTTP Webhook action sends on its subscribe and its unsubscribe call alike (its unsubscribe cannot
# use listCallbackUrl()): the run's client tracking id and the action's name.
CLIENT_TRACKING_ID = "x-ms-client-tracking-id"
OPERATION_NAME = "x-ms-workflow-operation-name"


def webhook_action(headers: Mapping[str, str]) -> str | None:
    """The identity of the Logic Apps webhook action that sent these headers, or None without both. It is a key in
    the callback index beside the callback URLs, which it cannot be mistaken for (those are https URLs)."""
    tracking_id, operation = headers.get(CLIENT_TRACKING_ID, "").strip(), headers.get(OPERATION_NAME, "").strip()
    if not tracking_id or not operation:
        return None
    return f"logic-apps-webhook-action:{json.dumps([tracking_id, operation])}"


def _status_url(base: str, tracking_id: str, token: str) -> str:
    return f"{base}{ROUTE_PREFIX}/jobs/{quote(tracking_id, safe='')}?sig={token}"
