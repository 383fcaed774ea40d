"""The poll policy, chosen once from the settings: batch size, first and next poll, when a list replaces GETs, and
whether the detector is asked (docs/reference.md, "How jobs are polled")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobs.config import Settings
from jobs.domain.references import JobRef, OperationRef
from jobs.domain.tracked_item import TrackedItem
from jobs.domain.tracking import next_poll_at, vault_grid_after
from jobs.flows.policy import BATCH_SIZE, VAULT_BATCH_SIZE, PerJob, VaultRounds, poll_policy
from jobs.providers import parse_vault_id

STORAGE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}
VAULT = parse_vault_id("/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg/providers/"
                       "Microsoft.RecoveryServices/vaults/v1")
T0 = datetime(2026, 1, 5, 22, 0, 7, tzinfo=UTC)
JOB = "22222222-2222-2222-2222-222222222222"


def _job(created: datetime = T0, status: str | None = "InProgress") -> TrackedItem:
    item = TrackedItem.for_job(JobRef.create(VAULT, JOB), created, created + timedelta(hours=72))
    item.status = status
    return item


def _policy(**env: str):
    return poll_policy(Settings.from_env({**STORAGE, **env}))


def test_the_default_is_vault_rounds_watched_by_the_detector() -> None:
    policy = _policy()
    assert isinstance(policy, VaultRounds)
    assert (policy.name, policy.batch_size, policy.uses_detector) == ("vault", VAULT_BATCH_SIZE, True)


@pytest.mark.parametrize(("graph", "detector"), [("on", True), ("off", False)])
def test_the_job_strategy_is_per_job_whatever_the_detector(graph: str, detector: bool) -> None:
    policy = _policy(JOBS_POLL_STRATEGY="job", JOBS_RESOURCE_GRAPH=graph)
    assert isinstance(policy, PerJob)
    assert (policy.name, policy.batch_size, policy.uses_detector) == ("job", BATCH_SIZE, detector)


def test_vault_rounds_list_for_one_due_job_the_job_strategy_from_its_threshold() -> None:
    vault, job = _policy(), _policy(JOBS_POLL_STRATEGY="job", JOBS_LIST_THRESHOLD="3")
    assert (vault.lists(0), vault.lists(1)) == (False, True)
    assert (job.lists(2), job.lists(3)) == (False, True)


def test_a_job_watched_by_the_detector_joins_its_vaults_grid_at_once() -> None:
    item = _job()
    assert _policy().first_poll(item, T0) == vault_grid_after(VAULT.key, T0, 30, 300)
    assert _policy(JOBS_RESOURCE_GRAPH="off").first_poll(item, T0) == T0  # the next round
    assert _policy(JOBS_POLL_STRATEGY="job").first_poll(item, T0) == T0


def test_an_operation_is_first_polled_at_the_next_round() -> None:
    operation = TrackedItem.for_operation(
        OperationRef(VAULT, "op1", f"{VAULT.path()}/backupOperations/op1"), T0, T0 + timedelta(hours=1))
    assert _policy().first_poll(operation, T0) == T0


def test_the_first_poll_never_passes_the_deadline() -> None:
    item = TrackedItem.for_job(JobRef.create(VAULT, JOB), T0, T0 + timedelta(seconds=5))
    assert _policy().first_poll(item, T0) == T0 + timedelta(seconds=5)


def test_vault_rounds_poll_a_known_job_on_the_grid_every_round_without_the_detector() -> None:
    now = T0 + timedelta(minutes=10)
    item = _job()
    with_detector = _policy().next_poll(item, now)
    without = _policy(JOBS_RESOURCE_GRAPH="off").next_poll(item, now)
    assert with_detector == vault_grid_after(VAULT.key, now, 30, 300)
    assert without == vault_grid_after(VAULT.key, now, 30, 30)
    assert timedelta(0) < without - now <= timedelta(seconds=30)
    assert timedelta(0) < with_detector - now <= timedelta(seconds=300)


def test_the_job_strategy_polls_by_age() -> None:
    now = T0 + timedelta(minutes=50)
    item = _job()
    assert _policy(JOBS_POLL_STRATEGY="job").next_poll(item, now) == next_poll_at(item, now, 30, 300)
    assert _policy(JOBS_POLL_STRATEGY="job").next_poll(item, now) == now + timedelta(seconds=300)
