"""The detector's lag, measured and acted on (docs/fidelity.md, "Resource Graph's freshness"): every ended job the
detector covers is a sample of who told the tracker first and how long after Azure's endTime; the samples are
shared through the table; a fresh detector lets the vaults rest, a late or unproven one has them listed every round.
Rounds driven by hand on a clock the test moves, against the simulator (Resource Graph with a lag the test sets)
and Azurite."""

from __future__ import annotations

import json
from datetime import timedelta

from devtools.simulator import JobScript
from jobs.domain.references import VaultRef
from jobs.domain.tracking import vault_grid_after
from jobs.flows.detector_health import MIN_SAMPLES
from jobs.storage.detector_log import TableDetectorLog
from tests.conftest import VAULT, ManualClock, poll_once, results, tracker_with_clock

# A 30 s period: the detector's lag as measured includes the wait for the round that asks (and the test's clock runs
# a few seconds ahead of the simulator's), so its fresh bound (two periods) must be far from both.
DETECTOR = {"JOBS_RESOURCE_GRAPH": "on", "JOBS_POLL_SECONDS": "30", "JOBS_MAX_POLL_INTERVAL_SECONDS": "300",
            "JOBS_INLINE_POLL_MAX": "100"}


def _samples(tracker) -> list:
    return TableDetectorLog(tracker._storage.table(tracker.settings.table)).list_samples(100)


def _end_jobs(simulator, tracker, clock: ManualClock, count: int) -> list[str]:
    """``count`` jobs that end at once, tracked and followed round by round until each has its result."""
    job_ids = [simulator.add_job(VAULT, JobScript(duration=0, final_status="Completed")) for _ in range(count)]
    for job_id in job_ids:
        tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT}))
    seen: list[dict] = []
    for _ in range(12):  # a deadline in rounds: at most the 300 s fallback
        clock.advance(30)
        poll_once(tracker)
        seen += results(tracker)
        if len(seen) >= count:
            break
    assert sorted(e["data"]["jobId"] for e in seen) == sorted(job_ids)
    return job_ids


def test_a_fresh_detector_is_measured_shared_and_lets_the_vaults_rest(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    tracker = tracker_with_clock(env, clock, **DETECTOR)
    simulator.resource_graph.lag_seconds = 0
    _end_jobs(simulator, tracker, clock, MIN_SAMPLES)

    samples = _samples(tracker)
    assert len(samples) == MIN_SAMPLES and {s.source for s in samples} == {"detector"}
    clock.advance(30)
    poll_once(tracker)  # the round assesses what every instance recorded
    assert tracker.check_health().checks["detector"].startswith("fresh")

    other = tracker_with_clock(env, clock, **DETECTOR)  # another instance: it reads the deployment's assessment
    assert other.heartbeat().detector.startswith("fresh")
    running = simulator.add_job(VAULT, JobScript(duration=3600))
    [tracking_id] = other.accept_message(json.dumps({"jobId": running, "vaultId": VAULT})).tracking_ids
    entry = other._store.get_index_entry(tracking_id)
    assert entry.next_poll_at == vault_grid_after(VaultRef.from_resource_id(VAULT).key, clock.now, 30, 300)


def test_a_late_detector_has_the_vaults_listed_every_round(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    tracker = tracker_with_clock(env, clock, **DETECTOR)
    simulator.resource_graph.lag_seconds = 1e9  # it never shows an end: the lists find them
    job_ids = _end_jobs(simulator, tracker, clock, MIN_SAMPLES)

    log = TableDetectorLog(tracker._storage.table(tracker.settings.table))
    assert sorted(p.tracking_id[:36] for p in log.list_pending()) == sorted(j.lower() for j in job_ids)
    clock.advance(60)  # the detector is asked about them again, and they are older than its fresh bound
    poll_once(tracker)
    assert tracker.check_health().checks["detector"].startswith("late")

    running = simulator.add_job(VAULT, JobScript(duration=3600))
    [tracking_id] = tracker.accept_message(json.dumps({"jobId": running, "vaultId": VAULT})).tracking_ids
    simulator.reset_stats()
    for _ in range(3):
        clock.advance(30)
        poll_once(tracker)
    assert simulator.stats()["by_kind"]["job_list"] == 3  # listed every round
    item = tracker._store.get(tracking_id)
    assert item.status == "InProgress"


def test_an_unproven_detector_lists_every_round_and_each_end_says_who_told_first(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    tracker = tracker_with_clock(env, clock, **DETECTOR)
    simulator.resource_graph.lag_seconds = 0
    [job_id] = _end_jobs(simulator, tracker, clock, 1)
    assert tracker.check_health().checks["detector"].startswith("unproven")
    details = tracker.find_item(job_id)
    assert details is not None and details.item.learned_from == "detector"
    assert details.item.learned_lag_seconds is not None and details.item.learned_lag_seconds >= 0


def test_a_refusing_detector_is_unavailable_and_the_vaults_are_listed_every_round(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    tracker = tracker_with_clock(env, clock, **DETECTOR, JOBS_RESOURCE_GRAPH_API_VERSION="2001-01-01")
    running = simulator.add_job(VAULT, JobScript(duration=3600))
    tracker.accept_message(json.dumps({"jobId": running, "vaultId": VAULT}))
    simulator.reset_stats()
    for _ in range(3):
        clock.advance(30)
        poll_once(tracker)
    assert tracker.check_health().checks["detector"].startswith("unavailable; Resource Graph refused")
    assert simulator.stats()["by_kind"]["job_list"] == 3


def test_retry_after_is_within_a_poll_period_and_a_running_jobs_status_is_azures(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    """Logic Apps' HTTP action polls the status URL when Retry-After says: never later than the next round that
    may learn the end, whatever the vault's fallback interval."""
    tracker = tracker_with_clock(env, clock, **DETECTOR)
    running = simulator.add_job(VAULT, JobScript(duration=3600))
    tracked = tracker.track(json.dumps({"jobId": running, "vaultId": VAULT}))
    [grant] = tracked.grants
    assert 1 <= tracked.retry_after <= 30
    clock.advance(30)
    poll_once(tracker)  # unproven: the vault is listed at the next round
    view = tracker.get_status(grant.tracking_id, grant.token)
    assert view.running and view.status == "InProgress"
    assert 1 <= view.retry_after <= 30

    log = TableDetectorLog(tracker._storage.table(tracker.settings.table))
    for n in range(40):  # now measured fresh: the vault rests up to 300 s, the detector asks every round
        log.add_sample(f"seed-{n}", "detector", 3.0, clock.now)
    clock.advance(30)
    poll_once(tracker)
    assert tracker.check_health().checks["detector"].startswith("fresh")
    # just past a point of the vault's 300 s grid (and past the job's next poll): the next point is 299 s away
    clock.now = vault_grid_after(VaultRef.from_resource_id(VAULT).key, clock.now + timedelta(seconds=30), 30,
                                 300) + timedelta(seconds=1)
    poll_once(tracker)
    entry = tracker._store.get_index_entry(grant.tracking_id)
    assert (entry.next_poll_at - clock.now).total_seconds() > 30  # resting on the long interval
    assert 1 <= tracker.get_status(grant.tracking_id, grant.token).retry_after <= 30


def test_a_detector_a_period_late_is_measured_on_the_ends_the_lists_found_first_and_trusted(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    """While unproven the lists find every end first; the detector is still asked about those ends until it shows
    them, so its own lag (here about a period) is measured, and within two periods it is trusted."""
    tracker = tracker_with_clock(env, clock, **DETECTOR)
    start = clock.now
    simulator.clock = lambda: (clock.now - start).total_seconds()  # Azure's time runs with the test's clock
    simulator.wall_clock = lambda: clock.now
    simulator.resource_graph.lag_seconds = 35
    _end_jobs(simulator, tracker, clock, MIN_SAMPLES)
    for _ in range(3):  # the detector shows each end about 35 s after it: the rounds that ask see it
        clock.advance(30)
        poll_once(tracker)
    samples = _samples(tracker)
    assert len(samples) == MIN_SAMPLES and {s.source for s in samples} == {"shown"}
    assert all(35 <= s.lag_seconds <= 90 for s in samples)
    assert TableDetectorLog(tracker._storage.table(tracker.settings.table)).list_pending() == []
    assert tracker.check_health().checks["detector"].startswith("fresh")
