"""Webhook delivery helpers: the retry schedule, URL redaction, delivery task messages and target ids."""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.flows import delivery
from jobs.flows.delivery import (
    CALLBACK_TARGET,
    DeliveryTask,
    deadletter_message,
    retry_deadline,
    retry_delay,
    webhook_target,
)
from jobs.webhooks.sender import describe_url, redact_url

# The documented schedule (Event Grid's): 10 s, 30 s, 1 min, 5 min, 10 min, 30 min, 1 h, 3 h, 6 h, then every 12 h.
DOCUMENTED = [10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 12 * 3600, 12 * 3600]
DAY = 24 * 3600


# ---------------------------------------------------------------------------------------------------------------
# retry_delay


def test_retry_delay_follows_the_documented_schedule_without_jitter() -> None:
    assert [retry_delay(attempt, 10, jitter=0) for attempt in range(1, 13)] == DOCUMENTED
    assert retry_delay(40, 10, jitter=0) == 12 * 3600  # stays at 12 h


def test_retry_delay_scales_with_the_first_delay() -> None:
    assert [retry_delay(a, 0.5, jitter=0) for a in (1, 2, 3)] == [0.5, 1.5, 3.0]


def test_retry_delay_grows() -> None:
    delays = [retry_delay(attempt, 10, jitter=0) for attempt in range(1, 20)]
    assert delays == sorted(delays)
    assert all(b > a for a, b in pairwise(delays[:10]))  # strictly up to the 12-hour plateau


@pytest.mark.parametrize("attempt", range(1, 14))
def test_jitter_stays_within_twenty_percent(attempt: int, monkeypatch: pytest.MonkeyPatch) -> None:
    nominal = DOCUMENTED[min(attempt, len(DOCUMENTED)) - 1]
    monkeypatch.setattr(delivery.random, "uniform", lambda low, high: low)
    assert retry_delay(attempt, 10) == pytest.approx(nominal * 0.8)
    monkeypatch.setattr(delivery.random, "uniform", lambda low, high: high)
    assert retry_delay(attempt, 10) == pytest.approx(nominal * 1.2)


def test_jittered_delays_vary_and_stay_in_bounds() -> None:
    random.seed(7)
    samples = [retry_delay(4, 10) for _ in range(200)]
    assert all(240 <= s <= 360 for s in samples)
    assert len(set(samples)) > 100  # jitter spreads retries of many events


def _attempts_to_cover(seconds: float, factor: float) -> int:
    elapsed, attempt = 0.0, 0
    while elapsed < seconds:
        attempt += 1
        elapsed += retry_delay(attempt, 10, jitter=0) * factor
    return attempt


def test_the_schedule_reaches_24_hours_within_about_twelve_attempts() -> None:
    # Whatever the jitter draws, the retries of one event span a day within 12 attempts, and not in a handful.
    assert _attempts_to_cover(DAY, 0.8) <= 12
    assert _attempts_to_cover(DAY, 1.2) >= 9
    assert _attempts_to_cover(DAY, 1.0) == 11


@settings(max_examples=200, deadline=None)
@given(attempt=st.integers(1, 60), first=st.floats(0.05, 120), seed=st.integers(0, 2**32))
def test_retry_delay_is_positive_and_bounded(attempt: int, first: float, seed: int) -> None:
    random.seed(seed)
    delay = retry_delay(attempt, first)
    assert 0 < delay <= first * 4320 * 1.2
    assert delay >= first * 0.8


# ---------------------------------------------------------------------------------------------------------------
# redact_url


def test_redact_hides_a_logic_app_sas_signature_and_keeps_the_rest() -> None:
    url = (
        "https://prod-12.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke"
        "?api-version=2016-10-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=LogicAppSasSignature123"
    )
    redacted = redact_url(url)
    assert "LogicAppSasSignature123" not in redacted
    assert redacted.startswith(url.split("?")[0] + "?")
    assert "api-version=2016-10-01" in redacted
    assert "sig=" in redacted  # says that there was a signature


@pytest.mark.parametrize(
    ("url", "secret", "kept"),
    [
        ("https://fn.azurewebsites.net/api/hook?code=FunctionKey==&clientId=default", "FunctionKey",
         "clientId=default"),
        ("https://hooks.example.com/x?token=tok-123&team=ops", "tok-123", "team=ops"),
        ("https://hooks.example.com/x?team=ops&access_token=at-9", "at-9", "team=ops"),
        ("https://hooks.example.com/x?Sig=UPPER&x=1", "UPPER", "x=1"),
        ("https://hooks.example.com/x?CODE=Shouty", "Shouty", "https://hooks.example.com/x"),
        ("https://store.blob.core.windows.net/c?sv=2022-11-02&se=2025-01-01&sp=w&sig=BlobSas%3D", "BlobSas", "/c?"),
        ("https://hooks.example.com/x?sig=first&sig=second", "first", "hooks.example.com"),
        ("https://hooks.example.com/x?sig=first&sig=second", "second", "hooks.example.com"),
    ],
)
def test_redact_hides_secret_query_values(url: str, secret: str, kept: str) -> None:
    redacted = redact_url(url)
    assert secret not in redacted
    assert kept in redacted


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com/x", "https://hooks.example.com/x?team=ops&ticket=7", "http://127.0.0.1:8080/hook"],
)
def test_redact_leaves_urls_without_secrets_alone(url: str) -> None:
    assert redact_url(url) == url


def test_deadletter_message_names_the_target_without_its_secret() -> None:
    task = DeliveryTask("job-1", "default", "Failed", webhook_target("u"), 9, "2025-03-01T08:00:00+00:00")
    now = datetime(2025, 3, 2, 8, 0, tzinfo=UTC)
    text = deadletter_message(task, "https://hooks.example.com/x?code=FunctionKey", "HTTP 500", {"id": "e"}, now)
    message = json.loads(text)
    # scheme and host, and a hash that tells targets apart: never the path or query (Slack keeps its secret there)
    assert message["target"] == describe_url("https://hooks.example.com/x?code=FunctionKey")
    assert message["target"].startswith("https://hooks.example.com/…#") and "/x" not in message["target"]
    assert "FunctionKey" not in text
    assert message["reason"] == "HTTP 500"
    assert message["attempts"] == 9
    assert message["event"] == {"id": "e"}


def test_retry_deadline_is_measured_from_the_first_attempt() -> None:
    first = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    task = DeliveryTask("job-1", "default", "Failed", CALLBACK_TARGET, 5, first.isoformat())
    later = first + timedelta(hours=30)
    assert retry_deadline(task, 24, later) == first + timedelta(hours=24)
    fresh = DeliveryTask("job-1", "default", "Failed", CALLBACK_TARGET)
    assert retry_deadline(fresh, 24, later) == later + timedelta(hours=24)


# ---------------------------------------------------------------------------------------------------------------
# DeliveryTask and webhook_target


def test_delivery_task_round_trips_through_a_queue_message() -> None:
    task = DeliveryTask(
        tracking_id="41f3e94b-ae6b-4a20-b422-65abfcaf03e5-1a2b3c4d",
        subscriber="default",
        status="CompletedWithWarnings",
        target=webhook_target("https://hooks.example.com/x?code=k"),
        attempt=3,
        first_attempt_at="2025-03-01T08:00:00+00:00",
    )
    text = task.to_message()
    assert json.loads(text)["kind"] == "delivery"
    assert DeliveryTask.from_message(text) == task
    assert "hooks.example.com" not in text  # a message carries no URL, so no secret


def test_next_attempt_counts_up_and_keeps_the_rest() -> None:
    task = DeliveryTask("t", "s", "Failed", CALLBACK_TARGET, 1, "2025-03-01T08:00:00+00:00")
    nxt = task.next_attempt()
    assert nxt.attempt == 2
    assert (nxt.tracking_id, nxt.subscriber, nxt.status, nxt.target, nxt.first_attempt_at) == (
        task.tracking_id, task.subscriber, task.status, task.target, task.first_attempt_at
    )
    assert DeliveryTask.from_message(nxt.next_attempt().to_message()).attempt == 3


@settings(max_examples=100, deadline=None)
@given(
    tracking=st.text(max_size=80), subscriber=st.text(max_size=30), status=st.text(max_size=30),
    target=st.text(max_size=40), attempt=st.integers(1, 10_000), first=st.text(max_size=40),
)
def test_any_delivery_task_round_trips(tracking: str, subscriber: str, status: str, target: str, attempt: int,
                                       first: str) -> None:
    task = DeliveryTask(tracking, subscriber, status, target, attempt, first)
    assert DeliveryTask.from_message(task.to_message()) == task


def test_webhook_target_is_stable_per_url() -> None:
    url = "https://hooks.example.com/backup?code=k1"
    assert webhook_target(url) == webhook_target(url)
    targets = {
        webhook_target(url),
        webhook_target("https://hooks.example.com/backup?code=k2"),
        webhook_target("https://hooks.example.com/backup"),
        webhook_target("https://other.example.com/backup?code=k1"),
        CALLBACK_TARGET,
    }
    assert len(targets) == 5
    assert webhook_target(url).startswith("webhook:")
    assert "k1" not in webhook_target(url) and "hooks.example.com" not in webhook_target(url)


# -- Dead-letter records and target ids, exactly as written --------------------------------------------------------


NOW = datetime(2025, 3, 1, 8, 30, tzinfo=UTC)


URL = "https://hooks.example.com/services/T0/B0/secret"


TASK = DeliveryTask("tid-1", "sub-1", "Completed", "webhook:0123456789abcdef", attempt=7,
                    first_attempt_at="2025-02-28T08:30:00+00:00")


def small_event() -> dict[str, object]:
    return {"id": "evt-1", "type": "BackupJob.Completed", "data": {"job": {"name": "j"}, "status": "Completed"}}


def big_event() -> dict[str, object]:
    """An event that fits a queue message only in its pointer form (``data.job`` null)."""
    return {"id": "evt-2", "type": "BackupJob.Failed",
            "data": {"job": {"blob": "j" * 70_000}, "status": "Failed", "tasks": [], "context": {"k": "v"}}}


def test_the_target_id_of_a_webhook_is_a_hash_of_its_url() -> None:
    assert webhook_target(URL) == "webhook:" + hashlib.sha256(URL.encode()).hexdigest()[:16]
    assert len(webhook_target("https://é.example/ü")) == len("webhook:") + 16
    assert webhook_target("https://é.example/ü") == (
        "webhook:" + hashlib.sha256("https://é.example/ü".encode()).hexdigest()[:16]
    )


def test_a_dead_letter_record_without_an_event_names_everything_compactly() -> None:
    text = deadletter_message(TASK, URL, "410 Gone", None, NOW)
    assert json.loads(text) == {
        "reason": "410 Gone",
        "target": describe_url(URL),
        "trackingId": "tid-1",
        "subscriber": "sub-1",
        "attempts": 7,
        "firstAttemptAt": "2025-02-28T08:30:00+00:00",
        "deadLetteredAt": "2025-03-01T08:30:00+00:00",
        "event": None,
    }
    assert text == json.dumps(json.loads(text), separators=(",", ":"))  # compact, as it is measured


def test_a_dead_letter_record_carries_an_event_that_fits_whole() -> None:
    record = json.loads(deadletter_message(TASK, URL, "400 Bad Request", small_event(), NOW))
    assert record["event"] == small_event()
    assert "truncated" not in record


def test_a_dead_letter_record_carries_a_large_event_in_its_pointer_form_and_its_reason_whole() -> None:
    reason = "the subscriber answered 413 for 24 hours " * 20
    text = deadletter_message(TASK, URL, reason, big_event(), NOW)
    record = json.loads(text)
    assert record["event"]["data"]["truncated"] is True
    assert record["event"]["data"]["job"] is None
    assert record["event"]["data"]["context"] == {"k": "v"}  # only what had to go went
    assert record["reason"] == reason and record["target"] == describe_url(URL)
    assert "truncated" not in record


def test_a_dead_letter_record_too_large_even_so_has_its_reason_cut_first() -> None:
    reason = "r" * 70_000
    text = deadletter_message(TASK, URL, reason, None, NOW)
    record = json.loads(text)
    assert record["truncated"] is True
    assert 0 < len(record["reason"]) < len(reason) and reason.startswith(record["reason"])
    assert record["target"] == describe_url(URL)
    assert len(text.encode()) <= 64 * 1024
    assert text == json.dumps(record, separators=(",", ":"))


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def test_a_webhook_url_is_described_by_scheme_host_port_and_an_8_digit_hash() -> None:
    assert describe_url(URL) == f"https://hooks.example.com/…#{short_hash(URL)}"
    url = "https://hooks.example.com:8443/services/T0/B0/secret"
    assert describe_url(url) == f"https://hooks.example.com:8443/…#{short_hash(url)}"
    assert describe_url("file:///etc/passwd") == f"file://?/…#{short_hash('file:///etc/passwd')}"
    assert describe_url("https://[::1/x") == f"<unparsable URL>#{short_hash('https://[::1/x')}"
    assert describe_url("https://h.example:99999/x") == f"<unparsable URL>#{short_hash('https://h.example:99999/x')}"
