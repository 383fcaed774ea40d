"""The Functions entry points: what the host indexes, and calling them directly does the runner's work."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from unittest.mock import Mock

import azure.functions as func

from devtools.simulator import JobScript
from jobs.config import Settings
from tests.conftest import VAULT, results


def _load_app(monkeypatch, env):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for name in ("function_app", "jobs.functions", "jobs.http_functions"):
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

    poll_queue = tracker._storage.queue(settings.poll_queue)
    deliver_queue = tracker._storage.queue(settings.deliver_queue)

    def one_cycle() -> bool:
        user["poll_round"](Mock(past_due=False))
        for message in poll_queue.receive_messages(max_messages=32):
            user["poll_vault"](func.QueueMessage(body=message.content.encode()))
            poll_queue.delete_message(message)
        for message in deliver_queue.receive_messages(max_messages=32):
            user["deliver"](func.QueueMessage(body=message.content.encode()))
            deliver_queue.delete_message(message)
        return not tracker._store.list_index()

    assert wait(one_cycle, 20)
    events = results(tracker)
    assert [e["type"] for e in events] == ["BackupJob.Failed"]
    assert events[0]["data"]["correlationId"] == "f"
    assert events[0]["data"]["job"] == simulator.job_resource(VAULT, job_id)
    assert events[0]["data"]["errors"]
    assert [r.json()["id"] for r in receiver.delivered()] == [events[0]["id"]]
    rejected = list(tracker._storage.queue(settings.rejected_queue).receive_messages())
    assert len(rejected) == 1 and json.loads(rejected[0].content)["message"] == "{broken"


def test_the_http_functions_have_their_routes_and_auth_levels(monkeypatch, env):
    app = _load_app(monkeypatch, env).app
    routes = {}
    for function in app.get_functions():
        trigger = next(b.get_dict_repr() for b in function.get_bindings() if b.type.endswith("Trigger"))
        if trigger["type"] == "httpTrigger":
            routes[function.get_function_name()] = (
                trigger["route"], sorted(str(getattr(m, "value", m)) for m in trigger["methods"]),
                str(getattr(trigger["authLevel"], "value", trigger["authLevel"])).upper())
    assert routes == {
        "http_track": ("jobs", ["POST"], "FUNCTION"),
        "http_unsubscribe": ("jobs", ["DELETE"], "FUNCTION"),
        "http_job_status": ("jobs/{trackingId}", ["DELETE", "GET"], "ANONYMOUS"),  # the URL's sig authorises
        "http_health": ("health", ["GET"], "FUNCTION"),
    }
    # the routes are served under /api/ (docs/reference.md): host.json says so rather than relying on the default
    host = json.loads((Path(__file__).resolve().parents[2] / "host.json").read_text(encoding="utf-8"))
    assert host["extensions"]["http"]["routePrefix"] == "api"


def test_calling_the_http_functions_directly(monkeypatch, env, simulator):
    module = _load_app(monkeypatch, env)
    user = {f.get_function_name(): f.get_user_function() for f in module.app.get_functions()}
    importlib.import_module("jobs.functions").get_tracker().setup()
    job_id = simulator.add_job(VAULT, JobScript(duration=3600))
    # As App Service's front end hands a request to the host: an internal hop, the caller's host forwarded.
    posted = user["http_track"](func.HttpRequest(
        "POST", "http://127.0.0.1:7071/api/jobs", headers={"X-Forwarded-Host": "tracker.azurewebsites.net",
                                                          "X-Forwarded-Proto": "https"},
        body=json.dumps({"jobId": job_id, "vaultId": VAULT}).encode()))
    assert posted.status_code == 202
    location = posted.headers["Location"]
    assert location.startswith("https://tracker.azurewebsites.net/api/jobs/")
    path, sig = location.removeprefix("https://tracker.azurewebsites.net").split("?sig=")
    tracking_id = path.rsplit("/", 1)[1]

    def status(method, params):
        return user["http_job_status"](func.HttpRequest(
            method, "https://tracker.azurewebsites.net" + path, params=params, body=b"",
            route_params={"trackingId": tracking_id}))

    running = status("GET", {"sig": sig})
    assert running.status_code == 202 and int(running.headers["Retry-After"]) >= 1
    assert status("GET", {}).status_code == 401
    assert status("GET", {"sig": sig[::-1]}).status_code == 404
    bad_body = json.dumps({"jobId": 1, "vaultId": VAULT}).encode()
    bad = user["http_track"](func.HttpRequest("POST", "http://127.0.0.1:7071/api/jobs", body=bad_body))
    assert bad.status_code == 400 and bad.mimetype == "application/problem+json"
    assert json.loads(bad.get_body())["field"] == "jobId"
    health = user["http_health"](func.HttpRequest("GET", "http://127.0.0.1:7071/api/health", body=b""))
    assert health.status_code == 200, health.get_body()
    assert status("DELETE", {"sig": sig}).status_code == 204
    assert status("GET", {"sig": sig}).status_code == 404
    gone = user["http_unsubscribe"](func.HttpRequest("DELETE", "http://127.0.0.1:7071/api/jobs", body=b""))
    assert gone.status_code == 400
