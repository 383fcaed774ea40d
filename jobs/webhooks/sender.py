"""One webhook request: the event POSTed to one URL, signed the Standard Webhooks way, and its answer classified.

Outcomes (Standard Webhooks, CloudEvents webhook spec): 2xx delivered; 410 the subscriber is gone; 408, 429
(``Retry-After`` passed on), 5xx, timeouts and network errors worth a retry; any other status, a redirect, or a
callback URL refused by the SSRF guard a permanent failure.

``JOBS_WEBHOOK_TIMEOUT_SECONDS`` bounds the whole request, not each read: a watchdog shuts the request's socket
down when the time is up (a receiver that dribbles its status line or headers is cut off there), and the answer's
body is never read (``stream=True``, then closed): the status and headers decide, so a receiver that streams a
long body costs nothing. The watchdog finds the socket through the connection classes of each session's pools
(``_watch_sockets``), so the SSRF guard's own connections are watched the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from standardwebhooks.webhooks import Webhook
from urllib3.connectionpool import HTTPConnectionPool

from jobs.arm import parse_retry_after
from jobs.webhooks.callback_urls import AllowedHosts, CallbackUrlRejected, guarded_session

__all__ = [
    "CONTENT_TYPE", "LOGIC_APPS_CONTENT_TYPE", "DeliveryOutcome", "WebhookSender", "content_type_for", "describe_url",
    "is_logic_apps_url", "redact_url",
]

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
LOGIC_APPS_CONTENT_TYPE = "application/json; charset=utf-8"
# Consumption workflows' endpoints (public, US Government, China clouds). Standard workflows are served from their
# own app's host, so they are known by the SAS that every Logic Apps callback and trigger URL carries instead.
LOGIC_APPS_DOMAINS = (".logic.azure.com", ".logic.azure.us", ".logic.azure.cn")
_LOGIC_APPS_SAS = {"sp", "sv", "sig"}


def is_logic_apps_url(url: str) -> bool:
    """Whether ``url`` is a Logic Apps endpoint: a Consumption workflow's host, or a URL whose query carries the
    Logic Apps SAS (``sp``, ``sv`` and ``sig``: HTTP Webhook callbacks and Request triggers, Standard included)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    names = {pair.partition("=")[0].lower() for pair in parts.query.split("&") if pair}
    return host.endswith(LOGIC_APPS_DOMAINS) or names >= _LOGIC_APPS_SAS


def content_type_for(url: str) -> str:
    """The event's ``Content-Type`` for one target. Logic Apps parse only ``application/json`` (and text/plain)
    bodies: any other type, ``application/cloudevents+json`` included, reaches the workflow as base64
    (``$content``) that needs ``json(base64ToString(...))``. So Logic Apps endpoints get the same bytes as
    ``application/json`` and the HTTP Webhook action's output is the event as an object, with no glue; every
    other target gets CloudEvents' structured-mode type."""
    return LOGIC_APPS_CONTENT_TYPE if is_logic_apps_url(url) else CONTENT_TYPE
_SECRET_QUERY_KEYS = {"sig", "signature", "code", "token", "access_token", "key", "sv", "se", "sp"}


def redact_url(url: str) -> str:
    """The URL with secret-looking query values (SAS ``sig``, function ``code``, tokens) replaced."""
    base, _, query = url.partition("?")
    if not query:
        return base
    parts = []
    for pair in query.split("&"):
        name, eq, _ = pair.partition("=")
        parts.append(f"{name}=REDACTED" if eq and name.lower() in _SECRET_QUERY_KEYS else pair)
    return base + "?" + "&".join(parts)


def describe_url(url: str) -> str:
    """How logs, records and the command line show a webhook URL: its scheme and host, and a short hash of the
    whole URL that tells two targets on one host apart.

    Slack (``/services/T/B/<secret>``) and Teams webhooks carry their secret in the path, Logic Apps (``sig=``) and
    Functions (``code=``) in the query: neither the path nor the query is ever shown.
    """
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return f"<unparsable URL>#{_short_hash(url)}"
    return f"{parts.scheme}://{parts.hostname or '?'}{port}/…#{_short_hash(url)}"


def _describe_path(path: str) -> str:
    """A request path as urllib3 logs it (``/services/T/B/secret?x=y``): its first segment and a short hash."""
    first = path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
    return f"/{first}/…#{_short_hash(path)}"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


class _RedactRequestUrls(logging.Filter):
    """urllib3 logs every request's path and query at DEBUG (``"POST /services/T/B/secret"``): hide them.

    Webhook and callback URLs carry secrets in their path (Slack, Teams) or query (SAS ``sig``, function ``code``);
    without this filter anyone who turns on DEBUG logging (``logging.basicConfig(level=logging.DEBUG)``, a
    Functions host at Trace) would write them to the logs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _describe_path(a) if isinstance(a, str) and a.startswith("/") else a for a in record.args
            )
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_RedactRequestUrls())


class _Watchdog:
    """Shuts down the sockets a request opens once ``seconds`` have passed: the request then fails at once, whatever
    it was waiting for (the connection, sending the event, the status line, the headers)."""

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        _WATCHING.watchdog = self
        self._timer.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._timer.cancel()
        _WATCHING.watchdog = None

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if not self.fired:
                return
        _shut(sock)  # opened after the time was up

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


_WATCHING = threading.local()  # the watchdog of the request this thread is making, if any


def _watched_pool(pool: type[HTTPConnectionPool]) -> type[HTTPConnectionPool]:
    """``pool`` whose connections hand each new socket (and, over TLS, the wrapped one) to this thread's
    watchdog."""
    connection = pool.ConnectionCls

    def _new_conn(self: Any) -> socket.socket:
        sock = connection._new_conn(self)
        watchdog = getattr(_WATCHING, "watchdog", None)
        if watchdog is not None:
            watchdog.add(sock)
        return sock

    def connect(self: Any) -> None:
        connection.connect(self)
        watchdog = getattr(_WATCHING, "watchdog", None)
        if watchdog is not None and self.sock is not None:
            watchdog.add(self.sock)  # over TLS, the wrapped socket: the raw one was handed over to it

    watched = type(f"Watched{connection.__name__}", (connection,), {"_new_conn": _new_conn, "connect": connect})
    return type(f"Watched{pool.__name__}", (pool,), {"ConnectionCls": watched})


def _watch_sockets(session: requests.Session) -> requests.Session:
    """The session, its pools' connections watched (``_Watchdog``): the plain one and the SSRF guard's alike."""
    for adapter in session.adapters.values():
        manager = getattr(adapter, "poolmanager", None)
        if manager is not None:
            manager.pool_classes_by_scheme = {
                scheme: _watched_pool(pool) for scheme, pool in manager.pool_classes_by_scheme.items()
            }
    return session


@dataclass(frozen=True)
class DeliveryOutcome:
    delivered: bool
    retry_in: float | None = None  # seconds, when the attempt should be repeated
    reason: str = ""


class WebhookSender:
    """Sends one event to one URL, signed the Standard Webhooks way, and classifies the answer."""

    def __init__(
        self,
        *,
        secret: str | None,
        allowed_callback_hosts: AllowedHosts,
        timeout_seconds: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._signer = Webhook(secret) if secret else None
        self._total = timeout_seconds
        self._timeout = (min(5.0, timeout_seconds), timeout_seconds)  # each step's; the watchdog bounds the whole
        self._clock = clock
        self._plain = _watch_sockets(requests.Session())
        self._guarded = _watch_sockets(guarded_session(allowed_callback_hosts))

    def headers(self, event_id: str, body: bytes, url: str = "") -> dict[str, str]:
        now = self._clock()
        headers = {
            "Content-Type": content_type_for(url),
            "webhook-id": event_id,
            "webhook-timestamp": str(math.floor(now.timestamp())),
            "User-Agent": "backup-job-tracker/0.1",
        }
        if self._signer is not None:
            headers["webhook-signature"] = self._signer.sign(event_id, now, body.decode("utf-8"))
        return headers

    def send(self, url: str, event_id: str, body: bytes, *, callback: bool) -> DeliveryOutcome:
        session = self._guarded if callback else self._plain
        late = DeliveryOutcome(False, 0.0, f"no answer within {self._total:g} s")
        with _Watchdog(self._total) as watchdog:
            try:
                # stream=True: the answer's body is never read, only its status and headers (closed below).
                response = session.post(url, data=body, headers=self.headers(event_id, body, url),
                                        timeout=self._timeout, allow_redirects=False, stream=True)
            except CallbackUrlRejected as exc:
                return DeliveryOutcome(False, None, exc.reason)
            except requests.Timeout:
                return late
            except requests.RequestException as exc:
                reason = getattr(exc, "reason", None)
                if isinstance(reason, CallbackUrlRejected):
                    return DeliveryOutcome(False, None, reason.reason)
                if watchdog.fired:
                    return late
                return DeliveryOutcome(False, 0.0, f"network error: {type(exc).__name__}")
            if watchdog.fired:  # cut off while reading the headers: http.client takes the end as their end
                response.close()
                return late
        status = response.status_code
        response.close()  # the body unread: the connection is closed, never drained
        if 200 <= status < 300:
            return DeliveryOutcome(True)
        if status == 410:
            return DeliveryOutcome(False, None, "410 Gone: the subscriber is gone")
        if status in (408, 429) or status >= 500:
            retry_after = parse_retry_after(response.headers)
            return DeliveryOutcome(False, retry_after or 0.0, f"HTTP {status}")
        return DeliveryOutcome(False, None, f"HTTP {status}: permanent failure")
