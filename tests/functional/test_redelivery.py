"""A redelivery is the same event, byte for byte, across storage: another instance (a fresh ``Tracker`` in another
process, with another hash seed, built from the same settings) rebuilds an ended job's event for a subscriber from
Table Storage alone, and gets exactly the bytes the first tracker put on the results queue. That holds for a
subscriber that was there when the job ended and for one added after the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from devtools.simulator import JobScript
from tests.conftest import ROOT, VAULT, drain, poll_once

# Another process, another Tracker on the same storage: the event of (tracking id, subscriber key) as it builds it.
REBUILD = (
    "import os, sys\n"
    "from jobs.config import Settings\n"
    "from jobs.flows.result_events import event_bytes\n"
    "from jobs.tracker import Tracker\n"
    "tracking_id, key = sys.argv[1:3]\n"
    "store = Tracker(Settings.from_env(os.environ))._store\n"
    "sys.stdout.buffer.write(event_bytes(store.get(tracking_id), store.get_subscriber(tracking_id, key)))\n"
)


def _rebuilt_elsewhere(env: dict[str, str], tracking_id: str, key: str) -> bytes:
    return subprocess.run(
        [sys.executable, "-c", REBUILD, tracking_id, key], cwd=ROOT, capture_output=True, check=True, timeout=60,
        env={**os.environ, **env, "PYTHONHASHSEED": "4242"},
    ).stdout


def _published(tracker) -> dict[str, bytes]:
    """What the results queue holds, by correlationId, as the bytes the tracker put there."""
    assert tracker.settings.results_queue
    texts = drain(tracker._storage.queue(tracker.settings.results_queue))
    return {json.loads(text)["data"]["correlationId"]: text.encode("utf-8") for text in texts}


def _key(tracker, tracking_id: str, correlation_id: str) -> str:
    [record] = [r for r in tracker._store.list_subscribers(tracking_id)
                if r.subscriber.correlation_id == correlation_id]
    return record.key


def test_an_ended_jobs_event_rebuilt_by_a_fresh_tracker_in_another_process_is_the_same_bytes(
    simulator, tracker, env: dict[str, str]
) -> None:
    job_id = simulator.add_job(VAULT, JobScript(duration=0, final_status="Failed"))
    message = {"jobId": job_id, "vaultId": VAULT, "correlationId": "before", "context": {"b": 1, "a": [2, 1]}}
    [tracking_id] = tracker.accept_message(json.dumps(message)).tracking_ids
    assert poll_once(tracker) == 1
    first = _published(tracker)
    assert set(first) == {"before"}
    assert json.loads(first["before"])["type"] == "BackupJob.Failed"
    before = _key(tracker, tracking_id, "before")
    assert _rebuilt_elsewhere(env, tracking_id, before) == first["before"]

    # A subscriber added after the end gets its own event at once, and it too is the same bytes elsewhere.
    late = {"jobResourceId": f"{VAULT}/backupJobs/{job_id}", "correlationId": "after"}
    assert tracker.accept_message(json.dumps(late)).tracking_ids == [tracking_id]
    second = _published(tracker)
    assert set(second) == {"after"}
    after = _key(tracker, tracking_id, "after")
    assert json.loads(second["after"])["id"] != json.loads(first["before"])["id"]
    assert _rebuilt_elsewhere(env, tracking_id, after) == second["after"]
    assert _rebuilt_elsewhere(env, tracking_id, before) == first["before"]  # the first one did not move either
