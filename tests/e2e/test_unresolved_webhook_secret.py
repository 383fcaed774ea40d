"""JOBS_WEBHOOK_SECRET as a Key Vault reference the platform has not resolved yet (the app started before its
Key Vault role took effect): the tracker still runs, says so once at start-up, and never sends an event unsigned.

Intake, polling and the results queue work as usual; each webhook delivery counts as a retryable failure, so it
is retried on the usual schedule (and only dead-lettered at the end of the retry window, with that reason).
"""

from __future__ import annotations

import json
import logging

import pytest

from devtools.simulator import JobScript
from jobs.webhooks.sender import describe_url
from tests.conftest import VAULT, drain, results

REFERENCE = "@Microsoft.KeyVault(SecretUri=https://prod-kv.vault.azure.net/secrets/webhook-secret/)"


def _track(tracker, simulator, **extra) -> tuple[str, str]:
    job_id = simulator.add_job(VAULT, JobScript(duration=0.3))
    acceptance = tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT, **extra}))
    assert acceptance.rejected is None
    return job_id, acceptance.tracking_ids[0]


def _failed_attempts(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in list(caplog.records)
        if r.name == "jobs.flows.delivery" and r.getMessage().startswith("delivery attempt")
    ]


def _deadletters(tracker, tracking_id: str) -> list[dict]:
    records = [json.loads(text) for text in drain(tracker._storage.queue(tracker.settings.deadletter_queue))]
    return [r for r in records if r["trackingId"] == tracking_id]


def test_results_flow_and_webhooks_wait_signed_while_the_secret_is_unresolved(
    simulator, make_tracker, receiver, https_receiver, run_host, wait, caplog
):
    caplog.set_level(logging.INFO, logger="jobs")
    tracker = make_tracker(JOBS_WEBHOOK_SECRET=REFERENCE)

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]  # one clear line at start-up
    line = errors[0].getMessage()
    for words in ("JOBS_WEBHOOK_SECRET", "unresolved Key Vault reference", "Key Vault Secrets User", "restart"):
        assert words in line, line

    _, tracking_id = _track(tracker, simulator, correlationId="with-callback", callbackUrl=https_receiver.url)
    host = run_host(for_tracker=tracker)

    events: list[dict] = []
    assert wait(lambda: bool(events.extend(results(tracker)) or events), 20)  # the results queue is untouched
    assert [e["data"]["correlationId"] for e in events] == ["with-callback"]
    assert events[0]["type"] == "BackupJob.Completed"

    # both targets (the webhook URL and the callback) fail retryably, again and again: rescheduled, not dropped
    assert wait(lambda: len(_failed_attempts(caplog)) >= 6, 30), _failed_attempts(caplog)
    attempts = _failed_attempts(caplog)
    assert all("unresolved Key Vault reference" in text and "JOBS_WEBHOOK_SECRET" in text for text in attempts)
    assert any(text.startswith("delivery attempt 3 ") for text in attempts)
    host.stop()

    assert receiver.requests == [] and https_receiver.requests == []  # nothing went out, signed or not
    pending = tracker._storage.queue(tracker.settings.deliver_queue).get_queue_properties()
    assert pending.approximate_message_count == 2  # one waiting retry per target
    assert _deadletters(tracker, tracking_id) == []
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == errors  # said once, not per attempt


def test_an_unresolved_secret_longer_than_the_retry_window_is_dead_lettered_with_that_reason(
    simulator, make_tracker, receiver, run_host
):
    tracker = make_tracker(
        JOBS_WEBHOOK_SECRET="@Microsoft.KeyVault(VaultName=prod-kv;SecretName=webhook-secret)",
        JOBS_DELIVERY_RETRY_HOURS="0.0006",  # about 2 s
    )
    job_id, tracking_id = _track(tracker, simulator)
    assert run_host(until_idle=True, timeout=60, for_tracker=tracker).join() == 0
    assert [e["data"]["jobId"] for e in results(tracker)] == [job_id]
    records = _deadletters(tracker, tracking_id)
    assert len(records) == 1
    reason = records[0]["reason"]
    assert "not delivered within" in reason and "unresolved Key Vault reference" in reason, reason
    assert records[0]["attempts"] >= 2
    assert records[0]["target"] == describe_url(receiver.url)
    assert receiver.requests == []
