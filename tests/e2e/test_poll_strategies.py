"""A vault with several running jobs is covered by one BackupJobs_List a round instead of a GET per job."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from devtools.simulator import JobScript
from jobs.flows.detector_health import WINDOW, assess
from jobs.storage.detector_log import TableDetectorLog
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
    # the product's defaults: vault rounds, Resource Graph (the simulator's, without lag), small rounds in the timer,
    # with Resource Graph already measured fresh (the deployment's steady state; a 5 s period keeps the lags the
    # run itself measures well within its fresh bound of two periods)
    tracker = make_tracker(JOBS_RESOURCE_GRAPH="on", JOBS_INLINE_POLL_MAX="100", JOBS_POLL_SECONDS="5")
    log = TableDetectorLog(tracker._storage.table(tracker.settings.table))
    now = datetime.now(UTC)
    for n in range(WINDOW):
        log.add_sample(f"seed-{n}", "detector", 0.5, now)
    log.put_assessment(assess(log.list_samples(WINDOW), None, now, 2 * tracker.settings.poll_seconds).to_entity())
    stats = _run(simulator, tracker, run_host, 10)
    assert stats["by_kind"]["resource_graph"] > 0
    assert sum(stats["job_gets"].values()) == 10  # one JobDetails_Get per job: its result


def test_the_default_before_resource_graph_is_measured_lists_and_still_publishes_every_job(
    simulator, make_tracker, run_host
):
    # unproven: every vault is listed every round; a job missing from a list (too new for its window) gets a GET
    tracker = make_tracker(JOBS_RESOURCE_GRAPH="on", JOBS_INLINE_POLL_MAX="100")
    stats = _run(simulator, tracker, run_host, 10)
    assert stats["by_kind"]["job_list"] > 0 and stats["by_kind"]["resource_graph"] > 0
    assert all(1 <= gets <= 2 for gets in stats["job_gets"].values()), stats["job_gets"]
