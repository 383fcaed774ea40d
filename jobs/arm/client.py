"""``ArmClient``: reads on Azure Resource Manager within the read budget, retrying what is transient.

``get_json`` and ``iter_pages`` (GETs, following ``nextLink`` on ``ARM_ENDPOINT`` only), ``post_json`` and
``iter_post_pages`` (reads Azure defines as POSTs). A 429 blocks the subscription everywhere until its
``Retry-After``; 5xx and network errors are retried, then ``ArmUnavailable``. In detail: docs/design.md.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

from jobs.arm.errors import ArmNextLinkRefused, ArmThrottled, ArmUnavailable
from jobs.arm.pacing import DEFAULT_READ_RESERVE, ReadPacer
from jobs.arm.read_budget import ReadBudget, SubscriptionGate, ThrottleBoard
from jobs.arm.transport import (
    ArmTransport,
    CredentialToken,
    HttpTransport,
    StaticToken,
    Throttle,
    TokenProvider,
    TransientFailure,
    describe_identity,
)

__all__ = ["ArmClient", "is_loopback_endpoint", "regional_endpoint"]

log = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER = 10.0
_SUBSCRIPTION = re.compile(r"/subscriptions/([^/?#]+)", re.IGNORECASE)


def is_loopback_endpoint(endpoint: str) -> bool:
    """Whether ``endpoint`` is on this machine (a simulator): ``localhost``, ``127.0.0.0/8`` or ``::1``."""
    host = (urlsplit(endpoint).hostname or "").lower()
    return host == "localhost" or host == "::1" or host.startswith("127.")


def regional_endpoint(endpoint: str, region: str) -> str:
    """The regional host of ``ARM_ENDPOINT`` for ``region``, where Azure's passive stamp answers cross-region
    restore calls: ``https://management.azure.com`` -> ``https://eastus2.management.azure.com``,
    ``https://management.usgovcloudapi.net`` -> ``https://usgovvirginia.management.usgovcloudapi.net``.

    A loopback ``ARM_ENDPOINT`` (the simulator, which serves every region on one port) has no regional hosts:
    its regional host is itself. ``region`` must already be validated (``references.check_region``).
    """
    parts = urlsplit(endpoint.rstrip("/"))
    if is_loopback_endpoint(endpoint):
        return f"{parts.scheme}://{parts.netloc}"
    return f"{parts.scheme}://{region.lower()}.{parts.netloc}"


_DEFAULT_PORTS = {"https": 443, "http": 80}


def _origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host (lower case) and port of ``url``, the scheme's default port when none is written."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


class ArmClient:
    def __init__(
        self,
        endpoint: str,
        token: TokenProvider,
        *,
        session: requests.Session | None = None,
        budget: ReadBudget | None = None,
        pacer: ReadPacer | None = None,
        attempts: int = 3,
        backoff_seconds: float = 0.5,
        timeout: tuple[float, float] = (5.0, 30.0),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        concurrency_per_subscription: int = 1,
        board: ThrottleBoard | None = None,
        transport: ArmTransport | None = None,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        http: HttpTransport | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        # ``http``: the seam requests go through (``jobs.arm.transport``), over HTTP unless given.
        self._transport = transport or ArmTransport(token, session=session, timeout=timeout, http=http)
        self.gate = SubscriptionGate(
            budget=budget, pacer=pacer, concurrency=concurrency_per_subscription, board=board, clock=clock,
            sleep=sleep, wall=wall,
        )
        # A transport reports each answer's headers to ``on_headers`` (ArmTransport does; a stand-in may).
        self._transport.on_headers = self._observe
        self._attempts = max(1, attempts)
        self._backoff = backoff_seconds
        self._clock = clock
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings: Any, *, http: HttpTransport | None = None) -> ArmClient:
        """``JOBS_ARM_TOKEN`` when set (simulators, tests), else ``DefaultAzureCredential`` for ``ARM_ENDPOINT``;
        requests go through ``http`` (``jobs.arm.transport.HandlerTransport``, say) or else over HTTP."""
        if settings.arm_token:
            token: TokenProvider = StaticToken(settings.arm_token)
        else:
            from azure.identity import DefaultAzureCredential

            identity = describe_identity(os.environ.get("AZURE_CLIENT_ID"))  # what DefaultAzureCredential reads
            token = CredentialToken(DefaultAzureCredential(), f"{settings.arm_endpoint}/.default", identity)
        reserve = getattr(settings, "arm_read_reserve", DEFAULT_READ_RESERVE)
        return cls(settings.arm_endpoint, token, pacer=ReadPacer(reserve=reserve), http=http)

    @property
    def board(self) -> ThrottleBoard | None:
        return self.gate.board

    @board.setter
    def board(self, board: ThrottleBoard | None) -> None:
        self.gate.board = board

    @property
    def transport(self) -> ArmTransport:
        """The transport, for tenant-level calls outside the subscription gate (``jobs.arm.resource_graph``)."""
        return self._transport

    @property
    def requests_sent(self) -> int:
        return self._transport.requests_sent

    def blocked_until(self, subscription_id: str) -> float | None:
        return self.gate.blocked_until(subscription_id)

    def block(self, subscription_id: str, seconds: float) -> float:
        return self.gate.block(subscription_id, seconds)

    # -- reads -------------------------------------------------------------------------------------------------
    def get_json(self, path: str, query: Mapping[str, str], subscription_id: str) -> dict[str, Any]:
        """GET ``{endpoint}{path}?{query}``: the JSON object of a 200, else an ``ArmError``."""
        return self._get_json(f"{self.endpoint}{path}?{urlencode(query)}", subscription_id)

    def iter_pages(self, path: str, query: Mapping[str, str], subscription_id: str) -> Iterator[dict[str, Any]]:
        """The ``value`` items of a list, page after page through ``nextLink``."""
        url: str | None = f"{self.endpoint}{path}?{urlencode(query)}"
        while url:
            page = self._get_json(url, subscription_id)
            yield from page.get("value") or []
            url = page.get("nextLink") or None
            if url is not None:
                self._check_next_link(url)

    def post_json(
        self, path: str, query: Mapping[str, str], subscription_id: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A read that Azure defines as a POST with a JSON ``body`` (``BackupCrrJobDetails_Get``): the JSON object
        of a 200, else an ``ArmError``. It is a read: the same budget, gate, Retry-After and retries as a GET."""
        return self._get_json(f"{self.endpoint}{path}?{urlencode(query)}", subscription_id, body)

    def iter_post_pages(
        self,
        path: str,
        query: Mapping[str, str],
        subscription_id: str,
        body: Mapping[str, Any],
        *,
        region: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """A list that Azure defines as a POST (``BackupCrrJobs_List``): every page is POSTed with ``body``.
        ``nextLink`` is followed on ``ARM_ENDPOINT`` or, given ``region``, on that region's host of it
        (``regional_endpoint``), and nowhere else."""
        url: str | None = f"{self.endpoint}{path}?{urlencode(query)}"
        while url:
            page = self._get_json(url, subscription_id, body)
            yield from page.get("value") or []
            url = page.get("nextLink") or None
            if url is not None:
                self._check_next_link(url, region)

    # -- plumbing ----------------------------------------------------------------------------------------------
    def _observe(self, url: str, headers: Mapping[str, str]) -> None:
        """An answer's headers, for the pacer of the subscription its URL names (every ARM read names one)."""
        if match := _SUBSCRIPTION.search(urlsplit(url).path):
            self.gate.observe(match[1], headers)

    def _check_next_link(self, url: str, region: str | None = None) -> None:
        """A nextLink is followed on ``ARM_ENDPOINT`` (or the region's host of it) only: the same scheme, host and
        port, the scheme's default port written or not (``https://management.azure.com:443`` is
        ``https://management.azure.com``). Anywhere else: ``ArmNextLinkRefused``, which does not change."""
        allowed = {self.endpoint} | ({regional_endpoint(self.endpoint, region)} if region else set())
        try:
            theirs = _origin(url)
            if any(_origin(endpoint) == theirs for endpoint in allowed):
                return
        except ValueError:  # a port that is not a number: nowhere of ours
            pass
        raise ArmNextLinkRefused(502, "UnexpectedNextLink", "nextLink points outside ARM_ENDPOINT; not followed")

    def _get_json(self, url: str, subscription_id: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        # One request in flight per subscription (by default): a 429 then closes the gate before any other
        # request leaves, so none is ever sent inside a Retry-After window.
        with self.gate.slot(subscription_id):
            last: ArmUnavailable | None = None
            for attempt in range(self._attempts):
                self.gate.admit(subscription_id)
                try:
                    answer = self._transport.get(url) if body is None else self._transport.post(url, body)
                except TransientFailure as failure:
                    last = failure.error
                    log.warning("ARM request failed (%s), attempt %d of %d", last.code, attempt + 1, self._attempts)
                    self._pause(attempt, failure.retry_after)
                    continue
                if isinstance(answer, Throttle):
                    seconds = answer.retry_after if answer.retry_after is not None else DEFAULT_RETRY_AFTER
                    until = self.gate.throttled(subscription_id, seconds)
                    log.warning("ARM throttled subscription %s for %.0f s", subscription_id, until - self._clock())
                    raise ArmThrottled(429, answer.code, answer.message, retry_at=until)
                return answer
            assert last is not None
            raise last

    def _pause(self, attempt: int, retry_after: float | None) -> None:
        if attempt + 1 >= self._attempts:
            return
        delay = retry_after if retry_after is not None and retry_after <= 5 else self._backoff * 2**attempt
        self._sleep(delay * random.uniform(1.0, 1.25))
