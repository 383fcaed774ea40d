"""The decisions of the poll worker, the publisher and the tracker, one round at a time.

Each test drives the rounds by hand on a clock it moves (``tracker_with_clock``, ``poll_once``), against the
simulator and Azurite, and reads what the decision cost or left behind: the simulator's counters (list pages, GETs
per job), the running index's ``NextPollAt``, the results queue.
"""

from __future__ import annotations

import json
from datetime import timedelta

from devtools.simulator import FaultConfig, JobScript
from jobs.domain.tracking import observe_job
from jobs.flows.poll_round import PollWork
from tests.conftest import VAULT, ManualClock, drain, poll_once, results, tracker_with_clock

RETRY_AFTER = 60


def _track(tracker, job_ids: list[str], correlation_id: str | None = None) -> list[str]:
    tracking_ids = []
    for job_id in job_ids:
        message = {"jobId": job_id, "vaultId": VAULT}
        if correlation_id is not None:
            message["correlationId"] = correlation_id
        tracking_ids += tracker.accept_message(json.dumps(message)).tracking_ids
    return tracking_ids


def _handed_out(tracker) -> list[str]:
    """One timer round: the poll messages it sent (taken off the poll queue, not handled yet)."""
    tracker.run_poll_round()
    return drain(tracker._storage.queue(tracker.settings.poll_queue))


# -- list or get --------------------------------------------------------------------------------------------------

def test_three_due_jobs_of_a_vault_cost_one_list_and_a_get_only_for_the_job_that_left_it(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    tracker = tracker_with_clock(env, clock, JOBS_LIST_THRESHOLD="3")
    simulator.page_size = 1  # the two running jobs come on two pages: the list is followed page by page
    running = [simulator.add_job(VAULT, JobScript(duration=3600)) for _ in range(2)]
    ended = simulator.add_job(VAULT, JobScript(duration=0, final_status="Failed"))
    _track(tracker, [*running, ended])
    simulator.reset_stats()

    clock.advance(1)
    [message] = _handed_out(tracker)
    report = tracker.handle_poll_message(message)

    stats = simulator.stats()
    assert report.strategy == "list" and report.polled == 3 and report.ended == 1
    assert stats["by_kind"]["job_list"] == stats["list_pages"] == 2  # one BackupJobs_List, its two pages
    assert stats["job_gets"] == {ended: 1}  # details only for the job missing from the running list
    [event] = results(tracker)
    assert event["data"]["jobId"] == ended and event["type"] == "BackupJob.Failed"


def test_two_due_jobs_of_a_vault_cost_one_get_each_and_no_list_under_the_job_strategy(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    tracker = tracker_with_clock(env, clock, JOBS_LIST_THRESHOLD="3", JOBS_POLL_STRATEGY="job")
    job_ids = [simulator.add_job(VAULT, JobScript(duration=3600)) for _ in range(2)]
    _track(tracker, job_ids)
    simulator.reset_stats()

    clock.advance(1)
    [message] = _handed_out(tracker)
    report = tracker.handle_poll_message(message)

    stats = simulator.stats()
    assert report.strategy == "get" and report.polled == 2
    assert stats["list_pages"] == 0 and stats["by_kind"]["job_list"] == 0
    assert stats["job_gets"] == dict.fromkeys(job_ids, 1)


# -- reschedule on throttle ---------------------------------------------------------------------------------------

def test_a_429_on_the_list_reschedules_every_job_of_the_message_past_its_retry_after(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    tracker = tracker_with_clock(env, clock, JOBS_LIST_THRESHOLD="3")
    job_ids = [simulator.add_job(VAULT, JobScript(duration=3600)) for _ in range(3)]
    tracking_ids = _track(tracker, job_ids)
    simulator.set_faults(FaultConfig(rate_429=1.0, retry_after_seconds=RETRY_AFTER, only_on_cue=1))
    simulator.reset_stats()

    clock.advance(1)
    [message] = _handed_out(tracker)
    report = tracker.handle_poll_message(message)

    assert report.throttled and report.strategy == "list" and report.polled == 0
    stats = simulator.stats()
    assert stats["by_kind"]["job_list"] == 1 and stats["throttled"] == 1 and stats["job_gets"] == {}
    next_polls = {entry.tracking_id: entry.next_poll_at for entry in tracker._store.list_index()}
    assert set(next_polls) == set(tracking_ids)
    for at in next_polls.values():  # every job of the message, to the end of the window (less the seconds spent)
        assert clock.now + timedelta(seconds=RETRY_AFTER - 10) <= at <= clock.now + timedelta(seconds=RETRY_AFTER)

    clock.advance(RETRY_AFTER - 12)  # inside the window: no round hands them out, nothing is read
    assert poll_once(tracker) == 0
    assert simulator.stats()["arm_requests"] == stats["arm_requests"]

    clock.advance(30)  # past it (and past the window on the shared board): handed out again, all three at once
    assert tracker.run_poll_round().due == 3


# -- ended in the meantime ----------------------------------------------------------------------------------------

def test_a_job_another_instance_ended_after_the_round_is_published_once_and_not_polled(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    tracker = tracker_with_clock(env, clock)
    other = tracker_with_clock(env, clock)  # another instance on the same storage
    job_id = simulator.add_job(VAULT, JobScript(duration=0, final_status="CompletedWithWarnings"))
    [tracking_id] = _track(tracker, [job_id], correlation_id="c-1")
    clock.advance(1)
    [message] = _handed_out(tracker)

    # Between the round and this worker, the other instance saw the job end and saved it.
    item = other._store.get(tracking_id)
    assert item is not None and not item.ended
    provider = other._providers.for_vault(VAULT)
    assert observe_job(item, provider.job_state(simulator.job_resource(VAULT, job_id)), clock.now)
    other._store.save(item)
    simulator.reset_stats()

    report = tracker.handle_poll_message(message)
    assert report.polled == 0 and report.published == 1
    assert simulator.stats()["arm_requests"] == 0  # not read again: the stored end is the result
    [event] = results(tracker)
    assert event["type"] == "BackupJob.CompletedWithWarnings" and event["data"]["correlationId"] == "c-1"
    assert tracker._store.list_index() == []
    assert tracker.handle_poll_message(message).published == 0
    assert results(tracker) == []


# -- publish once per subscriber ----------------------------------------------------------------------------------

def test_each_subscriber_gets_one_event_and_a_redelivered_poll_message_publishes_nothing_more(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    tracker = tracker_with_clock(env, clock)
    job_id = simulator.add_job(VAULT, JobScript(duration=0, final_status="Completed"))
    [tracking_id] = _track(tracker, [job_id], correlation_id="first")
    assert _track(tracker, [job_id], correlation_id="second") == [tracking_id]  # one job, two subscribers
    clock.advance(1)
    [message] = _handed_out(tracker)

    report = tracker.handle_poll_message(message)
    assert report.ended == 1 and report.published == 2
    events = results(tracker)
    assert sorted(e["data"]["correlationId"] for e in events) == ["first", "second"]
    assert len({e["id"] for e in events}) == 2

    # A redelivery of the same message, and a copy that carries no lease (polled unchecked): nothing more.
    assert tracker.handle_poll_message(message).published == 0
    unleased = PollWork.from_message(message)
    assert tracker.handle_poll_message(PollWork(unleased.vault_id, unleased.tracking_ids).to_message()).published == 0
    assert results(tracker) == []
    assert {r.published_status for r in tracker._store.list_subscribers(tracking_id)} == {"Completed"}


# -- an ARM incident ----------------------------------------------------------------------------------------------

def test_a_list_that_fails_with_5xx_backs_the_vault_off_instead_of_a_get_per_job(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    tracker = tracker_with_clock(env, clock, JOBS_LIST_THRESHOLD="3", JOBS_POLL_SECONDS="5")
    job_ids = [simulator.add_job(VAULT, JobScript(duration=3600)) for _ in range(3)]
    _track(tracker, job_ids)
    simulator.set_faults(FaultConfig(rate_503=1.0))  # ARM answers 503 to everything, after the client's retries
    simulator.reset_stats()

    backoffs = []
    for _ in range(3):
        clock.advance(600)  # every job is due again
        [message] = _handed_out(tracker)
        report = tracker.handle_poll_message(message)
        assert report.polled == 0
        assert simulator.stats()["job_gets"] == {}  # not one GET per job while ARM is failing
        backoffs.append(min(e.next_poll_at for e in tracker._store.list_index()) - clock.now)
    assert backoffs[0] >= timedelta(seconds=10) and backoffs[1] > backoffs[0] and backoffs[2] > backoffs[1]

    simulator.set_faults(FaultConfig())
    clock.advance(600)
    [message] = _handed_out(tracker)
    assert tracker.handle_poll_message(message).polled == 3  # the incident over, one list answers for all three
