"""The ARM client against the simulator: real HTTP, real paging, real throttling, read through the Recovery Services
provider as the poll worker reads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devtools.simulator import FaultConfig, JobScript
from jobs.arm import (
    ArmClient,
    ArmForbidden,
    ArmNotFound,
    ArmThrottled,
    ArmUnauthorized,
    ArmUnavailable,
    StaticToken,
)
from jobs.domain.references import JobRef, OperationRef, VaultRef
from jobs.providers import parse_operation_url, parse_vault_id
from jobs.providers.recovery_services import RecoveryServices
from tests.conftest import VAULT

API = "2025-08-01"


class Reads:
    """The Recovery Services provider's reads bound to one ARM client."""

    def __init__(self, endpoint: str, token: StaticToken, **options: Any) -> None:
        self.client = ArmClient(endpoint, token, **options)
        self.provider = RecoveryServices(API)

    def get_job(self, job: JobRef) -> dict[str, Any]:
        return self.provider.get_job(self.client, job)

    def list_jobs(self, vault: VaultRef, filter: str | None = None) -> Iterator[dict[str, Any]]:
        return self.provider.list_jobs(self.client, vault, filter)

    def get_operation(self, operation: OperationRef) -> dict[str, Any]:
        return self.provider.get_operation(self.client, operation)


@pytest.fixture
def arm(simulator):
    return Reads(simulator.base_url, StaticToken("sim-token"), backoff_seconds=0.01)


def test_get_job_returns_the_job_resource_with_extended_info(simulator, arm):
    job_id = simulator.add_job(VAULT, JobScript(duration=0))
    resource = arm.get_job(JobRef.create(parse_vault_id(VAULT), job_id))
    assert resource == simulator.job_resource(VAULT, job_id)
    assert "extendedInfo" in resource["properties"]


def test_list_follows_next_link_across_pages_and_sees_every_job_once(simulator, arm):
    simulator.page_size = 3
    ids = {simulator.add_job(VAULT, JobScript(duration=60)) for _ in range(10)}
    simulator.reset_stats()
    listed = [r["name"] for r in arm.list_jobs(parse_vault_id(VAULT), "status eq 'InProgress'")]
    assert sorted(listed) == sorted(ids)
    assert simulator.stats()["list_pages"] == 4
    assert all("extendedInfo" not in r["properties"] for r in arm.list_jobs(parse_vault_id(VAULT)))


def test_unknown_job_is_not_found_and_a_denied_vault_is_forbidden_with_azures_code(simulator, arm):
    vault = parse_vault_id(VAULT)
    with pytest.raises(ArmNotFound):
        arm.get_job(JobRef.create(vault, "0f3c2b1a-0000-4000-8000-000000000001"))
    simulator.deny_vault(VAULT)
    with pytest.raises(ArmForbidden) as denied:
        arm.get_job(JobRef.create(vault, "0f3c2b1a-0000-4000-8000-000000000001"))
    assert denied.value.code == "AuthorizationFailed"
    assert denied.value.message


def test_operation_status_names_the_job(simulator, arm, wait):
    triggered = simulator.trigger_backup(VAULT, operation_delay=0.2)
    operation = parse_operation_url(triggered.location, simulator.base_url)
    assert wait(lambda: arm.get_operation(operation)["status"] == "Succeeded", 5)
    assert arm.get_operation(operation)["properties"]["jobId"] == triggered.job_id


def test_429_blocks_the_whole_subscription_until_retry_after(simulator, arm):
    vault = parse_vault_id(VAULT)
    job = JobRef.create(vault, simulator.add_job(VAULT, JobScript(duration=60)))
    simulator.set_faults(FaultConfig(rate_429=1.0, retry_after_seconds=30, only_on_cue=1))
    with pytest.raises(ArmThrottled) as throttled:
        arm.get_job(job)
    assert throttled.value.retry_at > 0
    sent = simulator.stats()["total"]
    for _ in range(3):  # nothing leaves for this subscription inside the window
        with pytest.raises(ArmThrottled):
            arm.get_job(job)
        with pytest.raises(ArmThrottled):
            list(arm.list_jobs(vault))
    assert simulator.stats()["total"] == sent
    assert simulator.stats()["retry_after_violations"] == 0
    other = parse_vault_id(VAULT.replace("11111111-2222", "99999999-2222"))
    simulator.add_vault(other.id)
    assert list(arm.list_jobs(other)) == []  # another subscription is not blocked


def test_5xx_resets_and_truncated_bodies_are_retried(simulator, arm):
    job = JobRef.create(parse_vault_id(VAULT), simulator.add_job(VAULT, JobScript(duration=60)))
    for fault in (FaultConfig(rate_500=1.0, only_on_cue=2), FaultConfig(rate_503=1.0, only_on_cue=2),
                  FaultConfig(rate_reset=1.0, only_on_cue=2), FaultConfig(rate_truncated=1.0, only_on_cue=2)):
        simulator.set_faults(fault)
        assert arm.get_job(job)["name"] == job.job_id
    simulator.set_faults(FaultConfig(rate_503=1.0))
    with pytest.raises(ArmUnavailable):
        arm.get_job(job)


def test_requests_carry_the_token_and_a_wrong_token_is_refused(simulator):
    job = JobRef.create(parse_vault_id(VAULT), simulator.add_job(VAULT, JobScript(duration=60)))
    with pytest.raises(ArmUnauthorized) as refused:
        Reads(simulator.base_url, StaticToken("wrong")).get_job(job)
    assert refused.value.status == 401


def test_an_answer_slower_than_the_timeout_is_retried_then_given_up(simulator):
    job = JobRef.create(parse_vault_id(VAULT), simulator.add_job(VAULT, JobScript(duration=60)))
    arm = Reads(simulator.base_url, StaticToken("sim-token"), backoff_seconds=0.01, timeout=(1.0, 0.3))
    simulator.set_faults(FaultConfig(rate_slow=1.0, slow_seconds=1.0, only_on_cue=1))
    assert arm.get_job(job)["name"] == job.job_id  # the second attempt is answered in time
    simulator.set_faults(FaultConfig(rate_slow=1.0, slow_seconds=1.0))
    with pytest.raises(ArmUnavailable):
        arm.get_job(job)


def test_a_retry_after_one_instance_was_given_stops_the_others_through_the_table(simulator, tracker):
    job = JobRef.create(parse_vault_id(VAULT), simulator.add_job(VAULT, JobScript(duration=60)))
    first = Reads(simulator.base_url, StaticToken("sim-token"), board=tracker._throttle_board)
    second = Reads(simulator.base_url, StaticToken("sim-token"), board=tracker._throttle_board)
    simulator.set_faults(FaultConfig(rate_429=1.0, retry_after_seconds=30, only_on_cue=1))
    with pytest.raises(ArmThrottled):
        first.get_job(job)
    sent = simulator.stats()["total"]
    with pytest.raises(ArmThrottled):
        second.get_job(job)  # another instance: it learns the window from the table, sends nothing
    assert simulator.stats()["total"] == sent
    assert tracker._throttle_board.get_throttle(job.vault.subscription_id) is not None
