"""The poll strategy's pure pieces: its settings, the vault's shared schedule, the poll message, Resource Graph's
query and quota header (docs/reference.md, "How jobs are polled")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobs.arm.resource_graph import parse_quota_resets_after
from jobs.config import ConfigError, Settings
from jobs.domain.tracked_item import TrackedItem
from jobs.domain.tracking import next_vault_poll_at, vault_grid_after
from jobs.flows.poll_round import PollWork
from jobs.providers.recovery_services import ended_jobs_query

STORAGE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}
VAULT = ("/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg/providers/"
         "Microsoft.RecoveryServices/vaults/v1")
T0 = datetime(2026, 1, 5, 22, 0, 7, tzinfo=UTC)


def test_defaults_are_vault_rounds_with_resource_graph_and_small_rounds_in_the_timer() -> None:
    settings = Settings.from_env(STORAGE)
    assert (settings.poll_strategy, settings.resource_graph, settings.inline_poll_max) == ("vault", True, 100)
    assert settings.resource_graph_api_version == "2024-04-01"


@pytest.mark.parametrize(("name", "value", "says"), [
    ("JOBS_POLL_STRATEGY", "fast", "JOBS_POLL_STRATEGY must be one of vault, job, got 'fast'"),
    ("JOBS_RESOURCE_GRAPH", "yes", "JOBS_RESOURCE_GRAPH must be one of on, off, got 'yes'"),
    ("JOBS_RESOURCE_GRAPH_API_VERSION", "latest", "JOBS_RESOURCE_GRAPH_API_VERSION 'latest' is not an api-version"),
    ("JOBS_INLINE_POLL_MAX", "-1", "JOBS_INLINE_POLL_MAX must be at least 0"),
])
def test_a_wrong_strategy_setting_is_one_line_naming_it(name: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**STORAGE, name: value})
    assert says in str(info.value) and "\n" not in str(info.value)


def test_every_job_of_a_vault_falls_due_on_the_same_round_whatever_its_age() -> None:
    deadline = T0 + timedelta(days=3)
    young = TrackedItem("a", "job", VAULT, created_at=T0, deadline_at=deadline, status="InProgress")
    old = TrackedItem("b", "job", VAULT, created_at=T0 - timedelta(hours=5), deadline_at=deadline,
                      status="InProgress")
    at = {next_vault_poll_at(item, T0 + timedelta(seconds=s), 30, 300) for item in (young, old) for s in (1, 40)}
    assert len(at) == 1  # one grid point for both jobs, from either moment
    [point] = at
    assert T0 < point <= T0 + timedelta(seconds=300) and point.second % 30 == 0  # on a round of the timer


def test_a_job_azure_does_not_show_yet_is_asked_every_round() -> None:
    item = TrackedItem("a", "job", VAULT, created_at=T0, deadline_at=T0 + timedelta(days=3), unknown_since=T0)
    assert next_vault_poll_at(item, T0, 30, 300) == T0 + timedelta(seconds=30)


def test_vaults_spread_over_the_rounds_of_their_interval() -> None:
    vaults = [VAULT[:-1] + str(n) for n in range(40)]
    points = {vault_grid_after(v.lower(), T0, 30, 300) for v in vaults}
    assert len(points) > 5  # not every vault on the same round


def test_a_poll_message_names_the_jobs_resource_graph_saw_end() -> None:
    work = PollWork(VAULT, ("a", "b", "c"), "lease1", ended=("c",))
    assert PollWork.from_message(work.to_message()) == work
    assert PollWork.from_message('{"vaultId": "v", "trackingIds": ["a"], "lease": ""}').ended == ()


def test_the_query_names_each_job_and_the_ended_statuses_only() -> None:
    query = ended_jobs_query(["AAAAAAAA-0000-4000-8000-000000000001"])
    assert query.startswith("RecoveryServicesResources | where type =~ 'microsoft.recoveryservices/vaults/backupjobs'")
    assert "name in~ ('aaaaaaaa-0000-4000-8000-000000000001')" in query
    assert "'Completed', 'CompletedWithWarnings', 'Failed', 'Cancelled'" in query and "InProgress" not in query


@pytest.mark.parametrize(("header", "seconds"), [("00:00:05", 5), ("00:01:02", 62), (None, None), ("soon", None)])
def test_the_quota_reset_header_is_read_as_seconds(header: str | None, seconds: float | None) -> None:
    assert parse_quota_resets_after(header) == seconds
