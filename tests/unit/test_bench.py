"""The benchmark's parts: the in-memory table keeps the store's semantics, the simulator served in process (through
the ARM transport's seam, on the bench's clock) keeps the workload's lifecycles and ARM's throttling, and both
strategies follow every job to its end, counted the way docs/benchmark.md says."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from devtools.bench import (
    BUCKET_SIZE,
    ENDPOINT,
    GRAPH,
    STRATEGIES,
    T0,
    TOKEN,
    BenchJob,
    BenchResult,
    SimulatedAzure,
    VirtualClock,
    Workload,
    burst_workload,
    judge,
    judgements,
    run_fixed_loop,
    run_tracker,
    spread_workload,
)
from devtools.memory_storage import MemoryTable
from jobs.arm import ArmForbidden, ArmNotFound, StaticToken
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


GRAPH_URL = f"{ENDPOINT}/providers/Microsoft.ResourceGraph/resources?api-version=2024-04-01"
EVERY_STATUS = ("RecoveryServicesResources | where type =~ 'microsoft.recoveryservices/vaults/backupjobs' "
                f"| where name in~ ('{JOB}') | project id, name, status = tostring(properties.status)")


def test_a_resource_graph_that_never_shows_an_end_shows_the_job_running_ever_after() -> None:
    from jobs.providers.recovery_services import ended_jobs_query

    clock = VirtualClock(T0)
    job = BenchJob(VAULT, JOB, "AzureIaaSVMJob", "Restore", T0, T0 + timedelta(minutes=10), "Cancelled", T0,
                   cancelling_from=T0 + timedelta(minutes=9))
    azure = SimulatedAzure(clock, [job], graph_lag_seconds=math.inf)
    arm = ArmTransport(StaticToken(TOKEN), http=azure.http)
    subscriptions = [VAULT.split("/")[2]]

    def rows(query: str, minutes: float) -> list[dict]:
        clock.now = T0 + timedelta(minutes=minutes)
        answer, _ = arm.post_query(GRAPH_URL, {"subscriptions": subscriptions, "query": query})
        assert not isinstance(answer, Throttle)
        return answer["data"]

    assert [row["status"] for row in rows(EVERY_STATUS, 1)] == ["InProgress"]  # shown while it runs, no lag
    assert [row["status"] for row in rows(EVERY_STATUS, 9.5)] == ["Cancelling"]
    assert [row["status"] for row in rows(EVERY_STATUS, 24 * 60)] == ["Cancelling"]  # a day after its end
    assert rows(ended_jobs_query([JOB]), 24 * 60) == []  # the tracker's query: never an end


def test_a_refusing_resource_graph_answers_every_query_403_without_spending_its_quota() -> None:
    from jobs.providers.recovery_services import ended_jobs_query

    clock = VirtualClock(T0)
    job = BenchJob(VAULT, JOB, "AzureIaaSVMJob", "Backup", T0, T0 + timedelta(minutes=10), "Completed", T0)
    azure = SimulatedAzure(clock, [job], graph_refuse=403)
    arm = ArmTransport(StaticToken(TOKEN), http=azure.http)
    body = {"subscriptions": [VAULT.split("/")[2]], "query": ended_jobs_query([JOB])}
    clock.now = T0 + timedelta(minutes=11)
    for _ in range(20):  # more than the quota of 15 in 5 s: still 403, never 429
        with pytest.raises(ArmForbidden):
            arm.post_query(GRAPH_URL, body)
    assert [read.throttled for read in azure.reads] == [False] * 20
    assert azure.simulator.resource_graph.queries == 0
    azure.simulator.resource_graph.refuse_status = None  # the caller is granted access: answered at once
    answer, headers = arm.post_query(GRAPH_URL, body)
    assert not isinstance(answer, Throttle) and [row["status"] for row in answer["data"]] == ["Completed"]
    assert headers["x-ms-user-quota-remaining"] == "14"


@pytest.mark.parametrize(("lag", "refuse"), [(0.0, None), (1e9, None), (math.inf, None), (0.0, 403)])
def test_the_tracker_finds_every_job_whatever_resource_graphs_lag(lag: float, refuse: int | None) -> None:
    workload = _small(spread_workload(3), 30)
    result = run_tracker(workload, hop_seconds=1, graph_lag=lag, graph_refuse=refuse)
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


def _result(workload: str, strategy: str, reads: int, p95: float, throttled: int = 0, unfinished: int = 0
            ) -> BenchResult:
    return BenchResult(workload, strategy, jobs=100, reads=reads, throttled=throttled, worst_rate=0.0,
                       latencies=[p95] * 100, unfinished=unfinished)


def test_the_goal_bounds_p95_by_one_period_and_reads_by_workload_and_detector() -> None:
    loop = _result("spread", "fixed-loop", 3000, 29)
    at_bound = judge(_result("spread", "r", 300, 59), loop, fresh=True, poll_seconds=30)
    assert at_bound.verdict == "PASS" and at_bound.reads_ratio == 0.1 and at_bound.p95_over == 30
    assert judge(_result("spread", "r", 301, 59), loop, fresh=True, poll_seconds=30).misses == ("reads",)
    assert judge(_result("spread", "r", 300, 60), loop, fresh=True, poll_seconds=30).misses == ("p95",)
    assert judge(_result("spread", "r", 1000, 29), loop, fresh=False, poll_seconds=30).verdict == "PASS"  # a third
    assert judge(_result("spread", "r", 1001, 29), loop, fresh=False, poll_seconds=30).misses == ("reads",)
    burst_loop = _result("burst", "fixed-loop", 2000, 2000)
    assert judge(_result("burst", "r", 100, 29), burst_loop, fresh=False, poll_seconds=30).verdict == "PASS"
    assert judge(_result("burst", "r", 101, 29), burst_loop, fresh=True, poll_seconds=30).misses == ("reads",)
    assert judge(_result("burst", "r", 1, 29, throttled=1, unfinished=2), burst_loop, fresh=True,
                 poll_seconds=30).verdict == "MISS: 429s, unfinished"
    assert judge(BenchResult("spread", "r", 100, 1, 0, 0.0, []), loop, fresh=True, poll_seconds=30).misses == (
        "p95",)  # no result at all


def test_the_rows_cover_every_detector_case_each_with_its_reads_goal() -> None:
    fresh = {name: strategy.fresh for name, strategy in STRATEGIES.items() if not strategy.loop}
    assert fresh == {
        "tracker, Resource Graph lag 0": True, "tracker, Resource Graph lag 1 period": True,
        "tracker, Resource Graph lag 2 periods": False, "tracker, Resource Graph lag 10 periods": False,
        "tracker, Resource Graph never shows an end": False, "tracker, Resource Graph refuses (403)": False,
        "vault rounds, no Resource Graph": False, "job schedule, no Resource Graph": False,
        "tracker, Resource Graph never shows an end, no end hints": False,
        "vault rounds, no Resource Graph, end hints with estimates": False,
        "vault rounds, no Resource Graph, no end hints": False,
        "vault rounds, no Resource Graph, Backup vaults listed": False,  # the Backup vault workload's what-if
    }
    assert STRATEGIES["vault rounds, no Resource Graph, no end hints"].settings["JOBS_END_HINTS"] == "off"
    assert [STRATEGIES[f"tracker, Resource Graph lag {n}"].graph_lag_seconds(30) for n in
            ("0", "1 period", "2 periods", "10 periods")] == [0, 30, 60, 300]
    assert STRATEGIES["tracker, Resource Graph never shows an end"].graph_lag_seconds(30) == math.inf
    assert STRATEGIES["tracker, Resource Graph refuses (403)"].graph_refuse == 403
    one = Workload("spread", [BenchJob(VAULT, JOB, "AzureIaaSVMJob", "Backup", T0, T0 + timedelta(seconds=90),
                                       "Completed", T0)])
    ran = {name: STRATEGIES[name].run(name, one, 30, 1.0) for name in (
        "tracker, Resource Graph lag 10 periods", "tracker, Resource Graph never shows an end",
        "tracker, Resource Graph refuses (403)")}
    assert [(r.strategy, r.graph_lag_seconds, r.graph_refuse, r.unfinished) for r in ran.values()] == [
        ("tracker, Resource Graph lag 10 periods", 300, None, 0),
        ("tracker, Resource Graph never shows an end", math.inf, None, 0),
        ("tracker, Resource Graph refuses (403)", 0, 403, 0)]
    loop = _result("spread", "fixed-loop", 3000, 29)
    rows = judgements([loop, _result("spread", "tracker, Resource Graph lag 1 period", 310, 40),
                       _result("spread", "tracker, Resource Graph lag 2 periods", 310, 40)], poll_seconds=30)
    assert [(row[1], row[3], row[-1]) for row in rows] == [
        ("tracker, Resource Graph lag 1 period", "<= 0.100", "MISS: reads"),
        ("tracker, Resource Graph lag 2 periods", "<= 0.333", "PASS")]


def test_the_repeat_workload_backs_the_same_vms_up_again_each_about_as_long_as_before() -> None:
    from devtools.bench import WORKLOADS

    jobs = WORKLOADS["repeat"](1).jobs
    runs: dict[str, list[BenchJob]] = {}
    for job in jobs:
        runs.setdefault(job.entity or "", []).append(job)
    assert len(jobs) == 1000 and len(runs) == 250 and {len(r) for r in runs.values()} == {4}
    for entity_jobs in runs.values():
        assert len({job.vault_id for job in entity_jobs}) == 1  # one VM, one vault
        seconds = [(job.ended_at - job.started_at).total_seconds() for job in entity_jobs]
        assert max(seconds) / min(seconds) < 2.5  # about as long as its earlier runs
    assert all(0.2 < job.estimate_error < 5 for job in jobs)
    assert len({job.estimate_error for job in jobs}) == len(jobs)  # each job's estimate off by its own factor


def test_the_backup_vault_workload_follows_every_job_and_its_what_if_lists_the_vaults() -> None:
    from devtools.bench import BACKUP_VAULT_STRATEGIES, backupvault_workload

    workload = backupvault_workload(1)
    assert len(workload.jobs) == 200 and len(workload.history) == 1200
    assert all("Microsoft.DataProtection/backupVaults" in job.vault_id for job in workload.jobs)
    vaults = {job.vault_id for job in workload.jobs[:2]}
    small = Workload("backupvault", workload.jobs[:2], [j for j in workload.history if j.vault_id in vaults][:60])
    listed = STRATEGIES[BACKUP_VAULT_STRATEGIES[-1]].run(BACKUP_VAULT_STRATEGIES[-1], small, 30, 1.0)
    per_job = STRATEGIES["vault rounds, no Resource Graph"].run("vault rounds, no Resource Graph", small, 30, 1.0)
    assert listed.unfinished == per_job.unfinished == 0
    assert listed.reads != per_job.reads  # the what-if row does list (Jobs_List pages), the default never does
