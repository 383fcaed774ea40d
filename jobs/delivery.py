"""Webhook delivery: one attempt per queue message, retries as delayed messages, dead-letter at the end.

Each (event, target) pair is its own message on the deliver queue, so a slow or dead subscriber never holds up
another. A message carries no URL and no event: only the tracking id, the subscriber key and which target (a
hash of a ``JOBS_WEBHOOK_URLS`` entry, or the subscriber's ``callbackUrl``); the event is rebuilt from Table
Storage, identical on every attempt (same ``webhook-id``).

Outcomes (Standard Webhooks, CloudEvents webhook spec): 2xx delivered; 410 the subscriber is gone, stop;
408, 429 (``Retry-After`` honoured), 5xx, timeouts and network errors retried with growing, jittered delays for
``JOBS_DELIVERY_RETRY_HOURS`` (24); any other status, a redirect, or a callback URL refused by the SSRF guard is a
permanent failure. What cannot be delivered goes to ``backup-job-results-deadletter`` with the URL and reason.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from standardwebhooks.webhooks import Webhook

from jobs.arm import parse_retry_after
from jobs.callback_urls import AllowedHosts, CallbackUrlRejected, guarded_session

__all__ = [
    "CALLBACK_TARGET",
    "DeliveryOutcome",
    "DeliveryTask",
    "WebhookSender",
    "redact_url",
    "retry_delay",
    "webhook_target",
]

log = logging.getLogger(__name__)

CALLBACK_TARGET = "callback"
# Multiples of JOBS_DELIVERY_FIRST_RETRY_SECONDS (10 s): 10 s, 30 s, 1 min, 5 min, 10 min, 30 min, 1 h, 3 h, 6 h,
# then every 12 h — Event Grid's schedule.
_SCHEDULE = (1, 3, 6, 30, 60, 180, 360, 1080, 2160, 4320)
_SECRET_QUERY_KEYS = {"sig", "signature", "code", "token", "access_token", "key", "sv", "se", "sp"}


def webhook_target(url: str) -> str:
    return "webhook:" + hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


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


class _RedactRequestUrls(logging.Filter):
    """urllib3 logs every request's path and query at DEBUG (``"POST /hook?sig=..."``): redact secret values.

    Webhook and callback URLs carry SAS signatures and function keys in their query; without this filter anyone
    who turns on DEBUG logging (``logging.basicConfig(level=logging.DEBUG)``, a Functions host at Trace) would
    write them to the logs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_url(a) if isinstance(a, str) and "?" in a else a for a in record.args)
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_RedactRequestUrls())


def retry_delay(attempt: int, first_seconds: float, jitter: float = 0.2) -> float:
    """Delay before attempt ``attempt + 1`` (attempt counts from 1)."""
    factor = _SCHEDULE[min(attempt, len(_SCHEDULE)) - 1]
    return first_seconds * factor * random.uniform(1 - jitter, 1 + jitter)


@dataclass(frozen=True)
class DeliveryTask:
    tracking_id: str
    subscriber: str
    status: str
    target: str
    attempt: int = 1
    first_attempt_at: str = ""

    def to_message(self) -> str:
        return json.dumps({"kind": "delivery", **asdict(self)}, separators=(",", ":"))

    @classmethod
    def from_message(cls, text: str) -> DeliveryTask:
        data = json.loads(text)
        data.pop("kind", None)
        return cls(**data)

    def next_attempt(self) -> DeliveryTask:
        return DeliveryTask(self.tracking_id, self.subscriber, self.status, self.target, self.attempt + 1,
                            self.first_attempt_at)


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
        self._timeout = (min(5.0, timeout_seconds), timeout_seconds)
        self._clock = clock
        self._plain = requests.Session()
        self._guarded = guarded_session(allowed_callback_hosts)

    def headers(self, event_id: str, body: bytes) -> dict[str, str]:
        now = self._clock()
        headers = {
            "Content-Type": "application/cloudevents+json; charset=utf-8",
            "webhook-id": event_id,
            "webhook-timestamp": str(math.floor(now.timestamp())),
            "User-Agent": "backup-job-tracker/0.1",
        }
        if self._signer is not None:
            headers["webhook-signature"] = self._signer.sign(event_id, now, body.decode("utf-8"))
        return headers

    def send(self, url: str, event_id: str, body: bytes, *, callback: bool) -> DeliveryOutcome:
        session = self._guarded if callback else self._plain
        try:
            response = session.post(url, data=body, headers=self.headers(event_id, body), timeout=self._timeout,
                                    allow_redirects=False)
        except CallbackUrlRejected as exc:
            return DeliveryOutcome(False, None, exc.reason)
        except requests.Timeout:
            return DeliveryOutcome(False, 0.0, f"no answer within {self._timeout[1]:g} s")
        except requests.RequestException as exc:
            reason = getattr(exc, "reason", None)
            if isinstance(reason, CallbackUrlRejected):
                return DeliveryOutcome(False, None, reason.reason)
            return DeliveryOutcome(False, 0.0, f"network error: {type(exc).__name__}")
        status = response.status_code
        response.close()
        if 200 <= status < 300:
            return DeliveryOutcome(True)
        if status == 410:
            return DeliveryOutcome(False, None, "410 Gone: the subscriber is gone")
        if status in (408, 429) or status >= 500:
            retry_after = parse_retry_after(response.headers)
            return DeliveryOutcome(False, retry_after or 0.0, f"HTTP {status}")
        return DeliveryOutcome(False, None, f"HTTP {status}: permanent failure")


def deadletter_message(task: DeliveryTask, url: str, reason: str, event: dict[str, Any] | None,
                       now: datetime) -> str:
    return json.dumps(
        {
            "reason": reason,
            "target": redact_url(url),
            "trackingId": task.tracking_id,
            "subscriber": task.subscriber,
            "attempts": task.attempt,
            "firstAttemptAt": task.first_attempt_at,
            "deadLetteredAt": now.isoformat(),
            "event": event,
        },
        separators=(",", ":"),
    )


def retry_deadline(task: DeliveryTask, window_hours: float, now: datetime) -> datetime:
    first = datetime.fromisoformat(task.first_attempt_at) if task.first_attempt_at else now
    return first + timedelta(hours=window_hours)
