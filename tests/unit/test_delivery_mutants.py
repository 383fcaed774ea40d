"""Delivery helpers: what mutation testing (`make mutation`) showed no test pinned down."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from jobs.flows.delivery import DeliveryTask, deadletter_message, webhook_target
from jobs.webhooks.sender import describe_url

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
