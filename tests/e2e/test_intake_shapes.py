"""Each intake shape of the contract ends in exactly one result event per subscriber (Azurite + simulator + a
real webhook receiver)."""

from __future__ import annotations

import base64
import json

from standardwebhooks.webhooks import Webhook

from devtools.simulator import JobScript
from jobs.domain.events import iso_duration
from tests.conftest import SECRET, VAULT, fixture_json, results

SUB, RG, NAME = "11111111-2222-3333-4444-555555555555", "backup-rg", "prod-vault"


def test_every_intake_shape_ends_in_one_event_per_subscriber(simulator, tracker, receiver, run_host):
    intake = tracker._storage.queue(tracker.settings.intake_queue)
    jobs = {shape: simulator.add_job(VAULT, JobScript(duration=1.5)) for shape in ("1", "2", "3", "3-bare", "3-b64")}
    seed_operation = fixture_json("seed-operation-response.json")
    seed_job = simulator.add_job(VAULT, JobScript(job_id=seed_operation["properties"]["jobId"], duration=1.0))
    triggered = simulator.trigger_backup(VAULT, JobScript(duration=1.0), operation_delay=0.5)
    job_id = lambda shape: jobs[shape]  # noqa: E731
    messages = {
        "1": {"jobId": job_id("1"), "vaultId": VAULT, "correlationId": "c-1"},
        "2": {"jobId": job_id("2"), "subscriptionId": SUB, "resourceGroup": RG, "vaultName": NAME,
              "correlationId": "c-2"},
        "3": {"jobResourceId": f"{VAULT}/backupJobs/{job_id('3')}", "correlationId": "c-3"},
        "4": {"vaultId": VAULT, "operation": seed_operation, "correlationId": "c-4", "context": {"ticket": 42}},
        "5": {"operationUrl": triggered.azure_async_operation, "correlationId": "c-5"},
    }
    for message in messages.values():
        intake.send_message(json.dumps(message))
    intake.send_message(f"{VAULT}/backupJobs/{job_id('3-bare')}")  # a bare resource id, plain text
    intake.send_message(base64.b64encode(json.dumps(f"{VAULT}/backupJobs/{job_id('3-b64')}").encode()).decode())

    assert run_host(until_idle=True, timeout=60).join() == 0

    events = results(tracker)
    by_job = {event["data"]["jobId"]: event for event in events}
    expected = {*jobs.values(), seed_job, triggered.job_id}
    assert sorted(by_job) == sorted(expected)
    assert len(events) == len(expected)  # exactly one each
    for event in events:
        job_id_ = event["data"]["jobId"]
        assert event["specversion"] == "1.0"
        assert event["type"] == "BackupJob.Completed"
        assert event["source"] == VAULT
        assert event["subject"] == f"backupJobs/{job_id_}"
        assert event["datacontenttype"] == "application/json"
        assert event["data"]["job"] == simulator.job_resource(VAULT, job_id_)
        assert event["data"]["status"] == "Completed"
        assert event["data"]["vaultId"] == VAULT
        assert event["data"]["jobResourceId"] == f"{VAULT}/backupJobs/{job_id_}"
        azure_tasks = event["data"]["job"]["properties"]["extendedInfo"]["tasksList"]  # durations in ISO 8601
        assert event["data"]["tasks"] == [{**t, "duration": iso_duration(t["duration"])} if "duration" in t else t
                                          for t in azure_tasks]
        assert event["data"]["errors"] == []
    assert by_job[seed_job]["data"]["context"] == {"ticket": 42}
    assert by_job[triggered.job_id]["data"]["correlationId"] == "c-5"

    # The webhook got the same events, signed the Standard Webhooks way.
    assert receiver.wait_for(lambda reqs: len([r for r in reqs if r.answered == 200]) >= len(expected), 10)
    delivered = receiver.delivered()
    assert sorted(r.json()["id"] for r in delivered) == sorted(e["id"] for e in events)
    for request in delivered:
        assert request.headers["content-type"] == "application/cloudevents+json; charset=utf-8"
        assert request.headers["webhook-id"] == request.json()["id"]
        Webhook(SECRET).verify(request.body, request.headers)  # raises when the signature is wrong
        assert request.verified is True
