"""Terminal statuses, operations that fail, duplicates, late subscribers and bad input, end to end."""

from __future__ import annotations

import json

from devtools.simulator import JobScript
from tests.conftest import VAULT, drain, results


def test_each_terminal_status_gives_its_type_and_errors(simulator, tracker, receiver, run_host):
    intake = tracker._storage.queue(tracker.settings.intake_queue)
    scripts = {
        "Completed": JobScript(final_status="Completed", duration=1),
        "CompletedWithWarnings": JobScript(job_type="AzureWorkloadJob", final_status="CompletedWithWarnings",
                                           duration=1),
        "Failed": JobScript(final_status="Failed", duration=1),
        "Cancelled": JobScript(job_type="AzureStorageJob", final_status="Cancelled", duration=1, cancelling_for=0.5),
    }
    jobs = {status: simulator.add_job(VAULT, script) for status, script in scripts.items()}
    for job_id in jobs.values():
        intake.send_message(json.dumps({"jobId": job_id, "vaultId": VAULT}))
    failed_trigger = simulator.trigger_backup(VAULT, operation_delay=0.3, operation_outcome="Failed")
    intake.send_message(json.dumps({"operationUrl": failed_trigger.location, "correlationId": "op"}))
    failed_operation = {"id": "1a0b5bde-5b0f-4e3f-8c47-2d3f4c61e1b2", "name": "1a0b5bde-5b0f-4e3f-8c47-2d3f4c61e1b2",
                        "status": "Failed", "error": {"code": "UserErrorBackupOperationInProgress",
                                                      "message": "Another backup operation is in progress."}}
    intake.send_message(json.dumps({"vaultId": VAULT, "operation": failed_operation}))

    assert run_host(until_idle=True, timeout=60).join() == 0
    events = results(tracker)
    assert len(events) == 6
    by_job = {e["data"]["jobId"]: e for e in events if e["data"]["jobId"]}
    for status, job_id in jobs.items():
        event = by_job[job_id]
        assert event["type"] == f"BackupJob.{status}"
        assert event["data"]["status"] == status
        job = simulator.job_resource(VAULT, job_id)
        assert event["data"]["job"] == job
        details = job["properties"].get("errorDetails") or []
        assert len(event["data"]["errors"]) == len(details)
        for error, detail in zip(event["data"]["errors"], details, strict=True):
            assert error["message"] == detail["errorString"]
            assert error["recommendations"] == detail["recommendations"]
    assert by_job[jobs["Failed"]]["data"]["errors"], "a failed job carries its errorDetails"
    assert by_job[jobs["Failed"]]["data"]["errors"][0]["code"]
    operation_events = [e for e in events if e["type"] == "BackupJob.OperationFailed"]
    assert len(operation_events) == 2
    for event in operation_events:
        assert event["data"]["status"] == "OperationFailed"
        assert event["data"]["jobId"] is None
        assert event["data"]["errors"][0]["code"]
    immediate = next(e for e in operation_events if "correlationId" not in e["data"])
    assert immediate["data"]["errors"][0]["code"] == "UserErrorBackupOperationInProgress"
    assert immediate["subject"] == f"backupOperations/{failed_operation['name']}"  # Azure's id, not ours


def test_same_job_three_ways_is_polled_once_and_each_subscriber_served_once(simulator, tracker, receiver, run_host):
    intake = tracker._storage.queue(tracker.settings.intake_queue)
    job_id = simulator.add_job(VAULT, JobScript(duration=2.5))
    resource_id = f"{VAULT}/backupJobs/{job_id}"
    intake.send_message(json.dumps({"jobId": job_id.upper(), "vaultId": VAULT.lower(), "correlationId": "a"}))
    intake.send_message(json.dumps({"jobResourceId": resource_id.replace("/subscriptions/", "/Subscriptions/")
                                    .replace("Microsoft.RecoveryServices", "microsoft.recoveryservices"),
                                    "correlationId": "b"}))
    intake.send_message(json.dumps({"jobId": job_id, "subscriptionId": "11111111-2222-3333-4444-555555555555",
                                    "resourceGroup": "BACKUP-RG", "vaultName": "Prod-Vault", "correlationId": "a"}))
    simulator.reset_stats()

    assert run_host(until_idle=True, timeout=60).join() == 0
    events = results(tracker)
    assert sorted(e["data"]["correlationId"] for e in events) == ["a", "b"]  # "a" twice merges into one
    assert len({e["id"] for e in events}) == 2
    assert len(list(tracker._store.list_items())) == 1  # one job in the table
    gets = simulator.stats()["job_gets"].get(job_id, 0)
    # One job polled once a round (1 s) for a 2.5 s job: three ways of naming it would triple this.
    assert 1 <= gets <= 6, gets

    # A subscriber added after the end still gets its result, once; a repeat of an old one gets nothing new.
    intake.send_message(json.dumps({"jobResourceId": resource_id, "correlationId": "late"}))
    intake.send_message(json.dumps({"jobResourceId": resource_id, "correlationId": "b"}))
    assert run_host(until_idle=True, timeout=60).join() == 0
    late = results(tracker)
    assert [e["data"]["correlationId"] for e in late] == ["late"]
    assert late[0]["data"]["job"] == events[0]["data"]["job"]
    assert simulator.stats()["job_gets"].get(job_id, 0) == gets  # the late subscriber cost no Azure read
    assert receiver.wait_for(lambda reqs: len([r for r in reqs if r.answered == 200]) >= 3, 10)
    assert sorted(r.json()["data"]["correlationId"] for r in receiver.delivered()) == ["a", "b", "late"]


def test_malformed_messages_are_rejected_with_a_reason_and_the_runner_goes_on(simulator, tracker, run_host):
    intake = tracker._storage.queue(tracker.settings.intake_queue)
    bad = {
        "not json at all": "not JSON",
        json.dumps({"jobId": "not-a-guid", "vaultId": VAULT}): "jobId must be a GUID",
        json.dumps({"jobId": "0f3c2b1a-0000-4000-8000-000000000001"}): "vaultId is missing",
        json.dumps({"vaultId": VAULT + "/../x", "jobId": "0f3c2b1a-0000-4000-8000-000000000001"}): "vaultId",
        json.dumps({"operationUrl": "https://evil.example/subscriptions/x"}): "ARM_ENDPOINT",
        json.dumps({"jobResourceId": f"{VAULT}/backupJobs/0f3c2b1a-0000-4000-8000-000000000001",
                    "callbackUrl": "http://169.254.169.254/latest"}): "callbackUrl",
        json.dumps([1, 2]): "JSON object",
    }
    for text in bad:
        intake.send_message(text)
    good = simulator.add_job(VAULT, JobScript(duration=0.5))
    intake.send_message(json.dumps({"jobId": good, "vaultId": VAULT}))

    assert run_host(until_idle=True, timeout=60).join() == 0
    rejected = [json.loads(t) for t in drain(tracker._storage.queue(tracker.settings.rejected_queue))]
    assert sorted(r["message"] for r in rejected) == sorted(bad)
    for record in rejected:
        assert bad[record["message"]] in record["reason"], record
        assert record["rejectedAt"]
    assert [e["data"]["jobId"] for e in results(tracker)] == [good]
