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


class Measured:
    """The detector's measured health as the policy sees it: fresh for the vaults it covers, or not."""

    def __init__(self, fresh: bool, covered: tuple[str, ...] = (VAULT.locator,)) -> None:
        self.fresh = fresh
        self.covered = covered

    def fresh_for(self, locator: str) -> bool:
        return self.fresh and locator in self.covered


FRESH, LATE = Measured(True), Measured(False)


def _policy(detector: Measured | None = None, **env: str):
    return poll_policy(Settings.from_env({**STORAGE, **env}), detector)


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


def test_a_job_watched_by_a_fresh_detector_joins_its_vaults_grid_at_once() -> None:
    item = _job()
    assert _policy(FRESH).first_poll(item, T0) == vault_grid_after(VAULT.key, T0, 30, 300)
    assert _policy(LATE).first_poll(item, T0) == T0  # late, refusing or unproven: the next round
    assert _policy().first_poll(item, T0) == T0  # not measured at all
    assert _policy(FRESH, JOBS_RESOURCE_GRAPH="off").first_poll(item, T0) == T0
    assert _policy(FRESH, JOBS_POLL_STRATEGY="job").first_poll(item, T0) == T0


def test_an_operation_is_first_polled_at_the_next_round() -> None:
    operation = TrackedItem.for_operation(
        OperationRef(VAULT, "op1", f"{VAULT.path()}/backupOperations/op1"), T0, T0 + timedelta(hours=1))
    assert _policy().first_poll(operation, T0) == T0


def test_the_first_poll_never_passes_the_deadline() -> None:
    item = TrackedItem.for_job(JobRef.create(VAULT, JOB), T0, T0 + timedelta(seconds=5))
    item.status = "InProgress"
    assert _policy(FRESH).first_poll(item, T0) == T0 + timedelta(seconds=5)


def test_vault_rounds_rest_only_while_the_detector_is_fresh_for_the_job() -> None:
    now = T0 + timedelta(minutes=10)
    item = _job()
    assert _policy(FRESH).next_poll(item, now) == vault_grid_after(VAULT.key, now, 30, 300)
    for every_round in (_policy(LATE), _policy(), _policy(FRESH, JOBS_RESOURCE_GRAPH="off"),
                        _policy(Measured(True, covered=()))):  # a job it cannot see (a cross-region restore)
        assert every_round.next_poll(item, now) == vault_grid_after(VAULT.key, now, 30, 30)
        assert timedelta(0) < every_round.next_poll(item, now) - now <= timedelta(seconds=30)
    assert timedelta(0) < _policy(FRESH).next_poll(item, now) - now <= timedelta(seconds=300)


def test_a_cross_region_restore_job_is_on_the_period_schedule_however_fresh_the_detector() -> None:
    crr = TrackedItem.for_job(JobRef.create(VAULT.in_region("eastus2"), JOB), T0, T0 + timedelta(hours=72))
    crr.status = "InProgress"
    now = T0 + timedelta(minutes=10)
    fresh = _policy(Measured(True, covered=(VAULT.locator,)))  # fresh for the primary region's jobs
    assert fresh.next_poll(crr, now) - now <= timedelta(seconds=30)
    assert fresh.first_poll(crr, now) == now


def test_the_job_strategy_polls_by_age() -> None:
    now = T0 + timedelta(minutes=50)
    item = _job()
    assert _policy(JOBS_POLL_STRATEGY="job").next_poll(item, now) == next_poll_at(item, now, 30, 300)
    assert _policy(JOBS_POLL_STRATEGY="job").next_poll(item, now) == now + timedelta(seconds=300)
