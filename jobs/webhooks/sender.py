"""One webhook request: the event POSTed to one URL, signed the Standard Webhooks way, and its answer classified.

Outcomes (Standard Webhooks, CloudEvents webhook spec): 2xx delivered; 410 the subscriber is gone; 408, 429
(``Retry-After`` passed on), 5xx, timeouts and network errors worth a retry; any other status, a redirect, or a
callback URL refused by the SSRF guard a permanent failure.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import requests
from standardwebhooks.webhooks import Webhook

from jobs.arm import parse_retry_after
from jobs.webhooks.callback_urls import AllowedHosts, CallbackUrlRejected, guarded_session

__all__ = ["CONTENT_TYPE", "DeliveryOutcome", "WebhookSender", "redact_url"]

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
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
            "Content-Type": CONTENT_TYPE,
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
