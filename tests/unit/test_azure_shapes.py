"""The tracker against Azure's real shapes (issue 12), with the stricter simulator as a real HTTP server."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

from devtools.simulator import JobScript
from jobs.domain.references import VaultRef
from jobs.providers.recovery_services import filter_date
from tests.conftest import VAULT, ManualClock, poll_once, results, tracker_with_clock


def test_filter_dates_are_english_12_hour_utc_whatever_the_locale() -> None:
    assert filter_date(datetime(2026, 3, 1, 0, 5, 9, tzinfo=UTC)) == "2026-03-01 12:05:09 AM"
    assert filter_date(datetime(2026, 3, 1, 13, 0, 0, tzinfo=UTC)) == "2026-03-01 01:00:00 PM"
    assert filter_date(datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)) == "2026-03-01 12:00:00 PM"


def test_the_list_window_stays_within_30_days_and_never_reaches_the_future(tracker) -> None:
    vault = VaultRef.from_resource_id(VAULT)
    provider = tracker._providers.for_vault(vault)
    now = datetime.now(UTC)
    # tracked jobs spanning 45 days: the simulator, like Azure's clients, refuses more than 30 days or a future end
    assert provider.list_running_jobs(tracker._arm, vault, now - timedelta(days=45), now) == {}
    assert provider.list_running_jobs(tracker._arm, vault, now - timedelta(minutes=5), now) == {}


def test_a_refused_list_costs_one_warning_then_the_vault_is_asked_per_job(
    simulator, env: dict[str, str], clock: ManualClock, caplog
) -> None:
    tracker = tracker_with_clock(env, clock, JOBS_LIST_THRESHOLD="2")
    ids = [simulator.add_job(VAULT, JobScript(duration=600)) for _ in range(2)]
    for job_id in ids:
        tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT}))
    clock.advance(2 * 3600)  # the tracker's clock is ahead of Azure's: its endTime is "in the future", refused
    caplog.set_level(logging.WARNING, logger="jobs")
    poll_once(tracker)
    clock.advance(600)
    poll_once(tracker)
    refused = [r for r in caplog.records if "refused listing" in r.getMessage()]
    assert len(refused) == 1
    assert simulator.stats()["list_pages"] == 0


def test_a_fresh_job_answering_cloud_internal_error_is_not_yet_visible(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    # a job's own GET answers 500 (a list would show the job running): the job strategy asks per job
    tracker = tracker_with_clock(env, clock, JOBS_NOT_FOUND_GRACE_SECONDS="900", JOBS_POLL_STRATEGY="job")
    job_id = simulator.add_job(VAULT, JobScript(duration=600, internal_error_for=10_000))
    [tracking] = tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT})).tracking_ids
    clock.advance(1)
    poll_once(tracker)
    item = tracker._store.get(tracking)
    assert item is not None and not item.ended
    assert item.unknown_since is not None  # counted like a 404 within the grace period
    assert item.last_error is not None and item.last_error["code"] == "CloudInternalError"


def test_jobs_an_operation_failed_to_create_each_get_a_result(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    tracker = tracker_with_clock(env, clock)
    failed = str(uuid.uuid4())
    op = simulator.trigger_backup(VAULT, JobScript(duration=0), operation_delay=0,
                                  failed_jobs={failed: "UserErrorBackupOperationInProgress"})
    # the URL as azure-cli builds it: container and item names %3B-encoded
    url = op.azure_async_operation.replace(";", "%3B")
    assert "%3B" in url
    assert tracker.accept_message(json.dumps({"operationUrl": url})).rejected is None
    clock.advance(1)
    poll_once(tracker)
    clock.advance(60)
    poll_once(tracker)
    events = {e["data"]["jobId"]: e for e in results(tracker)}
    assert events[failed]["type"] == "BackupJob.OperationFailed"
    assert events[failed]["data"]["errors"][0]["code"] == "UserErrorBackupOperationInProgress"
    assert events[op.job_id]["type"] == "BackupJob.Completed"


def test_shape_4_failed_jobs_are_results_at_once(simulator, env: dict[str, str], clock: ManualClock) -> None:
    tracker = tracker_with_clock(env, clock)
    failed = str(uuid.uuid4())
    operation = {"name": str(uuid.uuid4()), "status": "Succeeded",
                 "properties": {"objectType": "OperationStatusJobsExtendedInfo", "jobIds": [],
                                "failedJobsError": {failed: "400244"}}}
    tracker.accept_message(json.dumps({"vaultId": VAULT, "operation": operation}))
    [event] = results(tracker)
    assert event["type"] == "BackupJob.OperationFailed" and event["data"]["jobId"] == failed
    assert event["data"]["errors"][0]["code"] == "400244"
