"""The read budget holds for the deployment: two runners on one storage account and one subscription, pacing on the
reads ARM says are left (``x-ms-ratelimit-remaining-subscription-reads``), never get a 429.

The simulator's bucket is a tenth of ARM's (25 reads, refilled at 25 per second) and each runner's own budget a
tenth of today's (20 reads, 20 per second): the proportions of two instances in Azure, where one alone stays under
the bucket and two together overrun it. Each round, the poll messages are split between the two runners, which
handle them at the same time (four worker threads each, as the Functions host's queue batch would), so their
reads of the one subscription overlap.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from devtools.simulator import FaultConfig, JobScript
from jobs.arm import ArmClient, ReadBudget, ReadPacer, StaticToken
from jobs.config import Settings
from jobs.tracker import Tracker
from tests.conftest import VAULT, ManualClock, drain

JOBS = 20
VAULTS = [f"{VAULT}-{n}" for n in range(4)]  # one subscription; one poll message per vault
BUCKET, REFILL = 10, 10.0
READS_PER_JOB = 2


def _runner(env: dict[str, str], simulator, clock: ManualClock) -> Tracker:
    arm = ArmClient(
        simulator.base_url, StaticToken("sim-token"), backoff_seconds=0.01,
        budget=ReadBudget(capacity=8, refill_per_second=8),  # 80% of the bucket, as each process's own budget
        pacer=ReadPacer(capacity=BUCKET, refill_per_second=REFILL, reserve=3),
    )
    tracker = Tracker(Settings.from_env({**env, "JOBS_LIST_THRESHOLD": "1000"}), arm=arm, clock=clock)  # GETs
    tracker.setup()
    return tracker


def _handle(tracker: Tracker, messages: list[str]) -> None:
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(tracker.handle_poll_message, messages))


def test_two_runners_share_the_subscriptions_bucket_without_a_429(env: dict[str, str], simulator,
                                                                  clock: ManualClock) -> None:
    simulator.set_faults(FaultConfig(throttle=True, bucket_size=BUCKET, refill_per_second=REFILL))
    runners = [_runner(env, simulator, clock), _runner(env, simulator, clock)]
    for vault in VAULTS:
        simulator.add_vault(vault)
    for n in range(JOBS):
        vault = VAULTS[n % len(VAULTS)]
        job_id = simulator.add_job(vault, JobScript(duration=3600))
        runners[0].accept_message(json.dumps({"jobId": job_id, "vaultId": vault}))
    simulator.reset_stats()

    poll_queue = runners[0]._storage.queue(runners[0].settings.poll_queue)
    for _ in range(4 * READS_PER_JOB):  # a deadline in rounds: a job left out by the pace is polled next round
        reads = simulator.stats()["job_gets"]
        if len(reads) == JOBS and min(reads.values()) >= READS_PER_JOB:
            break
        clock.advance(600)  # every job is due again
        runners[0].run_poll_round()
        messages = drain(poll_queue)
        with ThreadPoolExecutor(2) as both:
            list(both.map(_handle, runners, (messages[0::2], messages[1::2])))

    stats = simulator.stats()
    assert stats["throttled"] == 0, f"{stats['throttled']} reads throttled (429)"
    assert stats["retry_after_violations"] == 0
    reads = stats["job_gets"]
    assert len(reads) == JOBS and min(reads.values()) >= READS_PER_JOB, reads
    # Both runners read, and together they sent far more than the bucket holds: the pace kept them in, not luck.
    assert all(runner._arm.requests_sent >= BUCKET for runner in runners)
    assert stats["by_kind"]["job_get"] >= READS_PER_JOB * JOBS > 3 * BUCKET
