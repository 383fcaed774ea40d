"""``bench --scale`` on a tiny size, on Azurite: the seeding writes rows the tracker reads as its own, and the round's
report counts what a user would check (due jobs, one poll message per vault, table requests that do not grow with
the ended jobs in the table)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from azure.data.tables import TableClient, TableServiceClient

from devtools import scale_bench
from jobs.storage import JobStore


def test_the_round_reads_the_same_with_or_without_history(azurite) -> None:
    lines: list[str] = []
    results = scale_bench.run_scale(azurite.connection_string, vaults=3, per_vault=4, ended=30, worker_sample=2,
                                     say=lines.append)
    assert [r.ended_rows for r in results] == [0, 30]
    for result in results:
        assert (result.running, result.due, result.messages) == (12, 12, 3)  # one message per vault
        assert result.wall_seconds > 0 and result.cpu_seconds > 0 and result.peak_mib > 0
        # The workers on the sample: one BackupJobs_List per vault covers its 4 running jobs.
        assert result.worker_messages == 2 and result.worker_arm_reads == 1 and result.worker_table_requests > 0
    assert results[0].table_requests == results[1].table_requests > 0
    assert any(line.startswith("seeded 30 ended jobs in ") for line in lines)


def test_seeded_rows_are_the_trackers_own(azurite) -> None:
    TableServiceClient.from_connection_string(azurite.connection_string).create_table("scaleseedcheck")
    table = TableClient.from_connection_string(azurite.connection_string, "scaleseedcheck")
    now = datetime.now(UTC)
    vaults = scale_bench.vault_ids(2)
    running = scale_bench.seed_running(table, vaults, 2, now)
    scale_bench.seed_ended(table, vaults, 5, now, within_days=3)
    store = JobStore(table, lambda: now)
    assert sorted(e.tracking_id for e in store.list_due(now)) == sorted(i.tracking_id for i in running)
    items = list(store.list_items())
    assert sum(1 for i in items if i.ended) == 5 and sum(1 for i in items if not i.ended) == 4
    assert all(len(store.list_subscribers(i.tracking_id)) == 1 for i in items)
    assert store.sweep_ended(now - timedelta(days=2)) >= 1  # the ended index points at them: retention finds them
