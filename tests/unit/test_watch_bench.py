"""The benchmark's watch workload (``python -m jobs bench --watch``): what docs/benchmark.md quotes for watched
vaults is measured on the tracker's own code against the simulator in process, and adds up."""

from __future__ import annotations

from devtools.bench import read_kind, run_watch_bench, watch_workload

VAULT = ("/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/rg/providers/"
         "Microsoft.RecoveryServices/vaults/v")


def test_reads_are_told_apart_by_what_they_list() -> None:
    assert read_kind(f"http://a{VAULT}/backupJobs?api-version=1&%24filter=startTime+eq+%27x%27") == "watch list"
    assert read_kind(f"http://a{VAULT}/backupJobs?api-version=1&%24filter=status+eq+%27InProgress%27") == \
        "running list"
    assert read_kind(f"http://a{VAULT}/backupJobs/abc?api-version=1") == "job get"
    assert read_kind("http://a/subscriptions/s/resourceGroups/rg/resources?api-version=2021-04-01") == "vault list"
    assert read_kind("http://a/providers/Microsoft.ResourceGraph/resources?api-version=1") == "resource graph"


def test_watched_vaults_cost_a_listing_a_minute_idle_and_every_job_is_reported_once() -> None:
    lines: list[str] = []
    result = run_watch_bench(vaults=4, echo=lines.append)
    _, workload = watch_workload(1, 4)
    assert result.jobs == len(workload.jobs) > 0
    assert result.unreported == 0 and result.duplicates == 0
    # Idle: one listing per vault per JOBS_WATCH_SECONDS (60 s), and the resource groups listed every 15 minutes.
    assert 59 <= result.idle_reads["watch list"] <= 61
    assert set(result.idle_reads) <= {"watch list", "vault list", "all"}
    # Busy: the same listings, plus what following the found jobs costs (a GET each, the rounds' lists).
    assert 59 <= result.busy_reads["watch list"] <= 61 and result.busy_reads["job get"] > 0
    # Within JOBS_WATCH_SECONDS and two rounds of a job's end (docs/reference.md, Watching vaults: Latency).
    assert max(result.latencies) <= 60 + 2 * 30
    assert any("ARM reads per vault per hour" in line for line in lines)
