"""The Functions entry points: what the host indexes, and calling them directly does the runner's work."""

from __future__ import annotations

import importlib
import json
import sys
from unittest.mock import Mock

import azure.functions as func

from devtools.simulator import JobScript
from jobs.config import Settings
from tests.conftest import VAULT, results


def _load_app(monkeypatch, env):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for name in ("function_app", "jobs.functions"):
        sys.modules.pop(name, None)
    module = importlib.import_module("function_app")
    importlib.import_module("jobs.functions").get_tracker.cache_clear()
    return module


def test_index_lists_the_triggers_on_the_configured_queues(monkeypatch, env):
    app = _load_app(monkeypatch, {**env, "JOBS_POLL_SECONDS": "20"}).app
    functions = {f.get_function_name(): f for f in app.get_functions()}
    assert set(functions) == {"intake", "poll_round", "poll_vault", "deliver"}

    def trigger(name):
        return next(b for b in functions[name].get_bindings() if b.type.endswith("Trigger")).get_dict_repr()

    assert trigger("intake")["type"] == "queueTrigger"
    assert trigger("intake")["queueName"] == env["JOBS_INTAKE_QUEUE"]
    assert trigger("intake")["connection"] == "AzureWebJobsStorage"
    assert trigger("poll_round") == {**trigger("poll_round"), "type": "timerTrigger", "schedule": "*/20 * * * * *"}
    assert trigger("poll_vault")["queueName"] == env["JOBS_INTAKE_QUEUE"] + "-poll"
    assert trigger("deliver")["queueName"] == env["JOBS_INTAKE_QUEUE"] + "-deliver"


def test_calling_the_functions_directly_tracks_a_job_to_its_result(monkeypatch, env, simulator, receiver, wait):
    module = _load_app(monkeypatch, env)
    functions = {f.get_function_name(): f for f in module.app.get_functions()}
    user = {name: f.get_user_function() for name, f in functions.items()}
    tracker = importlib.import_module("jobs.functions").get_tracker()
    tracker.setup()
    settings: Settings = tracker.settings
    job_id = simulator.add_job(VAULT, JobScript(final_status="Failed", duration=0.5))

    user["intake"](func.QueueMessage(body=json.dumps({"jobId": job_id, "vaultId": VAULT, "correlationId": "f"})))
    user["intake"](func.QueueMessage(body=b"{broken"))

    poll_queue = tracker.storage.queue(settings.poll_queue)
    deliver_queue = tracker.storage.queue(settings.deliver_queue)

    def one_cycle() -> bool:
        user["poll_round"](Mock(past_due=False))
        for message in poll_queue.receive_messages(max_messages=32):
            user["poll_vault"](func.QueueMessage(body=message.content.encode()))
            poll_queue.delete_message(message)
        for message in deliver_queue.receive_messages(max_messages=32):
            user["deliver"](func.QueueMessage(body=message.content.encode()))
            deliver_queue.delete_message(message)
        return not tracker.store.list_index()

    assert wait(one_cycle, 20)
    events = results(tracker)
    assert [e["type"] for e in events] == ["BackupJob.Failed"]
    assert events[0]["data"]["correlationId"] == "f"
    assert events[0]["data"]["job"] == simulator.job_resource(VAULT, job_id)
    assert events[0]["data"]["errors"]
    assert [r.json()["id"] for r in receiver.delivered()] == [events[0]["id"]]
    rejected = list(tracker.storage.queue(settings.rejected_queue).receive_messages())
    assert len(rejected) == 1 and json.loads(rejected[0].content)["message"] == "{broken"
