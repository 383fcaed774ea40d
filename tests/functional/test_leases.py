"""A lease means one poll: a poll message read later than its lease never makes a job be read twice.

Two trackers (two instances) share Azurite and the simulator and run on one clock the test moves. The poll queue
is held back (its messages are not read) for longer than the lease, the way a backlog behind a slow or throttled
subscription holds them, and the ARM reads of each job are counted by the simulator.
"""

from __future__ import annotations

import json

from devtools.simulator import JobScript
from jobs.arm import ArmClient
from jobs.arm.transport import HandlerTransport, HttpRequest, HttpResponse
from jobs.config import Settings
from jobs.flows.poll_round import PollWork, lease_seconds
from jobs.tracker import Tracker
from tests.conftest import VAULT, ManualClock, drain, results, tracker_with_clock

JOBS = 4


def _reads_per_job(simulator, job_ids: list[str]) -> dict[str, int]:
    gets = simulator.stats()["job_gets"]
    return {job_id: gets.get(job_id, 0) for job_id in job_ids}


def _setup(simulator, env, clock):
    # GETs per job (the job strategy) make each read of a job countable
    first = tracker_with_clock(env, clock, JOBS_POLL_SECONDS="5", JOBS_LIST_THRESHOLD="100", JOBS_POLL_STRATEGY="job")
    second = tracker_with_clock(env, clock, JOBS_POLL_SECONDS="5", JOBS_LIST_THRESHOLD="100", JOBS_POLL_STRATEGY="job")
    job_ids = [simulator.add_job(VAULT, JobScript(duration=3600)) for _ in range(JOBS)]
    for job_id in job_ids:
        first.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT}))
    simulator.reset_stats()
    return first, second, job_ids


def test_a_poll_queue_held_back_past_the_lease_reads_each_job_once_with_two_instances(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    first, second, job_ids = _setup(simulator, env, clock)
    lease = lease_seconds(first.settings.poll_seconds)
    poll_queue = first._storage.queue(first.settings.poll_queue)

    clock.advance(1)
    first.run_poll_round()  # the message waits in the queue: nobody reads it yet
    for _ in range(3):  # rounds of both instances while the message is held, each past the lease
        clock.advance(lease + 1)
        second.run_poll_round()
        first.run_poll_round()
    messages = drain(poll_queue)
    for index, message in enumerate(messages):  # then the backlog clears, on both instances
        (first if index % 2 else second).handle_poll_message(message)

    assert all(reads == 1 for reads in _reads_per_job(simulator, job_ids).values()), (
        len(messages), _reads_per_job(simulator, job_ids))
    leases = first._store.get_leases(e.tracking_id for e in first._store.list_index())
    assert set(leases.values()) == {""}  # every lease given back with the next poll


def test_a_copy_handed_out_anyway_is_skipped_by_the_worker_that_reads_the_older_one(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    first, second, job_ids = _setup(simulator, env, clock)
    poll_queue = first._storage.queue(first.settings.poll_queue)
    clock.advance(1)
    first.run_poll_round()
    [old] = drain(poll_queue)  # taken off the queue (a worker that crashed holding it, say): no backlog left
    clock.advance(lease_seconds(first.settings.poll_seconds) + 1)
    second.run_poll_round()  # the expired lease is handed out again
    [new] = drain(poll_queue)
    assert PollWork.from_message(new).lease != PollWork.from_message(old).lease

    report = first.handle_poll_message(old)  # the older copy arrives after all
    assert report.skipped == JOBS and report.polled == 0
    assert second.handle_poll_message(new).polled == JOBS
    assert all(reads == 1 for reads in _reads_per_job(simulator, job_ids).values())


def test_a_lease_whose_message_is_lost_is_handed_out_again(simulator, env: dict[str, str], clock: ManualClock) -> None:
    first, _, job_ids = _setup(simulator, env, clock)
    poll_queue = first._storage.queue(first.settings.poll_queue)
    clock.advance(1)
    first.run_poll_round()
    drain(poll_queue)  # lost: poisoned, say
    clock.advance(lease_seconds(first.settings.poll_seconds) + 1)
    assert first.run_poll_round().due == JOBS  # with no backlog, the expired lease is handed out again
    for message in drain(poll_queue):
        first.handle_poll_message(message)
    assert all(reads == 1 for reads in _reads_per_job(simulator, job_ids).values())


def test_point6_a_job_resource_graph_shows_ended_is_not_handed_out_again_while_a_worker_holds_its_lease(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    """Two instances with Resource Graph on. The first instance's worker is inside its (slow) read of a job when
    the second instance's round runs: Resource Graph shows the jobs ended, but their lease is the first worker's,
    so the second round leaves them alone. Today's rule (an ended job is due whatever its lease) read each twice."""
    overrides = {"JOBS_POLL_SECONDS": "5", "JOBS_LIST_THRESHOLD": "100", "JOBS_POLL_STRATEGY": "job",
                 "JOBS_RESOURCE_GRAPH": "on"}
    second = tracker_with_clock(env, clock, **overrides)
    rounds_inside: list[object] = []

    def slow_arm(request: HttpRequest) -> HttpResponse:
        """The first instance's ARM: while its worker's first GET of a job is on its way, the second instance runs
        a round and handles what it hands out (as another instance would, meanwhile)."""
        if "/backupjobs/" in request.url.lower() and not rounds_inside:
            rounds_inside.append(second.run_poll_round())
            for message in drain(second._storage.queue(second.settings.poll_queue)):
                second.handle_poll_message(message)
        return simulator.respond(request)

    settings = Settings.from_env({**env, **overrides})
    first = Tracker(settings, clock=clock, arm=ArmClient.from_settings(settings, http=HandlerTransport(slow_arm)))
    first.setup()
    job_ids = [simulator.add_job(VAULT, JobScript(duration=0, final_status="Completed")) for _ in range(JOBS)]
    for job_id in job_ids:
        first.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT}))
    simulator.reset_stats()

    clock.advance(1)
    round_report = first.run_poll_round()
    assert round_report.detected == JOBS  # Resource Graph shows them ended: due, under the first round's lease
    [message] = drain(first._storage.queue(first.settings.poll_queue))
    first.handle_poll_message(message)

    assert rounds_inside and rounds_inside[0].detected == JOBS  # the second round saw them ended too
    assert rounds_inside[0].due == 0  # ... and left them to the worker holding their lease
    assert _reads_per_job(simulator, job_ids) == dict.fromkeys(job_ids, 1)
    assert [event["type"] for event in results(first)] == ["BackupJob.Completed"] * JOBS
