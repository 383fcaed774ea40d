"""Cross-region restore jobs, tracked on the passive stamp of the simulator with the tracker's own store (Azurite),
one round at a time (``tracker_with_clock``, ``poll_once``): docs/reference.md, "Cross-region restore jobs"."""

from __future__ import annotations

import json

import pytest

from devtools.simulator import JobScript
from jobs.arm import ArmClient, ArmError, ReadBudget, StaticToken
from jobs.config import Settings
from jobs.domain.references import JobRef
from jobs.providers import Providers, parse_vault_id
from tests.conftest import VAULT, ManualClock, drain, poll_once, results, tracker_with_clock

REGION = "eastus2"


def test_a_crr_job_given_with_its_vault_and_region_ends_with_its_result_read_on_the_passive_stamp(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    tracker = tracker_with_clock(env, clock)
    job_id = simulator.add_crr_job(VAULT, REGION, JobScript(duration=0, final_status="Failed"))
    crr = tracker.accept_message(json.dumps(
        {"jobId": job_id, "vaultId": VAULT, "crossRegionRestore": {"region": "EastUS2"}, "correlationId": "crr"}))
    # The same jobId without the field is what the tracker did before: a job of the primary vault, which Azure (and
    # the simulator) does not know there, so it ends NotFound. It is another job to the tracker: no collision.
    primary = tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT, "correlationId": "primary"}))
    assert crr.tracking_ids != primary.tracking_ids

    clock.advance(1)
    poll_once(tracker)
    clock.advance(31)  # past JOBS_NOT_FOUND_GRACE_SECONDS (30) for the primary reading
    poll_once(tracker)

    events = {event["data"]["correlationId"]: event for event in results(tracker)}
    assert sorted(events) == ["crr", "primary"]
    event = events["crr"]
    assert event["type"] == "BackupJob.Failed"
    assert event["source"] == VAULT and event["subject"] == f"backupJobs/{job_id}"
    assert event["data"]["crossRegionRestore"] == {"region": REGION}
    assert event["data"]["job"] == simulator.crr_job_resource(VAULT, REGION, job_id)
    assert event["data"]["operation"] == "CrossRegionRestore" and event["data"]["errors"]
    assert event["data"]["jobResourceId"] == (
        f"/subscriptions/{parse_vault_id(VAULT).subscription_id}/providers/Microsoft.RecoveryServices/locations/"
        f"{REGION}/backupJobs/{job_id}")
    assert events["primary"]["type"] == "BackupJob.NotFound"
    assert "crossRegionRestore" not in events["primary"]["data"]
    stats = simulator.stats()
    assert stats["by_kind"]["crr_job_get"] == 1  # read once, on backupCrrJob
    assert stats["job_gets"] == {job_id: 2}  # the primary reading asked the vault twice and got 404s


def test_a_crr_operation_url_with_its_vault_is_followed_to_its_job(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    tracker = tracker_with_clock(env, clock)
    triggered = simulator.trigger_cross_region_restore(VAULT, REGION, JobScript(duration=0), operation_delay=0)
    without_vault = tracker.accept_message(json.dumps({"operationUrl": triggered.azure_async_operation}))
    assert without_vault.rejected is not None and without_vault.rejected.startswith(
        "operationUrl is a cross-region restore operation (backupCrrOperationsStatus), which names no vault")
    [rejected] = drain(tracker._storage.queue(tracker.settings.rejected_queue))
    assert json.loads(rejected)["reason"] == without_vault.rejected

    accepted = tracker.accept_message(json.dumps(
        {"operationUrl": triggered.azure_async_operation, "vaultId": VAULT, "correlationId": "op"}))
    assert accepted.rejected is None
    clock.advance(1)
    poll_once(tracker)  # the operation names its job
    clock.advance(1)
    poll_once(tracker)  # the job, on backupCrrJob

    [event] = results(tracker)
    assert event["type"] == "BackupJob.Completed" and event["data"]["jobId"] == triggered.job_id
    assert event["data"]["correlationId"] == "op" and event["data"]["crossRegionRestore"] == {"region": REGION}
    stats = simulator.stats()["by_kind"]
    assert stats["crr_operation_status"] == 1 and stats["crr_job_get"] == 1
    assert stats["operation_status"] == stats["job_get"] == 0  # nothing asked of the primary endpoints


def test_running_crr_jobs_of_a_vault_are_listed_with_posts_page_by_page(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    tracker = tracker_with_clock(env, clock, JOBS_LIST_THRESHOLD="3")
    simulator.page_size = 1
    running = [simulator.add_crr_job(VAULT, REGION, JobScript(duration=3600)) for _ in range(2)]
    ended = simulator.add_crr_job(VAULT, REGION, JobScript(duration=0))
    for job_id in [*running, ended]:
        message = {"jobId": job_id, "vaultId": VAULT, "crossRegionRestore": {"region": REGION}}
        tracker.accept_message(json.dumps(message))
    simulator.reset_stats()

    clock.advance(30)  # the list's window ends at the tracker's clock: past the moment the jobs were made, surely
    tracker.run_poll_round()
    [message] = drain(tracker._storage.queue(tracker.settings.poll_queue))  # one message: one vault and region
    report = tracker.handle_poll_message(message)

    stats = simulator.stats()
    assert report.strategy == "list" and report.polled == 3 and report.ended == 1
    assert stats["by_kind"]["crr_job_list"] == stats["list_pages"] == 2  # BackupCrrJobs_List, nextLink POSTed
    assert stats["by_kind"]["crr_job_get"] == 1  # details only for the job that left the running list
    assert stats["by_kind"]["job_list"] == stats["by_kind"]["job_get"] == 0
    [event] = results(tracker)
    assert event["data"]["jobId"] == ended


def test_crr_reads_are_posts_that_take_from_the_read_budget(simulator) -> None:
    moments = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        moments[0] += seconds

    budget = ReadBudget(capacity=2, refill_per_second=1, clock=lambda: moments[0])
    arm = ArmClient(simulator.base_url, StaticToken("sim-token"), budget=budget, clock=lambda: moments[0],
                    sleep=sleep)
    provider = Providers().for_vault(parse_vault_id(VAULT).in_region(REGION))
    job = JobRef.create(parse_vault_id(VAULT).in_region(REGION), simulator.add_crr_job(VAULT, REGION))
    simulator.reset_stats()
    for _ in range(3):
        assert provider.get_job(arm, job)["name"] == job.job_id
    assert waits == [pytest.approx(1.0)]  # the third read waited for the bucket, as a GET would
    assert arm.requests_sent == simulator.stats()["by_kind"]["crr_job_get"] == 3


def test_a_crr_api_version_the_passive_stamp_does_not_list_fails(simulator, env: dict[str, str]) -> None:
    job = JobRef.create(parse_vault_id(VAULT).in_region(REGION), simulator.add_crr_job(VAULT, REGION))
    arm = ArmClient(simulator.base_url, StaticToken("sim-token"))
    right = Providers.from_settings(Settings.from_env(env))
    assert right.for_vault(job.vault).get_job(arm, job)["name"] == job.job_id
    # The active stamp's api-version (JOBS_ARM_API_VERSION's default) is not the passive stamp's.
    wrong = Providers.from_settings(Settings.from_env({**env, "JOBS_CRR_API_VERSION": "2025-08-01"}))
    with pytest.raises(ArmError) as caught:
        wrong.for_vault(job.vault).get_job(arm, job)
    assert caught.value.status == 400 and caught.value.code == "NoRegisteredProviderFound"
    assert "2023-01-15" in caught.value.message
