"""Vault rounds and Resource Graph, one round at a time (docs/reference.md, "How jobs are polled").

What a user of the tracker can check on Azure's side: how many list calls a vault costs per round, that a list is
followed page by page, that an ended job is fetched once, that Resource Graph hastens a result without a list, and
that a job neither a list nor Resource Graph ever shows is still found. The rounds are driven by hand on a clock
the test moves, against the simulator (which serves Resource Graph with a lag the test sets) and Azurite.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import requests

from devtools.simulator import JobScript
from jobs.arm import ArmClient, StaticToken
from jobs.arm.resource_graph import ResourceGraph
from jobs.domain.references import JobRef, VaultRef
from jobs.domain.tracked_item import IndexEntry
from jobs.domain.tracking import vault_grid_after
from jobs.flows.detector_health import FRESH_LAG_PERIODS, WINDOW, assess
from jobs.providers.graph import GraphDetector
from jobs.providers.recovery_services import ended_jobs_query
from jobs.storage.detector_log import TableDetectorLog
from tests.conftest import VAULT, ManualClock, drain, poll_once, results, tracker_with_clock


def _detector_measured(tracker, *, told_first: int, others: int = 0) -> None:
    """The table as a deployment leaves it once the detector was measured on ``told_first + others`` ended jobs:
    the samples, and the assessment the last round wrote (every instance reads it)."""
    log = TableDetectorLog(tracker._storage.table(tracker.settings.table))
    now = datetime.now(UTC)
    for n in range(told_first + others):
        log.add_sample(f"seed-{n}", "detector" if n < told_first else "never", 1.0 if n < told_first else 3600.0,
                       now - timedelta(seconds=n))
    fresh_bound = FRESH_LAG_PERIODS * tracker.settings.poll_seconds
    log.put_assessment(assess(log.list_samples(WINDOW), None, now, fresh_bound).to_entity())


def _track(tracker, job_ids: list[str]) -> None:
    for job_id in job_ids:
        tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT}))


def test_a_vault_with_60_running_jobs_costs_one_list_call_per_round_its_pages_followed(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    tracker = tracker_with_clock(env, clock)  # the default strategy: vault rounds
    simulator.page_size = 25  # 60 running jobs (more than the 50 of a job-strategy message) come on three pages
    job_ids = [simulator.add_job(VAULT, JobScript(duration=3600)) for _ in range(60)]
    _track(tracker, job_ids)

    for _ in range(2):
        simulator.reset_stats()
        clock.advance(tracker.settings.poll_seconds)
        assert poll_once(tracker) == 1  # the vault's 60 due jobs in one message
        stats = simulator.stats()
        assert stats["by_kind"]["job_list"] == stats["list_pages"] == 3  # one list, its three pages
        assert stats["job_gets"] == {}  # every job answered for by the list
    items = [tracker._store.get(entry.tracking_id) for entry in tracker._store.list_index()]
    assert len(items) == 60 and {item.status for item in items if item} == {"InProgress"}


def test_a_job_that_ended_is_fetched_once_and_published_once(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    tracker = tracker_with_clock(env, clock)
    running = [simulator.add_job(VAULT, JobScript(duration=3600)) for _ in range(3)]
    ended = simulator.add_job(VAULT, JobScript(duration=0, final_status="CompletedWithWarnings"))
    _track(tracker, [*running, ended])
    simulator.reset_stats()

    for _ in range(3):
        clock.advance(tracker.settings.poll_seconds)
        poll_once(tracker)

    stats = simulator.stats()
    assert stats["job_gets"] == {ended: 1}  # the one job missing from the running list, once
    assert stats["by_kind"]["job_list"] == 3  # one list a round for the vault
    [event] = results(tracker)
    assert event["data"]["jobId"] == ended and event["type"] == "BackupJob.CompletedWithWarnings"
    assert "extendedInfo" in event["data"]["job"]["properties"]  # from JobDetails_Get, not the list


def test_resource_graph_shows_an_ended_job_which_is_fetched_in_the_round_without_a_list(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    tracker = tracker_with_clock(env, clock, JOBS_RESOURCE_GRAPH="on", JOBS_INLINE_POLL_MAX="100",
                                 JOBS_MAX_POLL_INTERVAL_SECONDS="3600")
    _detector_measured(tracker, told_first=40)  # fresh: the vaults rest on the long interval
    running = simulator.add_job(VAULT, JobScript(duration=3600))
    ended = simulator.add_job(VAULT, JobScript(duration=0, final_status="Failed"))
    _track(tracker, [running, ended])
    simulator.reset_stats()

    clock.advance(tracker.settings.poll_seconds)
    report = tracker.run_poll_round()

    stats = simulator.stats()
    assert report.detected == 1 and report.inline == 1 and report.messages == 0  # polled in the round itself
    assert drain(tracker._storage.queue(tracker.settings.poll_queue)) == []
    assert stats["by_kind"]["resource_graph"] == 1  # one query for both jobs
    assert stats["by_kind"]["job_list"] == 0 and stats["job_gets"] == {ended: 1}
    [event] = results(tracker)
    assert event["data"]["jobId"] == ended and event["type"] == "BackupJob.Failed"
    # the running job stays tracked, on its vault's schedule (an hour away), not read at all
    assert [e.tracking_id[:36].lower() for e in tracker._store.list_index()] == [running.lower()]


def test_a_job_missing_from_every_list_and_from_resource_graph_is_still_found(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    tracker = tracker_with_clock(env, clock, JOBS_RESOURCE_GRAPH="on", JOBS_MAX_POLL_INTERVAL_SECONDS="60")
    _detector_measured(tracker, told_first=40)  # measured fresh until now
    simulator.resource_graph.lag_seconds = 1e9  # Resource Graph shows none of these jobs
    job_id = simulator.add_job(VAULT, JobScript(duration=0))  # ended before any list could show it running
    # just past a point of the vault's 60 s grid, so that the next one is a minute away whatever the time of day
    clock.now = vault_grid_after(VaultRef.from_resource_id(VAULT).key, clock.now, tracker.settings.poll_seconds,
                                 60) + timedelta(seconds=1)
    _track(tracker, [job_id])

    clock.advance(1)
    poll_once(tracker)
    assert results(tracker) == []  # not shown by Resource Graph, not due on its vault's schedule yet

    clock.advance(60)  # the vault's schedule (JOBS_MAX_POLL_INTERVAL_SECONDS) comes round
    simulator.reset_stats()
    poll_once(tracker)

    [event] = results(tracker)
    assert event["data"]["jobId"] == job_id and event["type"] == "BackupJob.Completed"
    stats = simulator.stats()
    assert stats["by_kind"]["job_list"] == 1 and stats["job_gets"] == {job_id: 1}
    assert stats["by_kind"]["resource_graph"] == 1  # asked, and it showed nothing


def test_resource_graph_refusing_leaves_the_vaults_schedule_to_find_the_job(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    tracker = tracker_with_clock(env, clock, JOBS_RESOURCE_GRAPH="on", JOBS_RESOURCE_GRAPH_API_VERSION="2001-01-01",
                                 JOBS_MAX_POLL_INTERVAL_SECONDS="60")
    job_id = simulator.add_job(VAULT, JobScript(duration=0))
    _track(tracker, [job_id])

    clock.advance(61)
    poll_once(tracker)  # Resource Graph answers 400 (an api-version it does not know): the round goes on

    [event] = results(tracker)
    assert event["data"]["jobId"] == job_id
    assert simulator.stats()["by_status"].get(400) == 1  # the refused query, asked once


def test_resource_graph_pages_are_followed_and_only_ended_jobs_come_back(simulator) -> None:
    simulator.resource_graph.page_size = 1  # one row per page: three ended jobs take three pages
    ended = [simulator.add_job(VAULT, JobScript(duration=0, final_status=status))
             for status in ("Completed", "Failed", "Cancelled")]
    running = simulator.add_job(VAULT, JobScript(duration=3600))
    vault = VaultRef.from_resource_id(VAULT)
    entries = [IndexEntry(JobRef.create(vault, job_id).key, "job", VAULT, vault.subscription_id,
                          datetime.now(UTC)) for job_id in [*ended, running]]
    graph = GraphDetector(ResourceGraph(ArmClient(simulator.base_url, StaticToken("sim-token"))))

    found = graph.list_ended(entries)

    assert found == {entry.tracking_id for entry in entries[:3]}
    assert simulator.stats()["by_kind"]["resource_graph"] == graph.queries == 3


def test_the_simulated_resource_graph_refuses_a_query_other_than_the_trackers(simulator) -> None:
    url = f"{simulator.base_url}/providers/Microsoft.ResourceGraph/resources?api-version=2024-04-01"
    headers = {"Authorization": "Bearer sim-token"}
    other = requests.post(url, json={"subscriptions": ["x"], "query": "Resources | project id"}, headers=headers,
                          timeout=10)
    ours = requests.post(url, json={"subscriptions": ["x"], "query": ended_jobs_query([])}, headers=headers,
                         timeout=10)
    assert other.status_code == 400 and other.json()["error"]["code"] == "BadRequest"
    assert ours.status_code == 200 and ours.json()["data"] == []
    assert int(ours.headers["x-ms-user-quota-remaining"]) < 15 and ours.headers["x-ms-user-quota-resets-after"]
