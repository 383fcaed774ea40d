"""A vault with several running jobs is covered by one BackupJobs_List a round instead of a GET per job."""

from __future__ import annotations

import json

from devtools.simulator import JobScript
from tests.conftest import VAULT, results


def _run(simulator, tracker, run_host, count: int) -> dict:
    jobs = [simulator.add_job(VAULT, JobScript(duration=4)) for _ in range(count)]
    for job_id in jobs:
        tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT}))
    simulator.reset_stats()
    assert run_host(until_idle=True, timeout=60, for_tracker=tracker).join() == 0
    events = results(tracker)
    assert sorted(e["data"]["jobId"] for e in events) == sorted(jobs)
    for event in events:  # every result still carries the details of a JobDetails_Get
        assert "extendedInfo" in event["data"]["job"]["properties"]
    return simulator.stats()


def test_list_strategy_reads_less_than_a_get_per_job(simulator, make_tracker, run_host):
    listing = _run(simulator, make_tracker(JOBS_POLL_STRATEGY="job", JOBS_LIST_THRESHOLD="3"), run_host, 10)
    per_job = _run(simulator, make_tracker(JOBS_POLL_STRATEGY="job", JOBS_LIST_THRESHOLD="1000"), run_host, 10)
    assert listing["by_kind"]["job_list"] > 0
    assert per_job["by_kind"].get("job_list", 0) == 0
    assert listing["arm_requests"] < per_job["arm_requests"], (listing["arm_requests"], per_job["arm_requests"])


def test_the_default_with_resource_graph_publishes_every_job_through_the_local_host(simulator, make_tracker, run_host):
    # the product's defaults: vault rounds, Resource Graph (the simulator's, without lag), small rounds in the timer
    tracker = make_tracker(JOBS_RESOURCE_GRAPH="on", JOBS_INLINE_POLL_MAX="100")
    stats = _run(simulator, tracker, run_host, 10)
    assert stats["by_kind"]["resource_graph"] > 0
    assert sum(stats["job_gets"].values()) == 10  # one JobDetails_Get per job: its result
