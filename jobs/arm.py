"""Azure Resource Manager client for the Recovery Services job endpoints, on ``requests``.

- ``get_job`` (JobDetails_Get, with extendedInfo), ``list_jobs`` (BackupJobs_List with ``$filter``, following
  ``nextLink`` verbatim, but only on ``ARM_ENDPOINT``) and ``get_operation`` (operation status).
- Throttling: a 429 blocks the whole subscription until its ``Retry-After`` has passed; no request for that
  subscription leaves this process before then (``ArmThrottled`` says until when). The window is written to a
  ``ThrottleBoard`` (the table) that every instance reads before each request. A local token bucket per
  subscription keeps our own read rate below ARM's (250 reads, refilled at 25 per second).
- At most ``concurrency_per_subscription`` requests (1) are in flight per subscription, so a 429 stops the next
  request before it leaves.
- 5xx, 408, network errors and unreadable bodies are retried with growing, jittered delays, a few times; then
  ``ArmUnavailable`` lets the caller reschedule instead of holding a Functions invocation.
- The token comes from ``JOBS_ARM_TOKEN`` (simulators, tests) or ``DefaultAzureCredential``; it is never logged.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import requests

from jobs.references import JobRef, OperationRef, VaultRef

__all__ = [
    "ArmClient",
    "ArmError",
    "ArmForbidden",
    "ArmNotFound",
    "ArmThrottled",
    "ArmUnavailable",
    "ReadBudget",
    "StaticToken",
    "ThrottleBoard",
    "TokenProvider",
    "parse_retry_after",
]

log = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER = 10.0


class TokenProvider(Protocol):
    def get_token(self) -> str: ...


class ThrottleBoard(Protocol):
    """Where instances share Retry-After windows (the table, in ``jobs.store.JobStore``)."""

    def get_throttle(self, subscription_id: str) -> datetime | None: ...

    def set_throttle(self, subscription_id: str, until: datetime) -> None: ...


class StaticToken:
    """A fixed bearer token (``JOBS_ARM_TOKEN``): for simulators and tests only."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self) -> str:
        return self._token

    def __repr__(self) -> str:
        return "StaticToken(<redacted>)"


class CredentialToken:
    """A token from an ``azure-identity`` credential, refreshed five minutes before it expires."""

    def __init__(self, credential: Any, scope: str) -> None:
        self._credential = credential
        self._scope = scope
        self._token: Any = None
        self._lock = threading.Lock()

    def get_token(self) -> str:
        with self._lock:
            if self._token is None or self._token.expires_on - 300 < time.time():
                self._token = self._credential.get_token(self._scope)
            return str(self._token.token)


@dataclass
class ArmError(Exception):
    """An answer from ARM that the caller has to act on. ``code`` and ``message`` are Azure's."""

    status: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"

    def as_error(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "recommendations": []}


class ArmNotFound(ArmError):
    """404: the job or operation is not (yet) known to Azure."""


class ArmForbidden(ArmError):
    """401/403: the identity may not read it (for example, it lacks Backup Reader on the vault)."""


@dataclass
class ArmThrottled(ArmError):
    """The subscription is throttled (or our own read budget is spent) until ``retry_at`` (monotonic seconds)."""

    retry_at: float = 0.0


class ArmUnavailable(ArmError):
    """5xx, timeouts, resets or unreadable bodies that outlasted the retries: try again later."""


class ReadBudget:
    """A token bucket per subscription that keeps this process's reads below ARM's own bucket."""

    def __init__(
        self, capacity: float = 200, refill_per_second: float = 20, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = capacity
        self.refill_per_second = refill_per_second
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, subscription: str) -> float:
        """Takes one read; returns 0, or the seconds to wait before one is available (nothing taken then)."""
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.get(subscription, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - at) * self.refill_per_second)
            if tokens >= 1:
                self._buckets[subscription] = (tokens - 1, now)
                return 0.0
            self._buckets[subscription] = (tokens, now)
            return (1 - tokens) / self.refill_per_second


class ArmClient:
    def __init__(
        self,
        endpoint: str,
        api_version: str,
        token: TokenProvider,
        *,
        session: requests.Session | None = None,
        budget: ReadBudget | None = None,
        attempts: int = 3,
        backoff_seconds: float = 0.5,
        timeout: tuple[float, float] = (5.0, 30.0),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        concurrency_per_subscription: int = 1,
        board: ThrottleBoard | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.api_version = api_version
        self._token = token
        self._session = session or requests.Session()
        self._session.trust_env = False  # the token goes to ARM_ENDPOINT and nowhere else, not through a proxy
        self._budget = budget or ReadBudget(clock=clock)
        self._attempts = max(1, attempts)
        self._backoff = backoff_seconds
        self._timeout = timeout
        self._clock = clock
        self._sleep = sleep
        self._blocked_until: dict[str, float] = {}
        self._in_flight: dict[str, threading.Semaphore] = {}
        self._per_subscription = max(1, concurrency_per_subscription)
        self.board = board
        self._lock = threading.Lock()
        self.requests_sent = 0

    @classmethod
    def from_settings(cls, settings: Any) -> ArmClient:
        if settings.arm_token:
            token: TokenProvider = StaticToken(settings.arm_token)
        else:
            from azure.identity import DefaultAzureCredential

            token = CredentialToken(DefaultAzureCredential(), f"{settings.arm_endpoint}/.default")
        return cls(settings.arm_endpoint, settings.arm_api_version, token)

    # -- throttling state --------------------------------------------------------------------------------------
    def blocked_until(self, subscription_id: str) -> float | None:
        with self._lock:
            until = self._blocked_until.get(subscription_id.lower())
        return until if until is not None and until > self._clock() else None

    def block(self, subscription_id: str, seconds: float) -> float:
        """Blocks a subscription for ``seconds`` (as a 429's Retry-After does); returns the monotonic end."""
        until = self._clock() + seconds
        with self._lock:
            key = subscription_id.lower()
            self._blocked_until[key] = max(until, self._blocked_until.get(key, 0.0))
            return self._blocked_until[key]

    # -- operations --------------------------------------------------------------------------------------------
    def get_job(self, job: JobRef) -> dict[str, Any]:
        """JobDetails_Get: the JobResource with ``extendedInfo``."""
        return self._get_json(self._url(job.path()), job.vault.subscription_id)

    def get_operation(self, operation: OperationRef) -> dict[str, Any]:
        """The operation's status (``OperationStatus``)."""
        return self._get_json(self._url(operation.path()), operation.vault.subscription_id)

    def list_jobs(self, vault: VaultRef, filter: str | None = None) -> Iterator[dict[str, Any]]:
        """BackupJobs_List: summary JobResources (no extendedInfo), page after page through ``nextLink``."""
        query = {"api-version": self.api_version}
        if filter:
            query["$filter"] = filter
        url: str | None = f"{self.endpoint}{vault.path()}/backupJobs?{urlencode(query)}"
        while url:
            page = self._get_json(url, vault.subscription_id)
            yield from page.get("value") or []
            url = page.get("nextLink") or None
            if url is not None:
                self._check_next_link(url)

    # -- plumbing ----------------------------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        return f"{self.endpoint}{path}?{urlencode({'api-version': self.api_version})}"

    def _check_next_link(self, url: str) -> None:
        ours, theirs = urlsplit(self.endpoint), urlsplit(url)
        if (ours.scheme, ours.netloc.lower()) != (theirs.scheme, theirs.netloc.lower()):
            raise ArmError(502, "UnexpectedNextLink", "nextLink points outside ARM_ENDPOINT; not followed")

    def _get_json(self, url: str, subscription_id: str) -> dict[str, Any]:
        # One request in flight per subscription (by default): a 429 then closes the gate before any other
        # request leaves, so none is ever sent inside a Retry-After window.
        with self._lock:
            gate = self._in_flight.setdefault(subscription_id.lower(), threading.Semaphore(self._per_subscription))
        with gate:
            return self._get_json_once(url, subscription_id)

    def _get_json_once(self, url: str, subscription_id: str) -> dict[str, Any]:
        last: ArmError | None = None
        for attempt in range(self._attempts):
            self._wait_for_budget(subscription_id)
            try:
                response = self._session.get(url, headers=self._headers(), timeout=self._timeout, allow_redirects=False)
            except requests.RequestException as exc:
                last = ArmUnavailable(0, type(exc).__name__, "no answer from Resource Manager")
                log.warning(
                    "ARM request failed (%s), attempt %d of %d", type(exc).__name__, attempt + 1, self._attempts
                )
                self._pause(attempt, None)
                continue
            finally:
                self.requests_sent += 1
            status = response.status_code
            if status == 200:
                try:
                    body = response.json()
                except (ValueError, json.JSONDecodeError):
                    last = ArmUnavailable(200, "UnreadableResponse", "the response body is not complete JSON")
                    self._pause(attempt, None)
                    continue
                if not isinstance(body, dict):
                    raise ArmError(200, "UnexpectedResponse", "the response body is not a JSON object")
                return body
            code, message = _error_of(response)
            retry_after = parse_retry_after(response.headers)
            if status == 429:
                seconds = retry_after if retry_after is not None else DEFAULT_RETRY_AFTER
                until = self.block(subscription_id, seconds)
                self._share(subscription_id, seconds)
                log.warning("ARM throttled subscription %s for %.0f s", subscription_id, until - self._clock())
                raise ArmThrottled(status, code, message, retry_at=until)
            if status == 404:
                raise ArmNotFound(status, code, message)
            if status in (401, 403):
                raise ArmForbidden(status, code, message)
            if status == 408 or status >= 500:
                last = ArmUnavailable(status, code, message)
                self._pause(attempt, retry_after)
                continue
            raise ArmError(status, code, message)
        assert last is not None
        raise last

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token.get_token()}", "Accept": "application/json"}

    def _wait_for_budget(self, subscription_id: str) -> None:
        while True:
            until = self.blocked_until(subscription_id) or self._shared_block(subscription_id)
            if until is not None:
                raise ArmThrottled(429, "SubscriptionThrottled", "waiting out Retry-After", retry_at=until)
            wait = self._budget.take(subscription_id.lower())
            if wait <= 0:
                return
            if wait > 2:
                raise ArmThrottled(429, "ReadBudgetSpent", "local read budget spent", retry_at=self._clock() + wait)
            self._sleep(wait)

    def _shared_block(self, subscription_id: str) -> float | None:
        """A Retry-After window another instance was given (one table read before each ARM request)."""
        if self.board is None:
            return None
        try:
            until = self.board.get_throttle(subscription_id)
        except Exception:
            log.warning("reading the shared throttle state failed; going on with this instance's own")
            return None
        if until is None:
            return None
        seconds = (until - datetime.now(UTC)).total_seconds()
        return self.block(subscription_id, seconds) if seconds > 0 else None

    def _share(self, subscription_id: str, seconds: float) -> None:
        if self.board is None:
            return
        try:
            self.board.set_throttle(subscription_id, datetime.now(UTC) + timedelta(seconds=seconds))
        except Exception:
            log.warning("sharing a Retry-After window failed; other instances learn it from Azure")

    def _pause(self, attempt: int, retry_after: float | None) -> None:
        if attempt + 1 >= self._attempts:
            return
        delay = retry_after if retry_after is not None and retry_after <= 5 else self._backoff * 2**attempt
        self._sleep(delay * random.uniform(1.0, 1.25))


def _error_of(response: requests.Response) -> tuple[str, str]:
    try:
        error = response.json().get("error") or {}
        return str(error.get("code") or response.reason or response.status_code), str(error.get("message") or "")
    except (ValueError, AttributeError):
        return str(response.reason or response.status_code), ""


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms``, ``x-ms-retry-after-ms`` or ``Retry-After`` (seconds or HTTP date)."""
    for header in ("retry-after-ms", "x-ms-retry-after-ms"):
        if value := headers.get(header):
            try:
                return max(0.0, float(value) / 1000)
            except ValueError:
                pass
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None
