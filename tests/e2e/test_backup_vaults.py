"""Backup vaults (``Microsoft.DataProtection``) end to end: every intake shape with a Backup vault, each terminal
status in both of Azure's vocabularies, a failure's ``UserFacingError``, operations of both scopes that name their
job by name or by full ARM id, and jobs of both kinds of vault for one subscriber in one run (Azurite + the
simulator + a real webhook receiver)."""

from __future__ import annotations

import json

import jsonschema
import pytest

from devtools.simulator import JobScript
from jobs.domain.events import iso_duration
from tests.conftest import ROOT, VAULT, fixture_json, results

SUB, RG = "11111111-2222-3333-4444-555555555555", "backup-rg"
BV = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.DataProtection/backupVaults/bv-prod"
SCHEMA = json.loads((ROOT / "schemas" / "backup-job-result.schema.json").read_text(encoding="utf-8"))


def azure_job_id(job_id: str) -> str:
    """The job's id as Azure writes it: ``Backupvaults`` (GetJob.json)."""
    return BV.replace("/backupVaults/", "/Backupvaults/") + f"/backupJobs/{job_id}"


def test_every_shape_and_status_of_backup_vault_jobs_beside_a_recovery_services_job(
        simulator, tracker, receiver, run_host):
    intake = tracker._storage.queue(tracker.settings.intake_queue)
    simulator.add_vault(BV)
    script = lambda status, source, words="spec", **kw: JobScript(  # noqa: E731
        job_type="AzureStorageJob", final_status=status, data_source=source, status_words=words, duration=1.0, **kw)
    jobs = {  # shape -> (job id, Azure's terminal status)
        "vault id + jobId": (simulator.add_job(BV, script("Completed", "blob")), "Succeeded"),
        "job resource id": (simulator.add_job(BV, script("Completed", "disk", "described")), "Completed"),
        "bare resource id": (simulator.add_job(BV, script("CompletedWithWarnings", "aks")), "CompletedWithWarnings"),
        "operation JSON": (simulator.add_job(BV, script("Failed", "postgresql")), "Failed"),
        "operation result, ARM id": (simulator.add_job(BV, script("Cancelled", "mysql", cancelling_for=0.5)),
                                     "Cancelled"),
    }
    triggers = {
        "vault operationStatus": simulator.trigger_backup(BV, script("Completed", "blob"), operation_delay=0.5),
        "location operationStatus, ARM id": simulator.trigger_backup(
            BV, script("Completed", "disk"), operation_delay=0.5, backup_vault_scope="location", job_id_form="id"),
        "instance operationResults": simulator.trigger_backup(BV, script("Completed", "adls"), operation_delay=0.5),
        "location operationResults, parts": simulator.trigger_backup(
            BV, script("Completed", "postgresql-single"), operation_delay=0.5, backup_vault_scope="location"),
    }
    rs_job = simulator.add_job(VAULT, JobScript(duration=1.0))
    operation = {**fixture_json("GetOperationStatusVaultContext.json")["responses"]["200"]["body"],
                 "properties": {"objectType": "OperationJobExtendedInfo", "jobId": jobs["operation JSON"][0]}}
    messages = [
        {"jobId": jobs["vault id + jobId"][0], "vaultId": BV.replace("backupVaults", "BACKUPVAULTS")},
        {"jobResourceId": azure_job_id(jobs["job resource id"][0])},
        azure_job_id(jobs["bare resource id"][0]),
        {"vaultId": BV, "operation": operation},
        {"vaultId": BV, "operation": {"jobId": azure_job_id(jobs["operation result, ARM id"][0]),
                                      "objectType": "OperationJobExtendedInfo"}},
        {"operationUrl": triggers["vault operationStatus"].azure_async_operation},
        {"operationUrl": triggers["location operationStatus, ARM id"].azure_async_operation, "vaultId": BV},
        {"operationUrl": triggers["instance operationResults"].location},
        {"operationUrl": triggers["location operationResults, parts"].location, "subscriptionId": SUB,
         "resourceGroup": RG, "vaultName": "bv-prod"},
        {"jobId": rs_job, "vaultId": VAULT},
    ]
    for message in messages:
        intake.send_message(json.dumps(message))

    assert run_host(until_idle=True, timeout=60).join() == 0

    events = results(tracker)
    by_job = {event["data"]["jobId"]: event for event in events}
    expected = {job_id: status for job_id, status in jobs.values()}
    expected.update({op.job_id: "Succeeded" for op in triggers.values()})
    assert sorted(by_job) == sorted([*expected, rs_job]) and len(events) == len(expected) + 1
    for job_id, status in expected.items():
        event = by_job[job_id]
        jsonschema.Draft4Validator(SCHEMA).validate(event)
        job = simulator.job_resource(BV, job_id)
        properties = job["properties"]
        assert event["source"] == BV
        assert event["subject"] == f"backupJobs/{job_id}"
        assert event["type"] == f"BackupJob.{'Completed' if status == 'Succeeded' else status}"
        assert event["data"]["status"] == status == properties["status"]  # as Azure wrote it
        assert event["data"]["jobResourceId"] == f"{BV}/backupJobs/{job_id}"
        assert event["data"]["vaultKind"] == "BackupVault"
        assert event["data"]["job"] == job
        assert event["data"]["dataSourceName"] == properties["dataSourceName"]
        assert event["data"]["dataSourceType"] == properties["dataSourceType"]
        assert event["data"]["entityFriendlyName"] == properties["backupInstanceFriendlyName"]
        assert event["data"]["tasks"] == properties["extendedInfo"]["subTasks"]
        assert event["data"]["propertyBag"] == properties["extendedInfo"]["additionalDetails"]
        assert event["data"]["duration"] == iso_duration(properties["duration"])  # ISO 8601, Azure's text in data.job
        assert bool(event["data"]["errors"]) is (status == "Failed")
    failed = simulator.job_resource(BV, jobs["operation JSON"][0])["properties"]["errorDetails"][0]  # UserFacingError
    error = by_job[jobs["operation JSON"][0]]["data"]["errors"][0]
    assert (error["code"], error["message"], error["recommendations"]) == (
        failed["code"], failed["message"], failed["recommendedAction"])
    assert error["details"][0]["code"] == failed["details"][0]["code"]
    assert error["details"][0]["recommendations"] == failed["details"][0]["recommendedAction"]
    # The Recovery Services job, in the same run for the same subscriber, is as before.
    assert by_job[rs_job]["type"] == "BackupJob.Completed" and "vaultKind" not in by_job[rs_job]["data"]
    assert receiver.wait_for(lambda reqs: len([r for r in reqs if r.answered == 200]) >= len(events), 10)
    assert sorted(r.json()["id"] for r in receiver.delivered()) == sorted(e["id"] for e in events)


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"operationUrl": "{location}"}, "operationUrl"),  # a location's operation names no vault
        ({"operationUrl": "{location}", "vaultId": VAULT}, "operationUrl"),  # beside a Recovery Services vault
        ({"jobResourceId": BV + "/backupJobs/not-a-guid"}, "jobResourceId"),
        ({"jobId": "3c60cb49-63e8-4b21-b9bd-26277b3fdfae", "vaultId": BV + "/extra"}, "vaultId"),
        ({"vaultId": BV, "operation": {"jobId": BV + "/backupJobs/x", "objectType": "OperationJobExtendedInfo"}},
         "jobId"),
    ],
)
def test_refusals_name_the_field(simulator, tracker, message, field):
    location = simulator.trigger_backup(BV, JobScript(job_type="AzureStorageJob"), operation_delay=60,
                                        backup_vault_scope="location").azure_async_operation
    text = json.dumps(message).replace("{location}", location)
    acceptance = tracker.accept_message(text)
    assert acceptance.rejected and field in acceptance.rejected, acceptance.rejected
