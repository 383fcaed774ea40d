"""The HTTP API through real HTTP on loopback (docs/reference.md, "HTTP API").

``python -m jobs run --http-port`` as a user starts it (one test), and the same server (``LocalHttpServer`` over
``HttpApi``, the code path ``run`` uses) in-process over a tracker on a clock the test moves, so a job's life is
driven by ``poll_once`` instead of waited for.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import requests

from devtools.simulator import JobScript
from devtools.webhook_receiver import WebhookReceiver
from jobs.config import Settings
from jobs.http_api import HttpApi
from jobs.local_http import LocalHttpServer
from jobs.storage.account import LOCAL_HOST, StorageAccount
from jobs.tracker import Tracker
from jobs.webhooks import callback_urls
from tests.conftest import (
    SECRET,
    VAULT,
    ManualClock,
    drain,
    free_ports,
    poll_once,
    results,
    tracker_with_clock,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
SUBSCRIPTION = VAULT.split("/")[2]


class Api:
    """A tracker on the test's clock and the loopback server over it."""

    def __init__(self, tracker: Tracker, server: LocalHttpServer) -> None:
        self.tracker = tracker
        self.url = server.url + "/api"

    def post(self, body: object) -> requests.Response:
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        return requests.post(self.url + "/jobs", data=data, timeout=10, allow_redirects=False)

    def deliver_all(self) -> list[str]:
        """Every delivery task handled as the deliver trigger would, until none is left; returns the outcomes."""
        outcomes = []
        while messages := drain(self.tracker._storage.queue(self.tracker.settings.deliver_queue)):
            outcomes += [self.tracker.handle_delivery_message(m) for m in messages]
        return outcomes


@pytest.fixture
def make_api(env: dict[str, str], clock: ManualClock) -> Iterator[Callable[..., Api]]:
    servers: list[LocalHttpServer] = []

    def make(**overrides: str) -> Api:
        tracker = tracker_with_clock(env, clock, **overrides)
        server = LocalHttpServer(HttpApi(lambda: tracker)).start()
        servers.append(server)
        return Api(tracker, server)

    yield make
    for server in servers:
        server.stop()


def _job(simulator, **script: object) -> dict[str, str]:
    return {"jobId": simulator.add_job(VAULT, JobScript(**script)), "vaultId": VAULT}  # type: ignore[arg-type]


def _wait_past_end(simulator, api: Api, clock: ManualClock, job_id: str) -> None:
    """Until Azure (the simulator) says the job ended, then one poll round: the tracker saw the end."""
    ended = ("Completed", "CompletedWithWarnings", "Failed", "Cancelled")
    assert wait_until(lambda: simulator.job_resource(VAULT, job_id)["properties"]["status"] in ended, 10,
                      interval=0.05)
    clock.advance(3600)
    poll_once(api.tracker)
    assert not api.tracker._store.list_index()


def test_run_http_port_serves_the_api_and_the_location_works_without_a_key(simulator, env):
    """``python -m jobs run --http-port``: POST, then GET the absolute Location with no key until 200."""
    [port] = free_ports(1)
    job_id = simulator.add_job(VAULT, JobScript(final_status="CompletedWithWarnings", duration=2))
    process = subprocess.Popen([sys.executable, "-m", "jobs", "run", "--http-port", str(port), "--timeout", "60"],
                               cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}/api"
        session = requests.Session()

        def up() -> bool:
            try:
                return session.get(base + "/health", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        assert wait_until(up, 20), "the HTTP API did not come up"
        posted = session.post(base + "/jobs", json={"jobId": job_id, "vaultId": VAULT, "correlationId": "la"},
                              timeout=10)
        assert posted.status_code == 202, posted.text
        location = posted.headers["Location"]
        assert location.startswith(f"http://127.0.0.1:{port}/api/jobs/")  # absolute
        assert int(posted.headers["Retry-After"]) >= 1
        first = requests.get(location, timeout=10)  # a fresh client: no key, no cookie, nothing but the URL
        assert first.status_code == 202 and int(first.headers["Retry-After"]) >= 1
        assert first.headers["Location"] == location

        def ended() -> bool:
            return requests.get(location, timeout=10).status_code != 202

        assert wait_until(ended, 30, interval=0.2)
        final = requests.get(location, timeout=10)
        assert final.status_code == 200 and final.headers["Content-Type"].startswith("application/json")
        event = final.json()
        assert event["type"] == "BackupJob.CompletedWithWarnings"
        assert event["data"]["correlationId"] == "la" and event["data"]["jobId"] == job_id
        tampered = location[:-3] + ("AAA" if not location.endswith("AAA") else "BBB")
        assert requests.get(tampered, timeout=10).status_code == 404
        assert requests.get(location.split("?")[0], timeout=10).status_code == 401
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert "HTTP API http://127.0.0.1:" in stderr
    assert "sig=" not in stderr  # access lines show paths without their query


def test_status_url_answers_202_with_retry_after_from_the_next_poll_then_200_with_the_event(
    simulator, make_api, clock
):
    api = make_api()
    body = _job(simulator, duration=3600)
    posted = api.post({**body, "correlationId": "poll"})
    assert posted.status_code == 202
    location = posted.headers["Location"]
    tracking_id = posted.json()["trackingId"]
    assert urlsplit(location).path == f"/api/jobs/{quote(tracking_id)}"
    poll_once(api.tracker)  # asked Azure once: still InProgress, next poll scheduled
    entry = api.tracker._store.get_index_entry(tracking_id)
    assert entry is not None
    running = requests.get(location, timeout=10)
    assert running.status_code == 202
    assert running.headers["Retry-After"] == str(max(1, math.ceil((entry.next_poll_at - clock.now).total_seconds())))
    assert running.json() == {"trackingId": tracking_id, "status": "InProgress"}

    assert simulator.cancel_job(VAULT, body["jobId"])
    _wait_past_end(simulator, api, clock, body["jobId"])
    done = requests.get(location, timeout=10)
    assert done.status_code == 200
    [queued] = results(api.tracker)
    assert done.json() == queued  # the very event the results queue got
    assert done.json()["type"] == "BackupJob.Cancelled" and done.json()["data"]["correlationId"] == "poll"


def test_posting_the_same_job_twice_returns_the_same_tracking_id_and_both_urls_work(simulator, make_api):
    api = make_api()
    body = _job(simulator, duration=3600)
    first, second = api.post(body), api.post({**body, "vaultId": VAULT.upper()})
    assert first.status_code == second.status_code == 202
    assert first.json()["trackingId"] == second.json()["trackingId"]
    assert first.headers["Location"] != second.headers["Location"]  # one capability per call
    assert [requests.get(r.headers["Location"], timeout=10).status_code for r in (first, second)] == [202, 202]
    assert len(api.tracker._store.list_index()) == 1


def test_a_tampered_or_missing_sig_tells_nothing_about_the_job(simulator, make_api):
    api = make_api()
    location = api.post(_job(simulator, duration=3600)).headers["Location"]
    path, sig = location.split("?sig=")
    other = f"{api.url}/jobs/{uuid.uuid4()}-deadbeef?sig={sig}"  # a valid sig on an unknown job
    forged = f"{path}?sig={sig[:-1]}{'A' if sig[-1] != 'A' else 'B'}"
    answers = [requests.get(url, timeout=10) for url in (forged, other, f"{path}?sig=short")]
    assert [a.status_code for a in answers] == [404, 404, 404]
    assert answers[0].json() == answers[1].json() == answers[2].json()  # same body: existence not revealed
    assert answers[0].headers["Content-Type"] == "application/problem+json"
    missing = requests.get(path, timeout=10)
    assert missing.status_code == 401 and missing.json()["status"] == 401
    assert requests.delete(forged, timeout=10).status_code == 404
    assert api.tracker._store.list_index()  # still tracked


@pytest.mark.parametrize(("body", "field"), [
    ({"jobId": "not-a-guid", "vaultId": VAULT}, "jobId"),
    ({"jobId": str(uuid.uuid4())}, "vaultId"),
    ({"jobId": str(uuid.uuid4()), "vaultId": VAULT, "timeoutMinutes": -5}, "timeoutMinutes"),
    ({"jobId": str(uuid.uuid4()), "vaultId": VAULT, "callbackUrl": "http://hooks.example.com/x"}, "callbackUrl"),
    ({"jobId": str(uuid.uuid4()), "vaultId": VAULT, "context": "text"}, "context"),
    ("{not json", "message"),
    ("", "message"),
])
def test_a_bad_body_gets_400_problem_json_naming_the_field(make_api, body, field):
    api = make_api()
    answer = api.post(body)
    assert answer.status_code == 400
    assert answer.headers["Content-Type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == 400 and problem["field"] == field
    assert problem["type"].startswith("urn:backup-job-tracker:problem:") and problem["title"]
    if field != "message":
        assert problem["detail"].startswith(field)
    # answered, not queued: the caller heard the reason (docs/reference.md)
    assert drain(api.tracker._storage.queue(api.tracker.settings.rejected_queue)) == []
    assert api.tracker._store.list_index() == []


@pytest.fixture
def callback_api(make_api, https_receiver: WebhookReceiver) -> Api:
    return make_api(JOBS_CALLBACK_ALLOWED_HOSTS="127.0.0.1")


def test_a_subscribe_call_gets_202_and_its_callback_gets_the_event(simulator, callback_api, https_receiver, clock):
    api = callback_api
    # A Logic Apps callback URL's shape (the SAS in its query): it gets application/json, which Logic Apps parse.
    callback = f"{https_receiver.url}/workflows/abc/runs/08585/actions/Wait/run?api-version=2016-10-01" \
               "&sp=%2Fruns%2F08585%2Factions%2FWait%2Frun%2C%2Fruns%2F08585%2Factions%2FWait%2Fread&sv=1.0&sig=s3cr3t"
    body = _job(simulator, duration=0.3)
    posted = api.post({**body, "callbackUrl": callback, "correlationId": "webhook"})
    assert posted.status_code == 202 and posted.headers["Location"].startswith("http://127.0.0.1:")
    _wait_past_end(simulator, api, clock, body["jobId"])
    assert "delivered" in api.deliver_all()
    [hit] = [r for r in https_receiver.delivered() if "/workflows/" in r.path]
    assert hit.headers["content-type"] == "application/json; charset=utf-8"
    assert hit.verified and hit.json()["data"]["correlationId"] == "webhook"
    assert hit.json() == requests.get(posted.headers["Location"], timeout=10).json()


def test_unsubscribe_by_callback_url_means_no_callback_even_past_the_jobs_end(
    simulator, callback_api, https_receiver, clock
):
    api = callback_api
    body = _job(simulator, duration=0.3)
    plain = api.post(body)  # the default subscriber keeps the job tracked
    callback = https_receiver.url + "/run?sig=abc"
    assert api.post({**body, "callbackUrl": callback}).status_code == 202
    gone = requests.delete(f"{api.url}/jobs", params={"callbackUrl": callback}, timeout=10)
    assert gone.status_code == 204
    _wait_past_end(simulator, api, clock, body["jobId"])
    tracking_id = plain.json()["trackingId"]
    item = api.tracker._store.get(tracking_id)
    assert item is not None and item.ended  # the job ran to its end...
    api.deliver_all()  # ...and every delivery it caused was handled: the deliver queue is empty
    assert https_receiver.delivered() == []
    assert [e["data"]["jobId"] for e in results(api.tracker)] == [body["jobId"]]  # the default subscriber's only
    assert requests.get(plain.headers["Location"], timeout=10).status_code == 200


def test_a_delivery_already_queued_is_dropped_after_an_unsubscribe(simulator, callback_api, https_receiver, clock):
    api = callback_api
    body = _job(simulator, duration=0.3)
    api.post(body)
    callback = https_receiver.url + "/run?sig=late"
    subscribed = api.post({**body, "callbackUrl": callback})
    _wait_past_end(simulator, api, clock, body["jobId"])  # published: the callback's delivery task is queued
    location = subscribed.headers["Location"]
    assert requests.delete(location, params={"callbackUrl": callback}, timeout=10).status_code == 204
    # the callback and the JOBS_WEBHOOK_URLS delivery of that subscriber are dropped; the default's goes out
    assert sorted(api.deliver_all()) == ["delivered", "dropped", "dropped"]
    assert https_receiver.delivered() == []
    assert requests.get(location, timeout=10).status_code == 404  # that subscriber is gone


def test_delete_on_the_status_url_stops_tracking_when_no_subscriber_is_left(simulator, make_api, clock):
    api = make_api()
    body = _job(simulator, duration=3600)
    posted = api.post(body)
    location = posted.headers["Location"]
    assert requests.delete(location, timeout=10).status_code == 204
    assert api.tracker._store.get(posted.json()["trackingId"]) is None
    assert api.tracker._store.list_index() == []
    assert requests.get(location, timeout=10).status_code == 404
    clock.advance(60)
    assert poll_once(api.tracker) == 0 and results(api.tracker) == []


def test_health_is_200_then_503_naming_a_subscription_whose_reads_answer_401(simulator, make_api, clock):
    healthy = requests.get(make_api().url + "/health", timeout=10)
    assert healthy.status_code == 200 and healthy.json()["checks"] == {
        "configuration": "ok", "storage": "ok", "arm": "ok", "detector": "off"}
    api = make_api(JOBS_ARM_TOKEN="expired-token")
    api.post(_job(simulator, duration=3600))
    poll_once(api.tracker)
    answer = requests.get(api.url + "/health", timeout=10)
    assert answer.status_code == 503 and answer.headers["Content-Type"] == "application/problem+json"
    problem = answer.json()
    assert SUBSCRIPTION in problem["detail"] and "401" in problem["checks"]["arm"]
    assert problem["checks"]["storage"] == "ok"
    assert "expired-token" not in answer.text and SECRET not in answer.text


def test_health_is_503_naming_storage_when_it_cannot_be_reached(env, clock):
    ports = dict(zip(("blob", "queue", "table"), free_ports(3), strict=True))
    down = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
            + "".join(f"{name.capitalize()}Endpoint=http://127.0.0.1:{port}/devstoreaccount1;"
                      for name, port in ports.items()))
    tracker = Tracker(Settings.from_env({**env, "AzureWebJobsStorage": down}), clock=clock)
    with LocalHttpServer(HttpApi(lambda: tracker)) as server:
        answer = requests.get(server.url + "/api/health", timeout=30)
    assert answer.status_code == 503
    problem = answer.json()
    assert problem["checks"]["storage"].startswith("cannot reach the queue service at http://127.0.0.1:")
    assert "storage" in problem["detail"] and "AccountKey" not in answer.text and "Eby8" not in answer.text


def test_an_operation_url_is_followed_to_its_job_and_the_status_url_answers_with_the_jobs_event(
    simulator, callback_api, https_receiver, clock
):
    """What both Logic Apps samples do: hand the trigger call's Azure-AsyncOperation URL to POST /api/jobs."""
    api = callback_api
    operation = simulator.trigger_backup(VAULT, JobScript(duration=0), operation_delay=0)
    callback = https_receiver.url + "/run?sig=op"
    posted = api.post({"operationUrl": operation.azure_async_operation, "callbackUrl": callback})
    assert posted.status_code == 202 and posted.json()["trackingId"].startswith("op-")
    location = posted.headers["Location"]
    assert requests.get(location, timeout=10).status_code == 202  # not even asked yet
    clock.advance(1)
    poll_once(api.tracker)  # the operation names its job; the job is tracked for the operation's subscribers
    clock.advance(60)
    poll_once(api.tracker)
    assert not api.tracker._store.list_index()
    done = requests.get(location, timeout=10)
    assert done.status_code == 200
    event = done.json()
    assert event["type"] == "BackupJob.Completed" and event["data"]["jobId"] == operation.job_id
    assert "delivered" in api.deliver_all()
    assert [r.json()["id"] for r in https_receiver.delivered() if r.path.startswith("/hooks/run")] == [event["id"]]


def test_point3_one_callers_delete_does_not_cost_a_queue_producer_or_another_caller_its_result(
    simulator, make_api, clock
):
    """Three subscribers without correlationId, context or callbackUrl share the "default" row: a queue producer
    and two HTTP callers. Each caller's DELETE lets go of its own status URL; the result still goes out."""
    api = make_api()
    body = _job(simulator, duration=0.3)
    api.tracker.accept_message(json.dumps(body))  # the queue producer
    first, second = api.post(body), api.post(body)
    assert requests.delete(first.headers["Location"], timeout=10).status_code == 204
    assert requests.get(first.headers["Location"], timeout=10).status_code == 404  # that URL let go
    assert requests.get(second.headers["Location"], timeout=10).status_code == 202  # the other still holds
    assert requests.delete(second.headers["Location"], timeout=10).status_code == 204
    tracking_id = first.json()["trackingId"]
    assert api.tracker._store.get(tracking_id) is not None  # the queue producer still follows the job
    _wait_past_end(simulator, api, clock, body["jobId"])
    assert [e["data"]["jobId"] for e in results(api.tracker)] == [body["jobId"]]


def test_point12_a_dns_server_that_cannot_answer_now_is_a_503_with_retry_after(make_api, monkeypatch):
    """A wildcard-allowed callback host whose lookup fails for now (EAI_AGAIN): no verdict on the URL, so the caller
    is told to come back (Logic Apps retries 5xx), and nothing is tracked."""
    api = make_api(JOBS_CALLBACK_ALLOWED_HOSTS="*.example.test")

    def eai_again(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(callback_urls, "default_resolve", eai_again)
    answer = api.post({"jobId": str(uuid.uuid4()), "vaultId": VAULT, "callbackUrl": "https://la.example.test/run"})
    assert answer.status_code == 503, answer.text
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert int(answer.headers["Retry-After"]) >= 1
    problem = answer.json()
    assert problem["status"] == 503 and problem["type"].endswith(":unavailable")
    assert "could not be resolved just now" in problem["detail"]
    assert list(api.tracker._store.list_items()) == []


def test_point12_storage_out_of_reach_is_a_503_with_retry_after_on_every_route(env, clock):
    ports = dict(zip(("blob", "queue", "table"), free_ports(3), strict=True))
    down = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
            + "".join(f"{name.capitalize()}Endpoint=http://127.0.0.1:{port}/devstoreaccount1;"
                      for name, port in ports.items()))
    settings = Settings.from_env({**env, "AzureWebJobsStorage": down})
    tracker = Tracker(settings, storage=StorageAccount(settings.storage, LOCAL_HOST), clock=clock)
    token = "A" * 43
    with LocalHttpServer(HttpApi(lambda: tracker)) as server:
        base = server.url + "/api"
        answers = [
            requests.post(base + "/jobs", json={"jobId": str(uuid.uuid4()), "vaultId": VAULT}, timeout=30),
            requests.get(f"{base}/jobs/some-job?sig={token}", timeout=30),
            requests.delete(f"{base}/jobs/some-job?sig={token}", timeout=30),
            requests.delete(base + "/jobs", params={"callbackUrl": "https://la.example.test/run"}, timeout=30),
        ]
    for answer in answers:
        assert answer.status_code == 503, (answer.request.method, answer.request.url, answer.text)
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert int(answer.headers["Retry-After"]) >= 1
        assert answer.json()["detail"] == "the tracker's storage cannot be reached just now"


LOGIC_APPS_HEADERS = {"x-ms-client-tracking-id": "08584712345678901234567890CU12",
                      "x-ms-workflow-operation-name": "Wait_for_backup_job"}


def test_point13_a_webhook_actions_unsubscribe_by_what_logic_apps_sends_means_no_callback(
    simulator, callback_api, https_receiver, clock
):
    """Logic Apps' unsubscribe cannot use listCallbackUrl(); it sends the same x-ms-client-tracking-id and
    x-ms-workflow-operation-name headers as the subscribe call. The operation's job, handed on later, goes too."""
    api = callback_api
    operation = simulator.trigger_backup(VAULT, JobScript(duration=0.3), operation_delay=0)
    callback = https_receiver.url + "/workflows/abc/runs/1/actions/Wait/run?sig=x"
    posted = requests.post(f"{api.url}/jobs", json={"operationUrl": operation.azure_async_operation,
                                                    "callbackUrl": callback}, headers=LOGIC_APPS_HEADERS, timeout=10)
    assert posted.status_code == 202
    other = api.post(_job(simulator, duration=0.3) | {"callbackUrl": https_receiver.url + "/other?sig=y"})
    clock.advance(1)
    poll_once(api.tracker)  # the operation named its job: tracked for the operation's subscriber
    [job] = [i for i in api.tracker._store.list_items() if i.job_id == operation.job_id]
    assert api.tracker._store.list_subscribers(job.tracking_id)
    gone = requests.delete(f"{api.url}/jobs", headers=LOGIC_APPS_HEADERS, timeout=10)
    assert gone.status_code == 204, gone.text
    assert api.tracker._store.get(job.tracking_id) is None  # nobody follows it any more: not tracked
    assert requests.get(posted.headers["Location"], timeout=10).status_code == 404
    again = requests.delete(f"{api.url}/jobs", headers=LOGIC_APPS_HEADERS, timeout=10)
    assert again.status_code == 404 and again.headers["Content-Type"] == "application/problem+json"
    _wait_past_end(simulator, api, clock, _job_id_of(api, other))
    api.deliver_all()
    assert [r.path for r in https_receiver.delivered() if "/workflows/" in r.path] == []
    assert [r.path.split("?")[0] for r in https_receiver.delivered()] == ["/hooks/other"]


def _job_id_of(api: Api, posted: requests.Response) -> str:
    item = api.tracker._store.get(posted.json()["trackingId"])
    assert item is not None and item.job_id
    return item.job_id


def test_point13_an_unsubscribe_that_matches_nothing_is_404_and_the_callback_still_goes(
    simulator, callback_api, https_receiver, clock
):
    api = callback_api
    body = _job(simulator, duration=0.3)
    callback = https_receiver.url + "/run?sig=kept"
    posted = requests.post(f"{api.url}/jobs", json={**body, "callbackUrl": callback}, headers=LOGIC_APPS_HEADERS,
                           timeout=10)
    unknown = https_receiver.url + "/run?sig=unknown"
    for answer in (
        requests.delete(f"{api.url}/jobs", params={"callbackUrl": unknown}, timeout=10),
        requests.delete(f"{api.url}/jobs", headers={**LOGIC_APPS_HEADERS, "x-ms-client-tracking-id": "other-run"},
                        timeout=10),
        requests.delete(f"{api.url}/jobs", params={"correlationId": "not-given"}, headers=LOGIC_APPS_HEADERS,
                        timeout=10),
        requests.delete(posted.headers["Location"], params={"callbackUrl": unknown}, timeout=10),
    ):
        assert answer.status_code == 404, answer.text
        assert answer.headers["Content-Type"] == "application/problem+json"
    _wait_past_end(simulator, api, clock, body["jobId"])
    assert "delivered" in api.deliver_all()
    assert [r.path.split("?")[0] for r in https_receiver.delivered()] == ["/hooks/run"]


def test_point16_a_200_kib_context_is_refused_for_its_documented_16_kb_limit(make_api):
    api = make_api()
    body = {"jobId": str(uuid.uuid4()), "vaultId": VAULT, "context": {"blob": "x" * (200 * 1024)}}
    answer = api.post(body)
    assert answer.status_code == 400
    problem = answer.json()
    assert problem["field"] == "context", problem
    assert problem["detail"].startswith("context is 204811 bytes, more than the 16 KB (16384 bytes)")
    assert "queue message" not in problem["detail"]


def test_point12_storage_that_refuses_the_key_is_a_503_naming_storage_without_retry_after(env, clock):
    """A wrong account key is not a failure that passes: 503 naming storage, as the health check does, and no
    Retry-After (it lasts until the operator fixes it)."""
    wrong_key = re.sub(r"AccountKey=[^;]+", "AccountKey=" + base64.b64encode(b"not the key" * 6).decode(),
                       env["AzureWebJobsStorage"])
    settings = Settings.from_env({**env, "AzureWebJobsStorage": wrong_key})
    tracker = Tracker(settings, storage=StorageAccount(settings.storage, LOCAL_HOST), clock=clock)
    with LocalHttpServer(HttpApi(lambda: tracker)) as server:
        answer = requests.post(server.url + "/api/jobs", json={"jobId": str(uuid.uuid4()), "vaultId": VAULT},
                               timeout=30)
    assert answer.status_code == 503 and "Retry-After" not in answer.headers, answer.text
    problem = answer.json()
    assert problem["checks"]["storage"].startswith("the tracker's storage refused its request (403)")
    assert "not the key" not in answer.text and "AccountKey" not in answer.text


def test_point3_a_delete_on_an_operations_status_url_leaves_the_queue_producers_job_tracked(
    simulator, make_api, clock
):
    """The same rule once the operation named its job: the job keeps the subscriber the queue message holds."""
    api = make_api()
    operation = simulator.trigger_backup(VAULT, JobScript(duration=0.3), operation_delay=0)
    body = {"operationUrl": operation.azure_async_operation}
    api.tracker.accept_message(json.dumps(body))  # the queue producer
    posted = api.post(body)
    clock.advance(1)
    poll_once(api.tracker)  # the operation names its job, tracked for the operation's subscribers
    assert requests.delete(posted.headers["Location"], timeout=10).status_code == 204
    [job] = [i for i in api.tracker._store.list_items() if i.job_id == operation.job_id]
    assert [r.key for r in api.tracker._store.list_subscribers(job.tracking_id)] == ["default"]
    _wait_past_end(simulator, api, clock, operation.job_id)
    assert [e["data"]["jobId"] for e in results(api.tracker)] == [operation.job_id]
