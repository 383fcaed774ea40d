"""``wait``: the drop-in for ``az backup job wait`` that scripts can trust, over the deployed HTTP API.

It starts tracking a job (``POST /api/jobs`` with the function key), follows the status URL it is given, sleeping
as its ``Retry-After`` says, and ends with the result event: printed as JSON on stdout, one line on stderr, and an
exit code that tells the outcomes apart (``EXIT_CODES``; 0 only for ``BackupJob.Completed``). An operation that
named several jobs answers with their events as an array: its code is the worst of theirs (``SEVERITY``).

The API may be briefly unreachable (a network error, 5xx, 429): requests are repeated, honouring ``Retry-After``,
until it has failed for ``retry_seconds`` in a row; then the wait ends with ``UNREACHABLE``. It never sends the
function key anywhere but the ``--api`` URL, which must be https unless it is on loopback.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from jobs.arm import parse_retry_after
from jobs.setting import is_loopback

__all__ = [
    "API_UNREACHABLE", "BAD_REQUEST", "EXIT_CODES", "SEVERITY", "WAIT_TIMEOUT", "WaitError", "WaitOutcome", "Waiter",
    "api_base", "dumps", "exit_code", "intake_body",
]

BAD_REQUEST = 2  # bad arguments, or the API answered 400 (the body names no job it can track)
WAIT_TIMEOUT = 8  # the wait's own --timeout passed before the job ended (the job is still tracked)
API_UNREACHABLE = 9  # the API could not be reached or refused us (network, 5xx for retry_seconds, 401/403)
# The result event's type, and the exit code it gives.
EXIT_CODES: dict[str, int] = {
    "BackupJob.Completed": 0,
    "BackupJob.Failed": 1,
    "BackupJob.CompletedWithWarnings": 3,
    "BackupJob.Cancelled": 4,
    "BackupJob.TimedOut": 5,
    "BackupJob.NotFound": 6,  # also: the status URL answers 404 (job removed, or unsubscribed)
    "BackupJob.OperationFailed": 7,
    "BackupJob.TrackingFailed": 10,
}
NOT_FOUND = EXIT_CODES["BackupJob.NotFound"]
# Several events (an operation that named several jobs): the exit code of the first type here that is present.
SEVERITY = (
    "BackupJob.Failed", "BackupJob.OperationFailed", "BackupJob.TrackingFailed", "BackupJob.NotFound",
    "BackupJob.TimedOut", "BackupJob.Cancelled", "BackupJob.CompletedWithWarnings", "BackupJob.Completed",
)
_FIRST_BACKOFF_SECONDS = 1.0
_MAX_BACKOFF_SECONDS = 30.0
_DEFAULT_RETRY_AFTER = 5.0


class WaitError(Exception):
    """The wait ends without an event: ``code`` and one line saying why."""

    def __init__(self, code: int, line: str) -> None:
        super().__init__(line)
        self.code = code
        self.line = line


@dataclass(frozen=True)
class WaitOutcome:
    code: int
    line: str  # for stderr
    events: Any = None  # the event (or the array of events) for stdout; None when there is none


def api_base(url: str) -> str:
    """The API's base URL (``https://<app>.azurewebsites.net/api``), from the app's URL with or without ``/api``.
    https is required unless the host is loopback: the function key goes with the request."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise WaitError(BAD_REQUEST, f"--api {url!r} is not an absolute http(s) URL such as "
                                     "https://<app>.azurewebsites.net/api")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise WaitError(BAD_REQUEST, f"--api {url!r} must be https (the function key goes with it); http only "
                                     "for a loopback host")
    base = url.strip().rstrip("/")
    return base if base.endswith("/api") else base + "/api"


def intake_body(target: str | None, vault_id: str | None, job_id: str | None,
                correlation_id: str | None = None) -> dict[str, Any]:
    """The ``POST /api/jobs`` body: a job's resource id, an operation's URL (``http(s)://...``), or vault + jobId."""
    body: dict[str, Any]
    if target and not (vault_id or job_id):
        body = {"operationUrl": target} if target.lower().startswith(("https://", "http://")) else {
            "jobResourceId": target}
    elif vault_id and job_id and not target:
        body = {"vaultId": vault_id, "jobId": job_id}
    else:
        raise WaitError(BAD_REQUEST, "give a job's resource id or an operation's URL, or --vault-id and --job-id")
    if correlation_id:
        body["correlationId"] = correlation_id
    return body


def _summary(events: Any, code: int) -> str:
    listed = events if isinstance(events, list) else [events]
    if len(listed) == 1:
        event = listed[0]
        data = event.get("data") or {}
        errors = data.get("errors") or []
        what = f"job {data['jobId']}" if data.get("jobId") else str(event.get("subject"))
        name = f" ({data['entityFriendlyName']})" if data.get("entityFriendlyName") else ""
        why = f": {errors[0].get('message') or errors[0].get('code')}" if errors else ""
        return f"{event.get('type')}: {what}{name}{why} (exit {code})"
    counts: dict[str, int] = {}
    for event in listed:
        counts[str(event.get("type"))] = counts.get(str(event.get("type")), 0) + 1
    return f"{len(listed)} jobs: " + ", ".join(f"{n} {t}" for t, n in counts.items()) + f" (exit {code})"


def exit_code(events: Any) -> int:
    """The exit code of one event, or of an array of them (the most severe)."""
    types = {str(event.get("type")) for event in (events if isinstance(events, list) else [events])}
    for kind in SEVERITY:
        if kind in types:
            return EXIT_CODES[kind]
    return API_UNREACHABLE  # not an event of this contract: the API is not the tracker's


class Waiter:
    """One wait: POST, then GET the status URL until it answers 200 (or the deadline, or the API is lost)."""

    def __init__(self, api: str, key: str | None, *, timeout: float | None = None, retry_seconds: float = 60.0,
                 session: requests.Session | None = None, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic,
                 progress: Callable[[str], None] | None = None) -> None:
        self.api = api_base(api)
        self._key = key
        self._timeout = timeout
        self._retry_seconds = retry_seconds
        self._session = session or requests.Session()
        self._sleep = sleep
        self._monotonic = monotonic
        self._progress = progress
        self._deadline = math.inf
        self._tracking_id = "?"

    def wait(self, body: dict[str, Any]) -> WaitOutcome:
        started = self._monotonic()
        self._deadline = started + self._timeout if self._timeout is not None else math.inf
        self._tracking_id = "?"
        try:
            headers = {"x-functions-key": self._key} if self._key else {}
            posted = self._request("POST", self.api + "/jobs", json=body, headers=headers)
            if posted.status_code == 400:
                raise WaitError(BAD_REQUEST, f"the API refused the job: {_problem(posted)}")
            if posted.status_code in (401, 403):
                raise WaitError(API_UNREACHABLE, f"the API refused the key ({posted.status_code}): check --key")
            if posted.status_code != 202 or not posted.headers.get("Location"):
                raise WaitError(API_UNREACHABLE, f"the API answered {posted.status_code} to POST /jobs, not 202 "
                                                 "with a Location: is --api the tracker's?")
            self._tracking_id = _field(posted, "trackingId")
            location = posted.headers["Location"]
            pause = _retry_after(posted)
            while True:
                last = self._pause(pause, final_look=True)
                answer = self._request("GET", location)
                if answer.status_code == 200:
                    events = _json(answer)
                    code = exit_code(events)
                    return WaitOutcome(code, _summary(events, code) if code != API_UNREACHABLE else
                                       "the status URL answered 200 without a result event", events)
                if answer.status_code == 404:
                    raise WaitError(NOT_FOUND, f"tracking id {self._tracking_id}: the status URL answers 404 (the job "
                                               "was removed or unsubscribed)")
                if answer.status_code != 202:
                    raise WaitError(API_UNREACHABLE, f"the status URL answered {answer.status_code}")
                if last:
                    raise self._timed_out()
                if self._progress is not None:
                    elapsed = self._monotonic() - started
                    self._progress(f"waiting for {self._tracking_id}: {_field(answer, 'status')} ({elapsed:.0f} s)")
                pause = _retry_after(answer)
        except WaitError as exc:
            return WaitOutcome(exc.code, exc.line)

    def _pause(self, seconds: float, final_look: bool = False) -> bool:
        """Sleeps ``seconds``, or until the deadline when that comes first: then, with ``final_look``, returns True
        (one last look at the status URL), else ends the wait."""
        left = self._deadline - self._monotonic()
        if seconds < left:
            self._sleep(seconds)
            return False
        if left > 0:
            self._sleep(left)
        if not final_look:
            raise self._timed_out()
        return True

    def _timed_out(self) -> WaitError:
        return WaitError(WAIT_TIMEOUT, f"tracking id {self._tracking_id}: still running after --timeout "
                                       f"{self._timeout:g} s (the tracker still tracks it)")

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One request, repeated on network errors, 5xx and 429 until the API has failed ``retry_seconds`` in a
        row (``API_UNREACHABLE``) or the wait's deadline (``WAIT_TIMEOUT``)."""
        failing_since: float | None = None
        backoff = _FIRST_BACKOFF_SECONDS
        while True:
            try:
                answer = self._session.request(method, url, timeout=(5, 30), allow_redirects=False, **kwargs)
            except requests.RequestException as exc:
                answer, why = None, f"cannot reach {urlsplit(url).netloc}: {type(exc).__name__}"
            else:
                if answer.status_code < 500 and answer.status_code != 429:
                    return answer
                why = f"{urlsplit(url).netloc} answered {answer.status_code}"
            now = self._monotonic()
            failing_since = now if failing_since is None else failing_since
            if now - failing_since >= self._retry_seconds:
                raise WaitError(API_UNREACHABLE, f"the API is unreachable: {why} (for {now - failing_since:.0f} s)")
            hinted = parse_retry_after(answer.headers) if answer is not None else None
            delay = min(max(backoff, hinted or 0.0), self._retry_seconds - (now - failing_since))
            backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
            self._pause(max(delay, 0.0))


def _retry_after(answer: requests.Response) -> float:
    value = parse_retry_after(answer.headers)
    return _DEFAULT_RETRY_AFTER if value is None else max(value, 0.5)


def _json(answer: requests.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return None


def _field(answer: requests.Response, name: str) -> str:
    body = _json(answer)
    return str(body.get(name, "?")) if isinstance(body, dict) else "?"


def _problem(answer: requests.Response) -> str:
    problem = _json(answer)
    if isinstance(problem, dict) and problem.get("detail"):
        field = f" ({problem['field']})" if problem.get("field") else ""
        return f"{problem['detail']}{field}"
    return f"HTTP {answer.status_code}"


def dumps(events: Any) -> str:
    """The event (or events) as stdout gets them: indented JSON."""
    return json.dumps(events, indent=2, ensure_ascii=False)
