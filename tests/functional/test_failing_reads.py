"""Reads that fail, a round that runs out of time, a list row that shows an end (issue 20, points 2, 7 and 10).

Each test drives the rounds by hand on a clock it moves, against the simulator (its fault hooks: vaults whose
every read fails, slow answers, a list index behind the jobs) and Azurite, and counts what Azure was asked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from devtools.simulator import BackupSimulator, FaultConfig, JobScript
from devtools.simulator._simulator import IN_PROCESS_URL
from jobs.arm import ArmClient
from jobs.arm.transport import StaticToken
from jobs.config import Settings
from jobs.flows.poll_round import PollWork, inline_budget_seconds
from jobs.tracker import Tracker
from tests.conftest import VAULT, ManualClock, drain, poll_once, results

TIMEOUT_MINUTES = 2


def _tracker(env: dict[str, str], clock: ManualClock, arm_endpoint: str | None = None, monotonic=None,
             http=None, **overrides: str) -> Tracker:
    """A tracker on ``clock`` whose ARM client retries a failed read at once (the same client, a 10 ms backoff: a
    test of the tracker's decisions, not of the client's waits)."""
    settings = Settings.from_env({**env, **overrides})
    arm = ArmClient(arm_endpoint or settings.arm_endpoint, StaticToken("sim-token"), backoff_seconds=0.01, http=http)
    extra = {"monotonic": monotonic} if monotonic is not None else {}
    tracker = Tracker(settings, clock=clock, arm=arm, **extra)
    tracker.setup()
    return tracker


def _track(tracker: Tracker, vault: str, job_id: str, **fields: object) -> str:
    [tracking_id] = tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": vault, **fields})).tracking_ids
    return tracking_id


def _rounds_until_ended(tracker: Tracker, clock: ManualClock, step: float, rounds: int) -> list[dict]:
    events: list[dict] = []
    for _ in range(rounds):
        clock.advance(step)
        poll_once(tracker)
        events += results(tracker)
        if events:
            break
    return events


# -- point 2: deadlines hold while reads fail ---------------------------------------------------------------------

@pytest.mark.parametrize(("failure", "overrides", "status", "code"), [
    ("503 on every read", {}, 503, "ServiceUnavailable"),
    ("an unexpected 4xx: an api-version Azure does not serve", {"JOBS_ARM_API_VERSION": "2011-01-01"}, 400,
     "NoRegisteredProviderFound"),
])
def test_point2_a_job_whose_gets_keep_failing_ends_timed_out_at_its_deadline_with_the_last_error_and_is_read_no_more(
    simulator, env: dict[str, str], clock: ManualClock, failure: str, overrides: dict[str, str], status: int,
    code: str,
) -> None:
    # One GET per job (the job strategy): each read of the job is its own and countable.
    tracker = _tracker(env, clock, JOBS_POLL_STRATEGY="job", JOBS_LIST_THRESHOLD="100", JOBS_POLL_SECONDS="30",
                       **overrides)
    job_id = simulator.add_job(VAULT, JobScript(duration=3600))
    tracking_id = _track(tracker, VAULT, job_id, timeoutMinutes=TIMEOUT_MINUTES, correlationId="c-2")
    if not overrides:
        simulator.fail_vault_reads(VAULT, "503")

    events = _rounds_until_ended(tracker, clock, 31, rounds=8)  # the deadline is 2 minutes away: 4 rounds
    assert events, f"{failure}: no event by 4 minutes past a {TIMEOUT_MINUTES}-minute deadline"
    [event] = events
    assert event["type"] == "BackupJob.TimedOut" and event["data"]["status"] == "TimedOut"
    deadline, last = event["data"]["errors"]
    assert deadline["code"] == "TrackingTimedOut" and "reads have failed since" in deadline["message"]
    assert last["code"] == code and last["message"].startswith(f"the last read failed: {status} {code}")
    assert event["data"]["correlationId"] == "c-2"
    item = tracker._store.get(tracking_id)
    assert item is not None and item.ended and item.ended_at is not None
    assert item.ended_at - item.created_at <= timedelta(minutes=TIMEOUT_MINUTES, seconds=31)
    assert item.last_error is not None and item.last_error["status"] == status

    gets = simulator.stats()["job_gets"].get(job_id, 0)
    assert gets >= 1
    for _ in range(3):  # its reads stop
        clock.advance(600)
        assert poll_once(tracker) == 0
    assert simulator.stats()["job_gets"].get(job_id, 0) == gets
    assert tracker._store.list_index() == []


def test_point2_a_vault_whose_list_keeps_failing_still_ends_its_job_at_the_deadline_with_one_last_read(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    # The vault's list (vault rounds, the default) answers 503: the vault backs off as a whole, never past the
    # job's deadline; then the job gets a read of its own, which fails too.
    tracker = _tracker(env, clock, JOBS_POLL_SECONDS="30")
    job_id = simulator.add_job(VAULT, JobScript(duration=3600))
    _track(tracker, VAULT, job_id, timeoutMinutes=TIMEOUT_MINUTES)
    simulator.fail_vault_reads(VAULT, "503")

    events = _rounds_until_ended(tracker, clock, 31, rounds=8)
    assert [event["type"] for event in events] == ["BackupJob.TimedOut"]
    assert events[0]["data"]["errors"][1]["code"] == "ServiceUnavailable"
    stats = simulator.stats()
    # one last read, at the deadline (the client's three attempts at it)
    assert stats["by_kind"]["job_list"] >= 1 and stats["job_gets"] == {job_id: 3}
    clock.advance(600)
    assert poll_once(tracker) == 0 and tracker._store.list_index() == []


def test_point2_reads_that_fail_and_come_back_before_the_deadline_give_the_true_result(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    tracker = _tracker(env, clock, JOBS_POLL_STRATEGY="job", JOBS_LIST_THRESHOLD="100", JOBS_POLL_SECONDS="30")
    job_id = simulator.add_job(VAULT, JobScript(duration=0, final_status="Failed"))
    tracking_id = _track(tracker, VAULT, job_id, timeoutMinutes=TIMEOUT_MINUTES)
    simulator.fail_vault_reads(VAULT, "500")
    clock.advance(1)
    poll_once(tracker)
    item = tracker._store.get(tracking_id)
    assert item is not None and not item.ended and item.last_error is not None  # the error is on record
    assert item.last_error["status"] == 500 and "since" in item.last_error
    simulator.heal_vault_reads(VAULT)
    [event] = _rounds_until_ended(tracker, clock, 31, rounds=3)
    assert event["type"] == "BackupJob.Failed"


def test_point2_a_refused_credential_does_not_hold_a_job_past_its_deadline(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    # Every read is refused (401: a wrong token). Nothing ends over it before the deadline; at the deadline the job
    # ends TimedOut with the 401 as its last read's error, and is read no more.
    settings = Settings.from_env({**env, "JOBS_POLL_SECONDS": "30"})
    tracker = Tracker(settings, clock=clock, arm=ArmClient(settings.arm_endpoint, StaticToken("a-wrong-token")))
    tracker.setup()
    job_id = simulator.add_job(VAULT, JobScript(duration=3600))
    tracking_id = _track(tracker, VAULT, job_id, timeoutMinutes=TIMEOUT_MINUTES)
    clock.advance(1)
    poll_once(tracker)
    item = tracker._store.get(tracking_id)
    assert item is not None and not item.ended and item.last_error and item.last_error["status"] == 401

    [event] = _rounds_until_ended(tracker, clock, 31, rounds=8)
    assert event["type"] == "BackupJob.TimedOut"
    assert event["data"]["errors"][1]["message"].startswith("the last read failed: 401 ")
    refused = simulator.stats()["unauthorized"]
    clock.advance(600)
    assert poll_once(tracker) == 0 and simulator.stats()["unauthorized"] == refused


# -- point 7: inline polling within the function's time -----------------------------------------------------------

class SteppedMonotonic:
    """The tracker's monotonic clock, moved by the simulator's slow answers (its ``sleep``): no wall-clock waits."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


VAULTS = [VAULT.replace("prod-vault", f"vault-{n}") for n in range(3)]
SLOW_READ = 60.0  # every ARM answer takes a minute (a hanging ARM)


@pytest.fixture
def slow_arm() -> Iterator[tuple[BackupSimulator, SteppedMonotonic]]:
    monotonic = SteppedMonotonic()
    simulator = BackupSimulator(token="sim-token", sleep=monotonic.sleep)
    for vault in VAULTS:
        simulator.add_vault(vault)
    yield simulator, monotonic


def _slow_tracker(env, clock, slow_arm, **overrides: str) -> tuple[Tracker, BackupSimulator, SteppedMonotonic]:
    simulator, monotonic = slow_arm
    tracker = _tracker(env, clock, IN_PROCESS_URL, monotonic, simulator.in_process(), ARM_ENDPOINT=IN_PROCESS_URL,
                       JOBS_POLL_SECONDS="30", JOBS_INLINE_POLL_MAX="100", **overrides)
    return tracker, simulator, monotonic


def test_point7_a_round_polls_vaults_inline_only_within_its_time_and_queues_the_rest(
    env: dict[str, str], clock: ManualClock, slow_arm
) -> None:
    tracker, simulator, monotonic = _slow_tracker(env, clock, slow_arm)
    budget = inline_budget_seconds(30)
    assert budget < SLOW_READ
    for vault in VAULTS:
        for _ in range(2):
            _track(tracker, vault, simulator.add_job(vault, JobScript(duration=3600)))
    simulator.set_faults(FaultConfig(rate_slow=1.0, slow_seconds=SLOW_READ))

    clock.advance(1)
    started = monotonic()
    report = tracker.run_poll_round()
    spent = monotonic() - started
    assert report.due == 6
    assert (report.inline, report.messages) == (1, 2), report  # one vault's list, then the time was spent
    assert spent <= budget + SLOW_READ  # no read started past the budget: at most the one in flight
    queued = drain(tracker._storage.queue(tracker.settings.poll_queue))
    assert len(queued) == 2
    assert sum(tracker.handle_poll_message(text).polled for text in queued) == 4  # the leases carried over
    assert simulator.stats()["by_kind"]["job_list"] == 3  # each vault listed once


def test_point7_a_vault_left_half_read_when_the_time_runs_out_goes_on_in_the_poll_queue(
    env: dict[str, str], clock: ManualClock, slow_arm
) -> None:
    # A GET per job: the round's one vault has three reads to make; the first uses up the round's time.
    tracker, simulator, _ = _slow_tracker(env, clock, slow_arm, JOBS_POLL_STRATEGY="job", JOBS_LIST_THRESHOLD="100")
    vault = VAULTS[0]
    job_ids = [simulator.add_job(vault, JobScript(duration=3600)) for _ in range(3)]
    for job_id in job_ids:
        _track(tracker, vault, job_id)
    simulator.set_faults(FaultConfig(rate_slow=1.0, slow_seconds=SLOW_READ))

    clock.advance(1)
    report = tracker.run_poll_round()
    assert (report.inline, report.messages) == (1, 1)
    [text] = drain(tracker._storage.queue(tracker.settings.poll_queue))
    work = PollWork.from_message(text)
    assert len(work.tracking_ids) == 2 and work.lease  # the two unread jobs, under the round's lease
    assert tracker.handle_poll_message(text).polled == 2
    assert simulator.stats()["job_gets"] == dict.fromkeys(job_ids, 1)  # each job read once in all


# -- point 10: a terminal status in a list page -------------------------------------------------------------------

def test_point10_a_list_row_that_shows_the_job_ended_leads_to_its_get_and_its_result(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    tracker = _tracker(env, clock)  # Resource Graph off (the tests' default), vault rounds
    job_id = simulator.add_job(VAULT, JobScript(duration=0, final_status="Completed"))
    tracking_id = _track(tracker, VAULT, job_id)
    # The list's index is an hour behind: the job, ended, still matches status eq 'InProgress', its row Completed.
    simulator.set_list_lag(3600)

    clock.advance(1)
    poll_once(tracker)
    stats = simulator.stats()
    assert stats["by_kind"]["job_list"] == 1 and stats["job_gets"] == {job_id: 1}  # the row, then its details
    [event] = results(tracker)
    assert event["type"] == "BackupJob.Completed" and event["data"]["job"]["properties"].get("extendedInfo")
    item = tracker._store.get(tracking_id)
    assert item is not None and item.learned_from == "list"
