"""End hints on Azurite and the simulator (docs/reference.md, "How jobs are polled"): without a fresh detector, a job
whose entity's earlier jobs took long rests on its vault's long grid instead of having its vault listed every round;
one that ends sooner than that is still found within the long grid; each completed job's duration is kept in the
table for every instance."""

from __future__ import annotations

import json
import time

from devtools.simulator import JobScript
from jobs.flows.end_hints import history_key
from jobs.providers.recovery_services import RecoveryServices
from jobs.storage.duration_log import TableDurationLog
from tests.conftest import VAULT, ManualClock, poll_once, results, tracker_with_clock, wait_until

# The deployment's default periods (the test environment polls every second): the long grid is ten rounds.
NO_DETECTOR = {"JOBS_RESOURCE_GRAPH": "off", "JOBS_POLL_SECONDS": "30", "JOBS_MAX_POLL_INTERVAL_SECONDS": "300"}


def _history(tracker, entity: str, seconds: list[float]) -> None:
    """The table as earlier jobs of ``entity`` (VM backups of ``VAULT``) left it."""
    log = TableDurationLog(tracker._storage.table(tracker.settings.table))
    key = history_key(RecoveryServices.parse_vault_id(VAULT).key,
                      {"entityFriendlyName": entity, "jobType": "AzureIaaSVMJob", "operation": "Backup"})
    for value in seconds:
        log.add_duration(key or "", value)


def _lists_over(simulator, tracker, clock: ManualClock, rounds: int) -> int:
    simulator.reset_stats()
    for _ in range(rounds):
        clock.advance(tracker.settings.poll_seconds)
        poll_once(tracker)
    return simulator.stats()["by_kind"].get("job_list", 0)


def test_a_job_whose_entity_took_long_before_lets_its_vault_rest(simulator, env: dict[str, str],
                                                                 clock: ManualClock) -> None:
    tracker = tracker_with_clock(env, clock, **NO_DETECTOR)
    _history(tracker, "vm-slow", [3600.0, 4000.0])
    job_id = simulator.add_job(VAULT, JobScript(duration=7200, entity_friendly_name="vm-slow"))
    tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT}))
    _lists_over(simulator, tracker, clock, 2)  # its first sighting

    lists = _lists_over(simulator, tracker, clock, 20)  # ten minutes: two points of the 300 s grid
    assert lists <= 2
    item = tracker._store.get(tracker._store.list_index()[0].tracking_id)
    assert item is not None and item.expected_end_at is not None


def test_with_end_hints_off_the_same_job_has_its_vault_listed_every_round(simulator, env: dict[str, str],
                                                                          clock: ManualClock) -> None:
    tracker = tracker_with_clock(env, clock, **NO_DETECTOR, JOBS_END_HINTS="off")
    _history(tracker, "vm-slow", [3600.0, 4000.0])
    job_id = simulator.add_job(VAULT, JobScript(duration=7200, entity_friendly_name="vm-slow"))
    tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT}))
    _lists_over(simulator, tracker, clock, 2)
    assert _lists_over(simulator, tracker, clock, 6) == 6


def test_a_job_that_ends_before_its_hint_is_found_within_the_long_grid(simulator, env: dict[str, str],
                                                                       clock: ManualClock) -> None:
    tracker = tracker_with_clock(env, clock, **NO_DETECTOR)
    _history(tracker, "vm-slow", [3600.0])
    job_id = simulator.add_job(VAULT, JobScript(duration=7200, entity_friendly_name="vm-slow", cancelling_for=0))
    tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT}))
    _lists_over(simulator, tracker, clock, 2)
    assert simulator.cancel_job(VAULT, job_id)  # ends long before its entity's jobs usually do
    assert wait_until(lambda: simulator.job_resource(VAULT, job_id)["properties"]["status"] == "Cancelled", 10)

    published = []
    for _ in range(11):  # at most one 300 s rest, and the round that follows it
        clock.advance(tracker.settings.poll_seconds)
        poll_once(tracker)
        published += results(tracker)
        if published:
            break
    assert [e["data"]["status"] for e in published] == ["Cancelled"]


def test_a_completed_jobs_duration_is_kept_for_its_entitys_next_job(simulator, env: dict[str, str],
                                                                     clock: ManualClock) -> None:
    tracker = tracker_with_clock(env, clock, **NO_DETECTOR)
    job_id = simulator.add_job(VAULT, JobScript(duration=1, entity_friendly_name="vm-quick"))
    started = time.monotonic()
    assert wait_until(lambda: simulator.job_resource(VAULT, job_id)["properties"]["status"] == "Completed", 10)
    tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT}))
    clock.advance(tracker.settings.poll_seconds)
    poll_once(tracker)
    assert [e["data"]["jobId"] for e in results(tracker)] == [job_id]

    log = TableDurationLog(tracker._storage.table(tracker.settings.table))
    key = history_key(RecoveryServices.parse_vault_id(VAULT).key,
                      {"entityFriendlyName": "vm-quick", "jobType": "AzureIaaSVMJob", "operation": "Backup"})
    [seconds] = log.get_durations(key or "")
    assert 0.5 <= seconds <= time.monotonic() - started + 1
