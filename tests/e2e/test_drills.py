"""Faults and crashes (the fault drill of ``python -m jobs drill``): nothing lost, ids stable, Retry-After kept."""

from __future__ import annotations

import pytest

from devtools.drill import run_drill


def test_120_jobs_with_30_percent_of_arm_answers_faulted_all_end_correctly():
    # 120 jobs of every kind and outcome: enough for every fault kind to land many times (python -m jobs drill
    # runs 200 by default), small enough for the suite's time budget. Point 2 of issue 20 rides along: 3 jobs on a
    # vault whose every GET and list answers 503 end TimedOut at their 15 s deadline with the last read's error.
    report = run_drill(jobs=120, fault_rate=0.3, seed=11, timeout=240, quiet=True, failing_vault_jobs=3)
    print(report.table())
    assert report.failing_vault_jobs == 3 and report.failing_timed_out == 3, report.problems[:10]
    assert sum(report.faults.values()) >= 0.2 * report.arm_requests  # the faults really happened
    assert report.faults.get("429", 0) > 0
    assert report.lost == 0, report.problems[:10]
    assert report.wrong == 0, report.problems[:10]
    assert report.unexpected == 0, report.problems[:10]
    assert report.conflicting_ids == 0
    assert report.retry_after_violations == 0
    assert report.stuck == 0
    assert report.results_queue_events >= report.expected_events == 120 + 3


def test_runner_killed_ten_times_delivers_every_result_with_stable_ids():
    report = run_drill(jobs=100, fault_rate=0.1, kills=10, subscribers=2, seed=5, timeout=240, quiet=True)
    print(report.table())
    assert report.kills == 10
    # Each kill waited for a runner inside poll, publish or deliver in turn; the killed runner's own record says
    # which phases it died inside: every one of them, at least once.
    assert all(report.kills_inside[phase] >= 1 for phase in ("poll", "publish", "deliver")), report.kills_inside
    assert report.lost == 0, report.problems[:10]
    assert report.wrong == 0, report.problems[:10]
    assert report.unexpected == 0, report.problems[:10]
    assert report.conflicting_ids == 0  # every repeat carries the same event id
    assert report.stuck == 0


def test_two_runners_on_the_same_storage_never_publish_a_transition_under_two_ids():
    report = run_drill(jobs=80, fault_rate=0.0, runners=2, kills=2, seed=3, timeout=240, quiet=True)
    print(report.table())
    assert report.overlaps >= 1 and report.overlap_seconds > 0  # both runners were inside work at the same time
    assert report.lost == 0, report.problems[:10]
    assert report.wrong == 0
    assert report.unexpected == 0, report.problems[:10]
    assert report.conflicting_ids == 0
    assert report.stuck == 0


def test_poll_messages_held_back_longer_than_the_lease_lose_nothing_and_reads_per_job_are_reported():
    """Four runners, and each runner's first poll message for a job reaches the poll queue only after the lease
    passed (it may be handed out again meanwhile): nothing lost, wrong or stuck, and the ARM reads per job show
    what the held messages cost."""
    report = run_drill(jobs=8, fault_rate=0.0, runners=4, hold_poll_queue=12, seed=13, timeout=50, quiet=True)
    print(report.table())
    assert report.hold_poll_queue == 12 and report.hold_poll_queue > report.lease_seconds
    assert report.held_messages > 0  # the hold really happened
    assert report.lost == 0, report.problems[:10]
    assert report.wrong == 0, report.problems[:10]
    assert report.unexpected == 0, report.problems[:10]
    assert report.stuck == 0
    assert report.conflicting_ids == 0
    assert report.arm_reads_per_job == pytest.approx(report.arm_requests / report.jobs)
    assert report.arm_reads_per_job >= 1
    assert "ARM reads per job" in report.table()


def test_point1_credential_outage_every_job_ends_with_its_true_status():
    """The tracker as deployed (its token from DefaultAzureCredential and App Service's identity endpoint, on
    loopback): the endpoint refuses every token for 16 s, four times the grace period, while jobs end; then it answers.
    Each job is read on its own (a GET each). Every job ends with its true status, none TrackingFailed, none lost or
    stuck."""
    report = run_drill(jobs=16, fault_rate=0.1, credential_outage=16, seed=17, timeout=120, quiet=True)
    print(report.table())
    assert report.credential_outage == 16 and report.tokens_refused > 0  # the outage really happened
    assert "credential outage" in report.table()
    assert report.lost == 0, report.problems[:10]
    assert report.wrong == 0, report.problems[:10]  # a TrackingFailed would be wrong: no job ended that way
    assert report.unexpected == 0, report.problems[:10]
    assert report.conflicting_ids == 0
    assert report.stuck == 0
