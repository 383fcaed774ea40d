"""Jobs that appear late, never appear, are not readable, or never end."""

from __future__ import annotations

import json

from devtools.simulator import JobScript
from tests.conftest import VAULT, results


def test_a_job_invisible_at_first_is_tracked_to_its_end(simulator, make_tracker, run_host):
    tracker = make_tracker(JOBS_NOT_FOUND_GRACE_SECONDS="30")
    job_id = simulator.add_job(VAULT, JobScript(duration=2, not_found_for=1.5))
    tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT}))
    assert run_host(until_idle=True, timeout=60, for_tracker=tracker).join() == 0
    [event] = results(tracker)
    assert event["type"] == "BackupJob.Completed"
    assert simulator.stats()["by_status"].get(404, 0) >= 1  # it did answer 404 first


def test_a_job_that_never_appears_ends_as_not_found_with_azures_error(simulator, make_tracker, run_host):
    tracker = make_tracker(JOBS_NOT_FOUND_GRACE_SECONDS="2")
    missing = "0f3c2b1a-0000-4000-8000-00000000abcd"
    tracker.accept_message(json.dumps({"jobId": missing, "vaultId": VAULT, "correlationId": "x"}))
    assert run_host(until_idle=True, timeout=60, for_tracker=tracker).join() == 0
    [event] = results(tracker)
    assert event["type"] == "BackupJob.NotFound"
    assert event["data"]["status"] == "NotFound"
    assert event["data"]["jobId"] == missing
    assert event["data"]["errors"][0]["code"]  # Azure's code of the 404
    assert event["data"]["job"] is None


def test_a_vault_the_identity_cannot_read_ends_as_not_found_with_authorization_failed(simulator, make_tracker,
                                                                                        run_host):
    tracker = make_tracker(JOBS_NOT_FOUND_GRACE_SECONDS="2")
    job_id = simulator.add_job(VAULT, JobScript(duration=60))
    simulator.deny_vault(VAULT)
    tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT}))
    assert run_host(until_idle=True, timeout=60, for_tracker=tracker).join() == 0
    [event] = results(tracker)
    assert event["type"] == "BackupJob.NotFound"
    assert event["data"]["errors"][0]["code"] == "AuthorizationFailed"
    assert "authorization" in event["data"]["errors"][0]["message"].lower()


def test_a_job_still_running_at_its_deadline_is_reported_timed_out(simulator, make_tracker, run_host):
    tracker = make_tracker(JOBS_MAX_TRACKING_HOURS="0.0008")  # about 3 s
    long_job = simulator.add_job(VAULT, JobScript(duration=3600))
    short_timeout = simulator.add_job(VAULT, JobScript(duration=3600))
    tracker.accept_message(json.dumps({"jobId": long_job, "vaultId": VAULT}))
    tracker.accept_message(json.dumps({"jobId": short_timeout, "vaultId": VAULT, "timeoutMinutes": 0.02}))
    assert run_host(until_idle=True, timeout=60, for_tracker=tracker).join() == 0
    events = {e["data"]["jobId"]: e for e in results(tracker)}
    assert set(events) == {long_job, short_timeout}
    for event in events.values():
        assert event["type"] == "BackupJob.TimedOut"
        assert event["data"]["job"]["properties"]["status"] == "InProgress"  # the last state Azure reported
        assert event["data"]["errors"][0]["code"] == "TrackingTimedOut"
