"""Size limits (issue 10, point 4): a job with a 200 KB property bag, through every path, on Azurite.

A queue message holds 64 KiB of text as the service counts it: the XML-escaped UTF-8 the SDK sends. The results
queue gets the event with ``data.job`` replaced by a pointer (``data.jobResourceId``, ``data.truncated``), a
dead-letter record embeds that event, a rejected record is cut; webhooks get the whole event, the same bytes on
every attempt, and a refused webhook is asked once.
"""

from __future__ import annotations

import json
from xml.sax.saxutils import escape

from devtools.simulator import JobScript
from devtools.webhook_receiver import WebhookReceiver
from jobs.webhooks.sender import describe_url
from tests.conftest import VAULT, drain, results

LIMIT = 64 * 1024
NOTES = ("Sicherung é & <ok> " * 12_000)[:200_000]  # escapes in JSON and in XML, two-byte UTF-8


def _service_size(text: str) -> int:
    """What the queue service counts (the SDK escapes &, < and > in the request body), computed independently."""
    return len(escape(text).encode("utf-8"))


def test_a_job_too_large_for_a_queue_message_reaches_every_path(simulator, make_tracker, receiver, run_host):
    receiver.respond_with(503)  # the webhook is asked twice: both times the same bytes
    with WebhookReceiver() as gone:
        gone.respond_with(410)
        tracker = make_tracker(JOBS_WEBHOOK_URLS=f"{receiver.url},{gone.url}")
        job_id = simulator.add_job(VAULT, JobScript(duration=0.3, property_bag={"Notes": NOTES}))
        tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT, "correlationId": "big"}))
        assert run_host(until_idle=True, timeout=30, for_tracker=tracker).join() == 0
        job = simulator.job_resource(VAULT, job_id)
        assert job["properties"]["extendedInfo"]["propertyBag"]["Notes"] == NOTES

        # Webhook: the whole event, identical on the retry.
        bodies = [r.body for r in receiver.requests]
        assert [r.answered for r in receiver.requests] == [503, 200]
        assert bodies[0] == bodies[1]
        whole = json.loads(bodies[0])
        assert whole["data"]["job"] == job and whole["data"]["propertyBag"]["Notes"] == NOTES
        assert "truncated" not in whole["data"]
        assert all(r.verified for r in receiver.requests)

        # Results queue: the event with a pointer instead of the job.
        results_queue = tracker._storage.queue(tracker.settings.results_queue or "")
        [text] = drain(results_queue)
        assert _service_size(text) <= LIMIT
        event = json.loads(text)
        assert event["id"] == whole["id"] and event["type"] == whole["type"]
        assert event["data"]["truncated"] is True
        assert event["data"]["job"] is None
        assert event["data"]["jobResourceId"] == whole["data"]["jobResourceId"]
        assert event["data"]["jobId"] == job_id and event["data"]["correlationId"] == "big"
        assert event["data"]["status"] == "Completed"

        # Dead-lettered webhook delivery: asked once (410), its record carries the pointer event.
        assert [r.answered for r in gone.requests] == [410]
        deadletters = drain(tracker._storage.queue(tracker.settings.deadletter_queue))
        assert len(deadletters) == 1
        assert _service_size(deadletters[0]) <= LIMIT
        record = json.loads(deadletters[0])
        assert "410" in record["reason"] and record["target"] == describe_url(gone.url)
        assert record["event"]["id"] == whole["id"]
        assert record["event"]["data"]["truncated"] is True and record["event"]["data"]["job"] is None
        assert record["event"]["data"]["jobResourceId"] == whole["data"]["jobResourceId"]
        assert results(tracker) == []  # nothing else on the results queue

    # A rejected intake message over the limit: its record is cut, and arrives.
    original = json.dumps({"jobId": "not-a-guid", "vaultId": VAULT, "notes": NOTES})
    tracker.accept_message(original)
    [rejected_text] = drain(tracker._storage.queue(tracker.settings.rejected_queue))
    assert _service_size(rejected_text) <= LIMIT
    rejected = json.loads(rejected_text)
    assert rejected["truncated"] is True
    assert original.startswith(rejected["message"]) and len(rejected["message"]) > 16 * 1024
    assert rejected["reason"]
