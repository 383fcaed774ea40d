"""Deliveries at the edges of what the queue and the retry window allow (issue 20, point 5), on Azurite with a real
webhook receiver: a ``Retry-After`` that falls after ``JOBS_DELIVERY_RETRY_HOURS`` closes is a dead-letter at once,
with that reason; every retry delay is capped to the 7 days Azure Queue storage (and Azurite) accept."""

from __future__ import annotations

import dataclasses
import json

from devtools.simulator import JobScript
from jobs.config import Settings
from jobs.tracker import Tracker
from tests.conftest import VAULT, drain, poll_once

DAY = 24 * 3600


def _ended_job_deliveries(tracker: Tracker, simulator) -> list[str]:
    """A job that ended and was published: the delivery tasks on the deliver queue, taken off it."""
    job_id = simulator.add_job(VAULT, JobScript(duration=0))
    tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT}))
    assert poll_once(tracker) == 1
    return drain(tracker._storage.queue(tracker.settings.deliver_queue))


def _deadletters(tracker: Tracker) -> list[dict]:
    return [json.loads(text) for text in drain(tracker._storage.queue(tracker.settings.deadletter_queue))]


def test_point5_a_retry_after_beyond_the_retry_window_is_dead_lettered_at_once(simulator, tracker, receiver):
    assert tracker.settings.delivery_retry_hours == 24
    receiver.respond_with(503, retry_after=3 * DAY)  # "come back in three days": after the window closes
    [task] = _ended_job_deliveries(tracker, simulator)
    assert tracker.handle_delivery_message(task) == "deadletter"
    assert len(receiver.requests) == 1
    [record] = _deadletters(tracker)
    assert "Retry-After" in record["reason"] and "JOBS_DELIVERY_RETRY_HOURS" in record["reason"], record["reason"]
    assert "HTTP 503" in record["reason"]
    assert record["event"]["data"]["jobId"]
    deliver = tracker._storage.queue(tracker.settings.deliver_queue)
    assert deliver.get_queue_properties().approximate_message_count == 0  # no retry left waiting


def test_point5_every_delay_is_capped_to_the_seven_days_the_queue_accepts(simulator, env, receiver):
    # A window longer than 7 days (the settings object as validated, with a longer window put in: whatever upper
    # bound JOBS_DELIVERY_RETRY_HOURS has, the delay must fit the queue) and a receiver asking for 8 days.
    settings = dataclasses.replace(Settings.from_env(env), delivery_retry_hours=10 * 24)
    tracker = Tracker(settings)
    tracker.setup()
    receiver.respond_with(503, retry_after=8 * DAY)
    [task] = _ended_job_deliveries(tracker, simulator)
    assert tracker.handle_delivery_message(task) == "retry"  # Azurite took the message: 7 days is allowed
    deliver = tracker._storage.queue(tracker.settings.deliver_queue)
    assert deliver.get_queue_properties().approximate_message_count == 1
    assert drain(deliver) == []  # ... and it is invisible for now
    assert _deadletters(tracker) == []
    assert len(receiver.requests) == 1
