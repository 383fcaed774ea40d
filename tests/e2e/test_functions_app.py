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
    queue = env["JOBS_INTAKE_QUEUE"]
    # The contract's four triggers, each with exactly its bindings (other functions, such as HTTP ones, may join).
    contract = {
        "intake": [{"direction": "IN", "type": "queueTrigger", "name": "msg", "queueName": queue,
                    "connection": "AzureWebJobsStorage"}],
        "poll_round": [{"direction": "IN", "type": "timerTrigger", "name": "timer", "schedule": "*/20 * * * * *"}],
        "poll_vault": [{"direction": "IN", "type": "queueTrigger", "name": "msg", "queueName": queue + "-poll",
                        "connection": "AzureWebJobsStorage"}],
        "deliver": [{"direction": "IN", "type": "queueTrigger", "name": "msg", "queueName": queue + "-deliver",
                     "connection": "AzureWebJobsStorage"}],
    }
    assert set(contract) <= set(functions), sorted(functions)

    def bindings(name):
        return [{**b.get_dict_repr(), "direction": b.get_dict_repr()["direction"].name}
                for b in functions[name].get_bindings()]

    for name, expected in contract.items():
        assert bindings(name) == expected, name
    # Each contract trigger is the only function on its queue or schedule.
    triggers = [next(b for b in f.get_bindings() if b.type.endswith("Trigger")).get_dict_repr() for f in
                functions.values()]
    queues = [t.get("queueName") for t in triggers if t["type"] == "queueTrigger"]
    assert sorted(q for q in queues if q.startswith(queue)) == sorted([queue, queue + "-poll", queue + "-deliver"])


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
