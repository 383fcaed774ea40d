"""The Event Grid output end to end: a topic stand-in on loopback over https (the webhook receiver with a
self-signed certificate the test makes and trusts through REQUESTS_CA_BUNDLE), fed through the whole tracker."""

from __future__ import annotations

import json
import logging
from datetime import datetime

from devtools.simulator import JobScript
from devtools.webhook_receiver import WebhookReceiver
from jobs.webhooks.sender import describe_url
from tests.conftest import VAULT, drain, results

TOPIC_KEY = "topic-key-0123456789"


def _instant(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _track(tracker, simulator, count):
    ids = [simulator.add_job(VAULT, JobScript(duration=0.3)) for _ in range(count)]
    for job_id in ids:
        tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT}))
    return ids


def test_every_event_reaches_the_topic_once_under_its_id_after_a_refusal(simulator, make_tracker, https_receiver,
                                                                         run_host, caplog):
    caplog.set_level(logging.DEBUG)
    topic = https_receiver
    topic.respond_with(503, retry_after=1)  # the first request is refused; its event must come again, same id
    tracker = make_tracker(JOBS_EVENTGRID_TOPIC_ENDPOINT=f"{topic.url.removesuffix('/hooks')}/api/events",
                           JOBS_EVENTGRID_KEY=TOPIC_KEY)
    _track(tracker, simulator, 3)
    assert run_host(until_idle=True, timeout=60, for_tracker=tracker).join() == 0

    assert sorted(r.answered for r in topic.requests) == [200, 200, 200, 503]  # one refusal, retried once
    for request in topic.requests:
        assert request.method == "POST" and request.path.startswith("/api/events?api-version=")
        assert request.headers["aeg-sas-key"] == TOPIC_KEY
        assert "authorization" not in request.headers
        assert request.headers["content-type"].startswith("application/cloudevents-batch+json")
        batch = request.json()
        assert isinstance(batch, list) and len(batch) == 1 and batch[0]["specversion"] == "1.0"
    refused = topic.requests[0].json()[0]["id"]
    delivered = [r.json()[0] for r in topic.delivered()]
    queued = results(tracker)
    assert len(queued) == 3
    assert sorted(e["id"] for e in delivered) == sorted(e["id"] for e in queued)  # each once, the queue's ids
    assert refused in {e["id"] for e in delivered}
    by_id = {e["id"]: e for e in queued}
    for event in delivered:  # the same event as the results queue's, field by field
        queued_event = by_id[event["id"]]
        # The client writes `time` again from its datetime: the same instant, trailing zeros of the fraction cut.
        assert _instant(event.pop("time")) == _instant(queued_event.pop("time"))
        assert event == queued_event
    assert drain(tracker._storage.queue(tracker.settings.deadletter_queue)) == []
    assert TOPIC_KEY not in caplog.text  # the SDK's request logging included


def test_a_topic_that_refuses_for_good_is_dead_lettered_with_its_reason(simulator, make_tracker, https_receiver,
                                                                       run_host):
    https_receiver.respond_with(400)
    endpoint = f"{https_receiver.url.removesuffix('/hooks')}/api/events"
    tracker = make_tracker(JOBS_EVENTGRID_TOPIC_ENDPOINT=endpoint, JOBS_EVENTGRID_KEY=TOPIC_KEY)
    _track(tracker, simulator, 1)
    assert run_host(until_idle=True, timeout=60, for_tracker=tracker).join() == 0
    assert len(https_receiver.requests) == 1  # a 400 is not retried
    records = [json.loads(t) for t in drain(tracker._storage.queue(tracker.settings.deadletter_queue))]
    assert [(r["target"], r["reason"]) for r in records] == [(describe_url(endpoint), "HTTP 400: permanent failure")]
    assert records[0]["event"]["id"] == results(tracker)[0]["id"]
    assert TOPIC_KEY not in json.dumps(records)


def test_an_unreachable_topic_is_retried_then_dead_lettered(simulator, make_tracker, https_receiver, run_host):
    with WebhookReceiver() as gone:
        port = gone.port
    tracker = make_tracker(JOBS_EVENTGRID_TOPIC_ENDPOINT=f"https://127.0.0.1:{port}/api/events",
                           JOBS_EVENTGRID_KEY=TOPIC_KEY, JOBS_DELIVERY_RETRY_HOURS="0.0006")  # about 2 s
    _track(tracker, simulator, 1)
    assert run_host(until_idle=True, timeout=60, for_tracker=tracker).join() == 0
    records = [json.loads(t) for t in drain(tracker._storage.queue(tracker.settings.deadletter_queue))]
    assert len(records) == 1 and records[0]["attempts"] >= 2
    assert records[0]["reason"].startswith("not delivered within") and "network error" in records[0]["reason"]


def test_an_unresolved_key_sends_nothing_and_is_retried_to_the_end_of_the_window(simulator, make_tracker,
                                                                                  https_receiver, run_host):
    tracker = make_tracker(JOBS_EVENTGRID_TOPIC_ENDPOINT=f"{https_receiver.url.removesuffix('/hooks')}/api/events",
                           JOBS_EVENTGRID_KEY="@Microsoft.KeyVault(VaultName=kv;SecretName=eg-key)",
                           JOBS_DELIVERY_RETRY_HOURS="0.0004")  # about 1.5 s
    health = tracker.check_health()
    assert "JOBS_EVENTGRID_KEY is an unresolved Key Vault reference" in health.checks["configuration"]
    _track(tracker, simulator, 1)
    assert run_host(until_idle=True, timeout=60, for_tracker=tracker).join() == 0
    assert https_receiver.requests == []  # never sent without its key, nor with the identity instead
    records = [json.loads(t) for t in drain(tracker._storage.queue(tracker.settings.deadletter_queue))]
    assert len(records) == 1 and records[0]["attempts"] >= 2
    assert "JOBS_EVENTGRID_KEY is an unresolved Key Vault reference" in records[0]["reason"]
