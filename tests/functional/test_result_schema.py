"""Every kind of result event the tracker emits validates against ``schemas/backup-job-result.schema.json``, the
draft-04 schema a Logic App's Parse JSON action takes (docs/reference.md, "Result events").

Events come from the tracker itself (the simulator as Azure, Azurite, the results queue), one of each kind, plus
``TrackingFailed`` through the same event builder (it takes a storage outage of minutes to produce for real).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import isodate
import jsonschema
import pytest

from devtools.simulator import JobScript
from jobs.domain.references import JobRef, VaultRef
from jobs.domain.tracked_item import Subscriber, SubscriberRecord, TrackedItem
from jobs.domain.tracking import end_tracking_failed
from jobs.flows.result_events import event_for
from tests.conftest import ROOT, VAULT, ManualClock, poll_once, results, tracker_with_clock, wait_until

SCHEMA = json.loads((ROOT / "schemas" / "backup-job-result.schema.json").read_text(encoding="utf-8"))
ENDED = ("Completed", "CompletedWithWarnings", "Failed", "Cancelled")


def test_the_schema_is_draft_04_as_logic_apps_parse_json_takes_it():
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-04/schema#"
    jsonschema.Draft4Validator.check_schema(SCHEMA)


def test_every_kind_of_event_validates(simulator, env, clock: ManualClock):
    tracker = tracker_with_clock(env, clock)
    for status in ENDED:
        job_id = simulator.add_job(VAULT, JobScript(final_status=status, duration=0.01, job_type=(
            "AzureIaaSVMJob" if status != "Failed" else "AzureWorkloadJob")))
        tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT, "correlationId": status,
                                           "context": {"kind": status}}))
    long_job = simulator.add_job(VAULT, JobScript(duration=3600))
    tracker.accept_message(json.dumps({"jobId": long_job, "vaultId": VAULT, "timeoutMinutes": 1}))  # TimedOut
    tracker.accept_message(json.dumps({"jobId": str(uuid.uuid4()), "vaultId": VAULT}))  # never known: NotFound
    failed = {"name": str(uuid.uuid4()), "status": "Succeeded",  # Azure failed to create a job: OperationFailed
              "properties": {"objectType": "OperationStatusJobsExtendedInfo", "jobIds": [],
                             "failedJobsError": {str(uuid.uuid4()): "400244"}}}
    tracker.accept_message(json.dumps({"vaultId": VAULT, "operation": failed}))
    operation = {"name": str(uuid.uuid4()), "status": "Failed",  # the operation itself failed: no job at all
                 "error": {"code": "UserErrorVmNotFound", "message": "gone"}}
    tracker.accept_message(json.dumps({"vaultId": VAULT, "operation": operation}))
    assert wait_until(lambda: all(simulator.job_resource(VAULT, j)["properties"]["status"] in ENDED
                                  for j in simulator.job_ids(VAULT) if j != long_job), 10, interval=0.05)
    for _ in range(3):
        clock.advance(120)
        poll_once(tracker)
    events = results(tracker)
    kinds = {e["type"] for e in events}
    assert kinds == {f"BackupJob.{k}" for k in (*ENDED, "TimedOut", "NotFound", "OperationFailed")}, kinds
    events.append(_tracking_failed_event())
    for event in events:
        jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(event)


def _tracking_failed_event() -> dict:
    now = datetime.now(UTC)
    job = JobRef.create(VaultRef.from_resource_id(VAULT), str(uuid.uuid4()))
    item = TrackedItem.for_job(job, now, now)
    end_tracking_failed(item, OSError("table unreachable"), 600, now)
    assert item.result_status == "TrackingFailed"
    event = event_for(item, SubscriberRecord("default", Subscriber(), now))
    assert event["type"] == "BackupJob.TrackingFailed"
    return event


@pytest.mark.parametrize("mutation", [
    lambda e: e.pop("id"),
    lambda e: e.update(type="BackupJob.Exploded"),
    lambda e: e["data"].update(errors=[{"code": 1}]),
    lambda e: e["data"].pop("jobResourceId"),
    lambda e: e["data"].update(duration="00:20:23.0896697"),  # a .NET TimeSpan is not the event's form
    lambda e: e["data"].update(tasks=[{"taskId": "Take Snapshot", "duration": "00:00:06"}]),
])
def test_the_schema_refuses_what_is_not_an_event(mutation):
    event = _tracking_failed_event()
    jsonschema.Draft4Validator(SCHEMA).validate(event)
    mutation(event)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(SCHEMA).validate(event)


def test_point17_every_duration_in_an_event_is_iso_8601_and_azures_own_text_is_in_job(simulator, tracker):
    """IaaS VM jobs come with .NET TimeSpan durations (``00:00:00.5000000``), workload jobs with ISO 8601: the
    events say ISO 8601 for both, in ``data.duration`` and every task's, and ``data.job`` keeps what Azure wrote."""
    validator = jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    for job_type in ("AzureIaaSVMJob", "AzureWorkloadJob"):
        simulator.add_job(VAULT, JobScript(job_type=job_type, duration=0))
    for job_id in simulator.job_ids(VAULT):
        tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT}))
    assert poll_once(tracker) == 1
    by_type = {event["data"]["jobType"]: event for event in results(tracker)}
    assert set(by_type) == {"AzureIaaSVMJob", "AzureWorkloadJob"}
    azure_forms = {job_type: event["data"]["job"]["properties"]["duration"] for job_type, event in by_type.items()}
    assert ":" in azure_forms["AzureIaaSVMJob"] and azure_forms["AzureWorkloadJob"].startswith("PT"), azure_forms
    for event in by_type.values():
        validator.validate(event)
        data = event["data"]
        assert data["duration"].startswith("P"), data["duration"]
        assert isodate.parse_duration(data["duration"]) == _azure_duration(data["job"]["properties"]["duration"])
        tasks = data["tasks"]
        azure_tasks = data["job"]["properties"]["extendedInfo"]["tasksList"]
        assert tasks and len(tasks) == len(azure_tasks)
        for task, azure_task in zip(tasks, azure_tasks, strict=True):
            if "duration" in azure_task:
                assert isodate.parse_duration(task["duration"]) == _azure_duration(azure_task["duration"]), task


def _azure_duration(text: str) -> timedelta:
    """What Azure wrote, read independently of the tracker: ISO 8601, or .NET's ``[d.]hh:mm:ss[.fffffff]``."""
    if text.startswith("P"):
        return isodate.parse_duration(text)
    head, colon, rest = text.partition(":")
    days, _, hours_text = head.rpartition(".")  # "1.02" is a day and two hours
    clock = hours_text + colon + rest
    hours, minutes, seconds = clock.split(":")
    whole, _, fraction = seconds.partition(".")
    return timedelta(days=int(days or 0), hours=int(hours), minutes=int(minutes), seconds=int(whole),
                     microseconds=round(int(fraction.ljust(7, "0")) / 10))
