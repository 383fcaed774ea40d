"""One bad job never holds up its vault: a failure of the tracker's own (a Table write Azure would refuse) stays
with that job, which backs off on its own and, after the grace period, ends as a result that says so.

The bad job is real: its JobResource is larger than a Table Storage entity may be (1 MiB), which Azure refuses with
413 and the store now refuses too before it sends (Azurite has no such limit).
"""

from __future__ import annotations

import json
import logging

from devtools.simulator import JobScript
from tests.conftest import VAULT, ManualClock, poll_once, results, tracker_with_clock

GRACE = 60
# Job ids that sort first in the running index: the bad job is the first of its poll message.
BAD = "00000000-0000-4000-8000-000000000001"
GOOD = ["00000000-0000-4000-8000-000000000002", "00000000-0000-4000-8000-000000000003"]


def test_a_job_the_store_refuses_backs_off_alone_while_its_vault_goes_on(
    simulator, env: dict[str, str], clock: ManualClock, caplog
) -> None:
    tracker = tracker_with_clock(env, clock, JOBS_NOT_FOUND_GRACE_SECONDS=str(GRACE), JOBS_LIST_THRESHOLD="2")
    simulator.add_job(VAULT, JobScript(duration=0, job_id=BAD, entity_friendly_name="vm-" + "x" * 600_000))
    for job_id in GOOD:
        simulator.add_job(VAULT, JobScript(duration=0, job_id=job_id, final_status="Failed"))
    tracking = {}
    for job_id in [BAD, *GOOD]:
        [tracking[job_id]] = tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT})).tracking_ids
    caplog.set_level(logging.WARNING, logger="jobs")

    clock.advance(1)
    assert poll_once(tracker) == 1  # one message for the vault, the bad job first in it
    events = {e["data"]["jobId"]: e for e in results(tracker)}
    assert set(events) == set(GOOD)  # the others were polled, ended and published
    bad = tracker._store.get(tracking[BAD])
    assert bad is not None and not bad.ended
    assert bad.last_error is not None and bad.last_error["code"] == "EntityTooLarge"
    assert bad.failing_since is not None
    assert any(tracking[BAD] in r.getMessage() and "EntityTooLarge" in r.getMessage() for r in caplog.records)
    [entry] = tracker._store.list_index()  # only the bad job still runs, with a schedule of its own
    assert entry.tracking_id == tracking[BAD] and entry.next_poll_at > clock.now

    clock.advance(GRACE / 2)
    poll_once(tracker)
    assert results(tracker) == []  # still within the grace period: no verdict yet

    clock.advance(GRACE)
    poll_once(tracker)
    [event] = results(tracker)
    assert event["type"] == "BackupJob.TrackingFailed"
    assert event["data"]["jobId"] == BAD
    assert event["data"]["errors"][0]["code"] == "TrackingFailed"
    assert "EntityTooLarge" in event["data"]["errors"][0]["message"]
    assert event["data"]["job"] is None
    assert tracker._store.list_index() == []
