"""``python -m jobs bench --scale``: one poll round over 10,000 running jobs in 500 vaults, with 0 and then 100,000
ended jobs in the table, on Azurite on this machine.

The question is whether a round's work follows the jobs that are due or the table's history. So the same round
runs twice on one table: first with only the running jobs, then after 100,000 ended jobs (state, subscriber and
ended-index rows, as the tracker writes them, ended over the retention window) were added and the running jobs
were made due again. Each time it reports the round's wall time, CPU time, peak Python memory (``tracemalloc``,
in a second, traced run of the same round, since tracing slows it down), the table requests it made (counted on
the wire, each page of a query and each batch transaction is one) and the poll messages it sent. The round is the
tracker's own ``run_round``: it reads the due rows of the 16 running-index partitions, leases them in batch
transactions, sends one poll message per vault (the fan-out Functions spreads over instances), and sweeps the ended
jobs past ``JOBS_RETENTION_DAYS`` (none here: they all ended within it). Then the tracker's poll worker handles a
sample of the round's messages (25 vaults of 20 jobs) against the Backup REST API simulator serving the running
jobs, and its cost per message is reported: one ``BackupJobs_List`` per vault, and the table requests of its leases,
states and schedule.

Seeding writes the index rows with batch transactions of 100, and each job's state and subscriber rows as two
upserts (each job is its own partition, and Azurite takes two single writes faster than a transaction of two), on 8
threads; the run prints how long it took. Azurite's in-memory table slows as it grows (measured: 140 ended jobs a
second at first, 50 at 30,000 rows), so 100,000 ended jobs take well over half an hour to seed on a small machine;
``--scale-ended`` chooses fewer. The rows are built by the job store's own entity mapping,
so they are the rows the tracker would have written.

``--scale-storage memory`` runs the same round on ``devtools.memory_storage`` instead (the benchmark's in-memory
table, which counts billable requests as Azure bills them): the tracker's own side of the round (its CPU time,
memory, requests and messages) at the full 100,000 ended jobs in seconds, without Azurite's cost of growing. The
poll workers are measured on Azurite only.
"""

from __future__ import annotations

import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.data.tables import TableClient, TableServiceClient, UpdateMode
from azure.storage.queue import QueueClient

from devtools.simulator import BackupSimulator, JobScript
from jobs.arm import ArmClient
from jobs.config import Settings
from jobs.domain.references import JobRef, VaultRef
from jobs.domain.tracked_item import Subscriber, TrackedItem
from jobs.flows.poll_round import PollWork, run_round
from jobs.flows.poll_worker import Poller
from jobs.providers import Providers, job_resource_id
from jobs.storage import JobStore, TableThrottleBoard
from jobs.storage.job_store import SUBSCRIBER_PREFIX, ended_index_keys, entity_from_item, index_partition

__all__ = ["ScaleResult", "main", "run_scale", "run_scale_in_memory", "seed_ended", "seed_running"]

POLL_SECONDS = 30
RETENTION_DAYS = 30.0
SEED_THREADS = 8


@dataclass
class ScaleResult:
    ended_rows: int
    running: int
    due: int
    messages: int
    wall_seconds: float
    cpu_seconds: float
    peak_mib: float
    table_requests: int
    # The poll workers on a sample of the round's messages, against the simulator: per message.
    worker_messages: int = 0
    worker_seconds: float = 0.0
    worker_table_requests: float = 0.0
    worker_arm_reads: float = 0.0

    def row(self) -> str:
        workers = (f"{self.worker_seconds:.2f} | {self.worker_table_requests:.1f} | {self.worker_arm_reads:.1f}"
                   if self.worker_messages else "- | - | -")
        return (f"| {self.ended_rows:,} | {self.running:,} | {self.due:,} | {self.messages:,} | "
                f"{self.wall_seconds:.2f} | {self.cpu_seconds:.2f} | {self.peak_mib:.1f} | {self.table_requests:,} | "
                f"{workers} |")


HEADER = ("| ended jobs in the table | running | due | poll messages | round wall s | round CPU s | round peak MiB | "
          "round table requests | worker s/message | worker table requests/message | worker ARM reads/message |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")


class _Counter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, _response: Any) -> None:
        self.count += 1


def vault_ids(vaults: int, subscriptions: int = 10) -> list[str]:
    ids = []
    for n in range(vaults):
        sub = n % subscriptions
        ids.append(f"/subscriptions/{sub:08x}-0000-4000-8000-{sub:012x}/resourceGroups/rg-{sub}/providers/"
                   f"Microsoft.RecoveryServices/vaults/scale-{n}")
    return ids


def _job(vault_id: str, created: datetime) -> TrackedItem:
    ref = JobRef.create(VaultRef.from_resource_id(vault_id), str(uuid.uuid4()))
    return TrackedItem.for_job(ref, created, created + timedelta(hours=72))


def _subscriber_row(item: TrackedItem, published: str | None) -> dict[str, Any]:
    subscriber = Subscriber(correlation_id=f"scale-{item.job_id}")
    row = {"PartitionKey": item.tracking_id, "RowKey": SUBSCRIBER_PREFIX + subscriber.key, "AddedAt": item.created_at,
           "CorrelationId": subscriber.correlation_id}
    if published:
        row["PublishedStatus"] = published
    return row


def _submit_all(table: TableClient, batches: Iterable[list[tuple[str, dict[str, Any]]]], threads: int) -> None:
    """Batches of one partition each; a batch of one or two rows goes as single upserts, which Azurite takes about
    twice as fast as a transaction (measured: 460 against 240 rows per second)."""

    def submit(batch: list[tuple[str, dict[str, Any]]]) -> None:
        if len(batch) <= 2:
            for _, row in batch:
                table.upsert_entity(row, mode=UpdateMode.REPLACE)
        else:
            table.submit_transaction(batch)

    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(submit, batches):
            pass


def _by_hundred(rows: list[dict[str, Any]]) -> Iterable[list[tuple[str, dict[str, Any]]]]:
    by_partition: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_partition.setdefault(row["PartitionKey"], []).append(row)
    for partition_rows in by_partition.values():
        for start in range(0, len(partition_rows), 100):
            yield [("upsert", row) for row in partition_rows[start : start + 100]]


def seed_running(table: TableClient, vaults: list[str], per_vault: int, now: datetime, *,
                 threads: int = SEED_THREADS) -> list[TrackedItem]:
    """``per_vault`` running jobs in each vault, due at ``now``: state and subscriber rows, running-index rows."""
    items = [_job(vault, now - timedelta(minutes=30)) for vault in vaults for _ in range(per_vault)]
    for item in items:
        item.status = "InProgress"
        item.last_polled_at = now - timedelta(minutes=3)
    _submit_all(table, ([("upsert", entity_from_item(item)), ("upsert", _subscriber_row(item, None))]
                        for item in items), threads)
    make_due(table, items, now - timedelta(seconds=1), threads=threads)
    return items


def make_due(table: TableClient, items: list[TrackedItem], at: datetime, *, threads: int = SEED_THREADS) -> None:
    """The running-index rows of ``items``, due at ``at`` and not leased (written whole, as ``ensure_index`` does)."""
    rows = [{"PartitionKey": index_partition(item.tracking_id), "RowKey": item.tracking_id, "Kind": item.kind,
             "VaultId": item.vault_id, "SubscriptionId": item.vault.subscription_id, "NextPollAt": at, "Lease": ""}
            for item in items]
    _submit_all(table, _by_hundred(rows), threads)


def seed_ended(table: TableClient, vaults: list[str], count: int, now: datetime, within_days: float, *,
               threads: int = SEED_THREADS) -> None:
    """``count`` ended jobs, their ends spread over the last ``within_days``: state, subscriber and ended-index rows."""
    ended_rows = []
    batches = []
    for n in range(count):
        ended = now - timedelta(days=within_days * (n + 0.5) / count)
        item = _job(vaults[n % len(vaults)], ended - timedelta(minutes=40))
        item.status = item.result_status = "Completed"
        item.ended_at = item.last_polled_at = ended
        item.resource = {"id": job_resource_id(item.job_ref()),
                         "properties": {"status": "Completed", "jobType": "AzureIaaSVMJob"}}
        batches.append([("upsert", entity_from_item(item)), ("upsert", _subscriber_row(item, "Completed"))])
        partition, row = ended_index_keys(ended, item.tracking_id)
        ended_rows.append({"PartitionKey": partition, "RowKey": row, "TrackingId": item.tracking_id})
    _submit_all(table, batches, threads)
    _submit_all(table, _by_hundred(ended_rows), threads)


def measure_round(table: TableClient, queue: QueueClient, counter: _Counter | _TransactionCount, now: datetime, *,
                  traced: bool, ended_rows: int) -> ScaleResult:
    """One poll round at ``now`` through the tracker's ``run_round``; its poll messages are sent to ``queue``."""
    sent = 0

    def send(text: str) -> None:
        nonlocal sent
        queue.send_message(text)
        sent += 1

    store = JobStore(table, lambda: now)
    board = TableThrottleBoard(table)
    before = counter.count
    if traced:
        tracemalloc.start()
    wall, cpu = time.perf_counter(), time.process_time()
    report = run_round(store, board, send, now, POLL_SECONDS, RETENTION_DAYS)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = 0.0
    if traced:
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return ScaleResult(ended_rows, report.running, report.due, sent, wall, cpu, peak, counter.count - before)


def measure_workers(table: TableClient, queue: QueueClient, counter: _Counter, simulator_url: str, now: datetime,
                    sample: int, result: ScaleResult) -> None:
    """The tracker's poll worker on ``sample`` of the round's messages (one vault each), reading the simulator."""
    settings = Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "JOBS_WEBHOOK_URLS": "",
                                  "ARM_ENDPOINT": simulator_url, "JOBS_ARM_TOKEN": "sim-token",
                                  "JOBS_POLL_SECONDS": str(POLL_SECONDS)})
    arm = ArmClient.from_settings(settings)
    poller = Poller(settings, JobStore(table, lambda: now), arm, Providers.from_settings(settings),
                    conclude=lambda item: 0, clock=lambda: now, monotonic=time.monotonic)
    messages = [m.content for m in queue.receive_messages(max_messages=sample, messages_per_page=min(32, sample))]
    messages = messages[:sample]
    before = counter.count
    wall = time.perf_counter()
    for text in messages:
        poller.poll(PollWork.from_message(text))
    wall = time.perf_counter() - wall
    count = max(1, len(messages))
    result.worker_messages = len(messages)
    result.worker_seconds = wall / count
    result.worker_table_requests = (counter.count - before) / count
    result.worker_arm_reads = arm.requests_sent / count


def run_scale(connection_string: str, *, vaults: int = 500, per_vault: int = 20, ended: int = 100_000,
              worker_sample: int = 25, say: Callable[[str], None] = print) -> list[ScaleResult]:
    """The round with 0 ended jobs, then with ``ended``; returns both results (untraced time, traced memory), with
    the poll workers measured on ``worker_sample`` of the round's messages against the simulator."""
    name = "scale" + uuid.uuid4().hex[:8]
    counter = _Counter()

    def clients() -> tuple[TableClient, QueueClient]:
        """Fresh clients for each phase: Azurite drops a keep-alive connection idle for 5 s, and the SDKs do not
        retry a POST (a batch, a message) that met a dropped connection."""
        return (TableClient.from_connection_string(connection_string, name, raw_response_hook=counter),
                QueueClient.from_connection_string(connection_string, f"{name}-poll"))

    TableServiceClient.from_connection_string(connection_string).create_table_if_not_exists(name)
    clients()[1].create_queue()
    ids = vault_ids(vaults)
    now = datetime.now(UTC)
    results = []
    started = time.perf_counter()
    items = seed_running(clients()[0], ids, per_vault, now)
    say(f"seeded {len(items):,} running jobs in {vaults:,} vaults in {time.perf_counter() - started:.0f} s")
    # Azure's side of the running jobs: started when the table says (half an hour before the round), running for a day
    with BackupSimulator(token="sim-token", wall_clock=lambda: now - timedelta(minutes=30)) as simulator:
        for item in items:
            simulator.add_job(item.vault_id, JobScript(job_id=item.job_id, duration=86_400))
        for ended_rows in (0, ended):
            if ended_rows:
                started = time.perf_counter()
                seed_ended(clients()[0], ids, ended_rows, now, RETENTION_DAYS - 1)
                say(f"seeded {ended_rows:,} ended jobs in {time.perf_counter() - started:.0f} s")
            timed = measure_round(*clients(), counter, now, traced=False, ended_rows=ended_rows)
            if worker_sample:
                measure_workers(*clients(), counter, simulator.base_url, now, worker_sample, timed)
            _reset(*clients(), items, now)
            traced = measure_round(*clients(), counter, now, traced=True, ended_rows=ended_rows)
            _reset(*clients(), items, now)
            timed.peak_mib = traced.peak_mib
            results.append(timed)
            say(timed.row())
    return results


def run_scale_in_memory(*, vaults: int = 500, per_vault: int = 20, ended: int = 100_000,
                        say: Callable[[str], None] = print) -> list[ScaleResult]:
    """As ``run_scale``, on the benchmark's in-memory table and queue (one thread: it is not thread-safe), without
    the poll workers: the tracker's side of the round with 0 and ``ended`` ended jobs."""
    from devtools.memory_storage import MemoryQueue, MemoryTable

    table, queue = MemoryTable(), MemoryQueue("scale-poll")
    counter = _TransactionCount(table)
    ids = vault_ids(vaults)
    now = datetime.now(UTC)
    items = seed_running(table, ids, per_vault, now, threads=1)
    results = []
    for ended_rows in (0, ended):
        if ended_rows:
            started = time.perf_counter()
            seed_ended(table, ids, ended_rows, now, RETENTION_DAYS - 1, threads=1)
            say(f"seeded {ended_rows:,} ended jobs in memory in {time.perf_counter() - started:.0f} s")
        timed = measure_round(table, queue, counter, now, traced=False, ended_rows=ended_rows)
        make_due(table, items, now - timedelta(seconds=1), threads=1)
        queue.messages.clear()
        timed.peak_mib = measure_round(table, queue, counter, now, traced=True, ended_rows=ended_rows).peak_mib
        make_due(table, items, now - timedelta(seconds=1), threads=1)
        queue.messages.clear()
        results.append(timed)
        say(timed.row())
    return results


class _TransactionCount:
    """What ``measure_round`` reads of a ``_Counter`` (``count``), from an in-memory table's own count of billable
    requests."""

    def __init__(self, table: Any) -> None:
        self._table = table

    @property
    def count(self) -> int:
        return int(self._table.transactions)


def _reset(table: TableClient, queue: QueueClient, items: list[TrackedItem], now: datetime) -> None:
    """Every running job due again and not leased, and the poll queue empty: the round can be run again."""
    make_due(table, items, now - timedelta(seconds=1))
    queue.clear_messages()


def main(*, vaults: int = 500, per_vault: int = 20, ended: int = 100_000, storage: str = "azurite") -> int:
    from devtools.azurite import Azurite

    where = "the benchmark's in-memory table" if storage == "memory" else "Azurite, in memory"
    print(f"one poll round over {vaults * per_vault:,} running jobs in {vaults:,} vaults, "
          f"with 0 and {ended:,} ended jobs in the table ({where})")
    say = lambda line: print(line, flush=True)  # noqa: E731
    if storage == "memory":
        results = run_scale_in_memory(vaults=vaults, per_vault=per_vault, ended=ended, say=say)
    else:
        with Azurite() as azurite:
            results = run_scale(azurite.connection_string, vaults=vaults, per_vault=per_vault, ended=ended, say=say)
    print()
    print(HEADER)
    for result in results:
        print(result.row())
    return 0
