"""A refused credential (401) or a missing role (403): loud in the logs, never a false result.

The tracker runs on a clock the test moves, against the simulator and Azurite, so "after the grace period" is
exact: each poll round is driven by hand, the way the timer and the poll-queue trigger would.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest

from devtools.simulator import JobScript
from jobs.tracker import Tracker
from tests.conftest import VAULT, ManualClock, poll_once, results, tracker_with_clock

SUBSCRIPTION = VAULT.split("/")[2]
GRACE = 30


@pytest.fixture
def tracker_on(env: dict[str, str], clock: ManualClock) -> Callable[..., Tracker]:
    def make(**overrides: str) -> Tracker:
        return tracker_with_clock(env, clock, JOBS_NOT_FOUND_GRACE_SECONDS=str(GRACE), **overrides)

    return make


def test_a_refused_token_never_ends_a_job_and_is_logged_once_naming_the_subscription(
    simulator, tracker_on, clock, caplog
):
    tracker = tracker_on(JOBS_ARM_TOKEN="expired-token")
    job_id = simulator.add_job(VAULT, JobScript(duration=3600))
    [tracking_id] = tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT})).tracking_ids
    caplog.set_level(logging.WARNING, logger="jobs")
    polls = 0
    for _ in range(4):  # well past the grace period, with the backoff's growing gaps
        clock.advance(GRACE)
        polls += poll_once(tracker)
    assert polls >= 3  # it kept asking
    item = tracker._store.get(tracking_id)
    assert item is not None and not item.ended
    assert item.last_error is not None and item.last_error["status"] == 401  # what `status` shows
    assert [e.tracking_id for e in tracker._store.list_index()] == [tracking_id]  # it keeps its place
    assert results(tracker) == []
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and SUBSCRIPTION in r.getMessage()]
    assert len(errors) == 1  # one line per subscription per few minutes, not one per read
    assert "401" in errors[0].getMessage() and "AZURE_CLIENT_ID" in errors[0].getMessage()
    assert "401" in tracker.failing_subscriptions()[SUBSCRIPTION]

    fixed = tracker_on()  # the right credential, on the same storage: the job goes on to its true end
    clock.advance(600)
    assert poll_once(fixed) == 1
    item = fixed._store.get(tracking_id)
    assert item is not None and item.status == "InProgress" and item.last_error is None
    assert fixed.failing_subscriptions() == {}


def test_a_refused_token_backs_off(simulator, tracker_on, clock):
    tracker = tracker_on(JOBS_ARM_TOKEN="expired-token")
    job_id = simulator.add_job(VAULT, JobScript(duration=3600))
    tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT}))
    gaps = []
    for _ in range(4):
        assert poll_once(tracker) == 1
        [entry] = tracker._store.list_index()
        gaps.append((entry.next_poll_at - clock.now).total_seconds())
        clock.advance(gaps[-1])
    assert gaps == sorted(gaps) and gaps[-1] >= 4 * gaps[0]


def test_a_vault_without_backup_reader_warns_from_the_first_read_and_ends_only_after_the_grace(
    simulator, tracker_on, clock, caplog
):
    tracker = tracker_on()
    job_id = simulator.add_job(VAULT, JobScript(duration=3600))
    simulator.deny_vault(VAULT)
    [tracking_id] = tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT})).tracking_ids
    caplog.set_level(logging.WARNING, logger="jobs")
    assert poll_once(tracker) == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "prod-vault" in r.getMessage()]
    assert len(warnings) == 1 and "Backup Reader" in warnings[0].getMessage()
    item = tracker._store.get(tracking_id)
    assert item is not None and not item.ended and item.last_error["code"] == "AuthorizationFailed"
    assert "403" in tracker.failing_subscriptions()[VAULT.lower()]

    clock.advance(GRACE + 1)
    assert poll_once(tracker) == 1
    [event] = results(tracker)
    assert event["type"] == "BackupJob.NotFound"
    assert event["data"]["errors"][0]["code"] == "AuthorizationFailed"
