"""How long the messages the tracker writes live (issue 10, point 3), read back from Azurite with the SDK.

Results, dead-letter and rejected messages are for someone else to read: they never expire (``time_to_live=-1``;
Azurite, like Azure, then reports an expiry of 9999-12-31 23:59:59 UTC), so a consumer paused for a week loses
nothing. A delivery task is internal work: its life is finite but longer than the retry window.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from azure.storage.queue import QueueClient

from devtools.simulator import JobScript
from jobs.tracker import Tracker
from tests.conftest import VAULT, drain, wait_until

NEVER = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)  # what the service reports for time_to_live=-1
WINDOW_HOURS = 168  # the longest allowed (7 days): as long as a queue message's default life


def _expiries(queue: QueueClient) -> list[datetime]:
    return [message.expires_on for message in queue.peek_messages(max_messages=32)]


def _poll_until_published(tracker: Tracker) -> None:
    """The poll round and the poll worker by hand (no host: nothing reads the deliver queue)."""
    poll = tracker._storage.queue(tracker.settings.poll_queue)
    results = tracker._storage.queue(tracker.settings.results_queue or "")

    def published() -> bool:
        tracker.run_poll_round()
        for text in drain(poll):
            tracker.handle_poll_message(text)
        return bool(_expiries(results))

    assert wait_until(published, 20, interval=0.2)


def test_output_messages_never_expire_and_delivery_tasks_outlive_the_retry_window(
    simulator, make_tracker, receiver
):
    tracker = make_tracker(JOBS_DELIVERY_RETRY_HOURS=str(WINDOW_HOURS))
    settings = tracker.settings
    window = timedelta(hours=WINDOW_HOURS)
    job_id = simulator.add_job(VAULT, JobScript(duration=0))
    started = datetime.now(UTC)
    tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT}))
    _poll_until_published(tracker)

    assert _expiries(tracker._storage.queue(settings.results_queue or "")) == [NEVER]

    deliver = tracker._storage.queue(settings.deliver_queue)
    [first] = _expiries(deliver)
    assert started + window < first < NEVER  # finite, and outlives the retry window

    # A retry is a new delivery task: the same rule.
    receiver.respond_with(503)
    [task] = drain(deliver)
    assert tracker.handle_delivery_message(task) == "retry"
    assert wait_until(lambda: bool(_expiries(deliver)), 10)
    [retry] = _expiries(deliver)
    assert datetime.now(UTC) + window < retry < NEVER

    # The end of the road: a dead-letter record, kept until someone reads it.
    receiver.respond_with(410)
    [task] = drain(deliver)
    assert tracker.handle_delivery_message(task) == "deadletter"
    assert _expiries(tracker._storage.queue(settings.deadletter_queue)) == [NEVER]

    tracker.accept_message("not a message the tracker can use")
    assert _expiries(tracker._storage.queue(settings.rejected_queue)) == [NEVER]
