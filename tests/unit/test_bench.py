"""The benchmark's parts: the in-memory table keeps the store's semantics, the simulator served in process (through
the ARM transport's seam, on the bench's clock) keeps the workload's lifecycles and ARM's throttling, and both
strategies follow every job to its end, counted the way docs/benchmark.md says."""

from __future__ import annotations

from datetime import timedelta

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from devtools.bench import (
    BUCKET_SIZE,
    ENDPOINT,
    GRAPH,
    T0,
    TOKEN,
    BenchJob,
    SimulatedAzure,
    VirtualClock,
    Workload,
    burst_workload,
    run_fixed_loop,
    run_tracker,
    spread_workload,
)
from devtools.memory_storage import MemoryTable
from jobs.arm import ArmNotFound, StaticToken
from jobs.arm.transport import ArmTransport, Throttle
from jobs.providers.recovery_services import DEFAULT_API_VERSION

VAULT = (
    "/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/rg/providers/Microsoft.RecoveryServices"
    "/vaults/vault"
)
JOB = "11111111-1111-4111-8111-111111111111"


def test_the_memory_table_keeps_etags_conflicts_and_filters() -> None:
    table = MemoryTable()
    created = table.create_entity({"PartitionKey": "p", "RowKey": "r", "N": 1})
    with pytest.raises(ResourceExistsError):
        table.create_entity({"PartitionKey": "p", "RowKey": "r"})
    table.update_entity({"PartitionKey": "p", "RowKey": "r", "N": 2}, mode=UpdateMode.MERGE)
    with pytest.raises(HttpResponseError) as stale:
        table.update_entity({"PartitionKey": "p", "RowKey": "r", "N": 3}, mode=UpdateMode.REPLACE,
                            etag=created["etag"], match_condition=MatchConditions.IfNotModified)
    assert stale.value.status_code == 412
    assert table.get_entity("p", "r")["N"] == 2
    with pytest.raises(ResourceNotFoundError):
        table.get_entity("p", "missing")
    for n in range(5):
        table.create_entity({"PartitionKey": f"q-{n % 2}", "RowKey": f"{n}", "At": n})
    rows = table.query_entities("PartitionKey ge @lo and PartitionKey lt @hi and At le @at",
                                parameters={"lo": "q", "hi": "q.", "at": 2})
    assert sorted(e["RowKey"] for e in rows) == ["0", "1", "2"]
    with pytest.raises(ResourceNotFoundError):  # a transaction is all or nothing
        table.submit_transaction([("delete", {"PartitionKey": "q-0", "RowKey": "0"}),
                                  ("delete", {"PartitionKey": "q-0", "RowKey": "missing"})])
    assert table.get_entity("q-0", "0")["At"] == 0


def test_the_simulated_azure_hides_a_new_job_then_ends_it_and_throttles_a_subscription() -> None:
    clock = VirtualClock(T0)
    later = BenchJob(VAULT, "22222222-2222-4222-8222-222222222222", "AzureIaaSVMJob", "Backup",
                     T0 + timedelta(hours=1), T0 + timedelta(hours=2), "Completed", T0 + timedelta(hours=1))
    job = BenchJob(VAULT, JOB, "AzureIaaSVMJob", "Backup", T0, T0 + timedelta(minutes=10), "Failed",
                   T0 + timedelta(seconds=30))
    azure = SimulatedAzure(clock, [job, later])
    arm = ArmTransport(StaticToken(TOKEN), http=azure.http)
    url = f"{ENDPOINT}{VAULT}/backupJobs/{JOB}?api-version={DEFAULT_API_VERSION}"
    with pytest.raises(ArmNotFound):
        arm.get(url)
    clock.now = T0 + timedelta(minutes=1)
    assert arm.get(url)["properties"]["status"] == "InProgress"
    with pytest.raises(ArmNotFound):  # a job of the workload that has not started yet
        arm.get(url.replace(JOB, later.job_id))
    clock.now = T0 + timedelta(minutes=10)
    resource = arm.get(url)
    assert resource["properties"]["status"] == "Failed"
    assert resource["properties"]["endTime"].startswith("2026-01-05T22:10:00")  # on the bench's wall clock
    answers = [arm.get(url) for _ in range(BUCKET_SIZE)]  # no time passes: the bucket runs dry
    assert isinstance(answers[-1], Throttle) and not isinstance(answers[0], Throttle)
    assert [read.throttled for read in azure.reads].count(True) == 1
    assert len(azure.reads) == 4 + BUCKET_SIZE and {read.subscription_id for read in azure.reads} == {
        VAULT.split("/")[2]}


def _small(workload: Workload, count: int) -> Workload:
    return Workload(workload.name, workload.jobs[:count])


def test_the_fixed_loop_reads_every_poll_period_until_the_end() -> None:
    job = BenchJob(VAULT, JOB, "AzureIaaSVMJob", "Backup", T0, T0 + timedelta(seconds=95), "Completed", T0)
    result = run_fixed_loop(Workload("one", [job]), poll_seconds=30)
    assert result.reads == 5  # at 0, 30, 60, 90 (still running) and 120 s (ended at 95 s)
    assert result.latencies == [25.0]


@pytest.mark.parametrize("make", [spread_workload, burst_workload])
def test_both_strategies_follow_every_job_to_its_end(make) -> None:
    workload = _small(make(3), 40)
    for result in (run_fixed_loop(workload), run_tracker(workload, hop_seconds=1),
                   run_tracker(workload, hop_seconds=1, settings={"JOBS_RESOURCE_GRAPH": "off"})):
        visible = [job for job in workload.jobs if job.visible_at is not None]
        assert result.unfinished == 0
        assert len(result.latencies) == len(visible)
        assert all(latency >= 0 for latency in result.latencies)
        assert result.reads >= len(visible)  # at least the final read of each


def test_the_simulated_resource_graph_shows_an_ended_job_only_after_its_lag() -> None:
    from jobs.providers.recovery_services import ended_jobs_query

    clock = VirtualClock(T0)
    job = BenchJob(VAULT, JOB, "AzureIaaSVMJob", "Backup", T0, T0 + timedelta(minutes=10), "Failed", T0)
    azure = SimulatedAzure(clock, [job], graph_lag_seconds=120)
    arm = ArmTransport(StaticToken(TOKEN), http=azure.http)
    body = {"subscriptions": [VAULT.split("/")[2]], "query": ended_jobs_query([JOB])}
    url = f"{ENDPOINT}/providers/Microsoft.ResourceGraph/resources?api-version=2024-04-01"

    def shown(minutes: float) -> list[dict]:
        clock.now = T0 + timedelta(minutes=minutes)
        answer, headers = arm.post_query(url, body)
        assert int(headers["x-ms-user-quota-remaining"]) >= 0
        assert not isinstance(answer, Throttle)
        return answer["data"]

    assert shown(11) == []  # ended a minute ago, shown two minutes late
    assert [row["status"] for row in shown(12)] == ["Failed"]
    assert [read.subscription_id for read in azure.reads] == [GRAPH, GRAPH]  # counted as reads, not a bucket's


@pytest.mark.parametrize("lag", [0.0, 1e9])
def test_the_tracker_finds_every_job_whatever_resource_graphs_lag(lag: float) -> None:
    workload = _small(spread_workload(3), 30)
    result = run_tracker(workload, hop_seconds=1, graph_lag=lag)
    assert result.unfinished == 0
    assert len(result.latencies) == sum(1 for job in workload.jobs if job.visible_at is not None)


def test_the_scale_round_in_memory_costs_the_same_requests_with_ended_history():
    from devtools.scale_bench import run_scale_in_memory

    lines: list[str] = []
    empty, with_history = run_scale_in_memory(vaults=6, per_vault=3, ended=400, say=lines.append)
    assert (empty.ended_rows, with_history.ended_rows) == (0, 400)
    assert empty.due == with_history.due == 18
    assert empty.messages == with_history.messages == 6  # one poll message per vault
    assert empty.table_requests == with_history.table_requests  # the round never reads the ended history
    assert with_history.row().endswith("| - | - | - |")  # no poll workers in memory
