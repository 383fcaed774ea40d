"""Every kind of result event the tracker emits validates against ``schemas/backup-job-result.schema.json``, the
draft-04 schema a Logic App's Parse JSON action takes (docs/reference.md, "Result events").

Events come from the tracker itself (the simulator as Azure, Azurite, the results queue), one of each kind, plus
``TrackingFailed`` through the same event builder (it takes a storage outage of minutes to produce for real).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

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
])
def test_the_schema_refuses_what_is_not_an_event(mutation):
    event = _tracking_failed_event()
    jsonschema.Draft4Validator(SCHEMA).validate(event)
    mutation(event)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(SCHEMA).validate(event)
