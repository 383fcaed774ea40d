"""The rows the HTTP API adds to the table, on Azurite: status URL capabilities (a hash, never the token) and the
callback index (``DELETE /api/jobs?callbackUrl=`` finds subscribers in one partition), removed with their job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobs.domain.references import JobRef
from jobs.domain.tracked_item import Subscriber, TrackedItem
from jobs.http_api import token_hash
from jobs.providers import parse_vault_id
from jobs.storage.job_store import callback_partition
from tests.conftest import VAULT

VAULT_REF = parse_vault_id(VAULT)
CALLBACK = "https://prod-1.westeurope.logic.azure.com/workflows/x/runs/y/actions/Wait/run?sp=a&sv=1.0&sig=secret"


def _job(store, job_id: str, ended_days_ago: float | None = None) -> str:
    now = datetime.now(UTC)
    item = TrackedItem.for_job(JobRef.create(VAULT_REF, job_id), now, now + timedelta(hours=1))
    if ended_days_ago is not None:
        item.result_status, item.ended_at = "Completed", now - timedelta(days=ended_days_ago)
    store.create(item)
    return item.tracking_id


def _all_rows(tracker) -> list[dict]:
    return list(tracker._store.table.list_entities())


def test_a_callback_is_found_across_jobs_and_dropped_with_its_subscriber(tracker):
    store = tracker._store
    first = _job(store, "0f3c2b1a-0000-4000-8000-000000000001")
    second = _job(store, "0f3c2b1a-0000-4000-8000-000000000002")
    subscriber = Subscriber(callback_url=CALLBACK)
    store.add_subscriber(first, subscriber)
    store.add_subscriber(second, subscriber)
    store.add_subscriber(second, Subscriber(correlation_id="x"))  # no callback: no index row
    assert sorted(store.list_callback_subscriptions(CALLBACK)) == sorted(
        [(first, subscriber.key), (second, subscriber.key)])
    assert store.list_callback_subscriptions(CALLBACK + "x") == []
    rows = [r for r in _all_rows(tracker) if r["PartitionKey"] == callback_partition(CALLBACK)]
    assert rows and all("secret" not in str(value) for row in rows for value in row.values())  # a hash, no URL
    assert store.remove_subscriber(first, subscriber.key)
    assert store.list_callback_subscriptions(CALLBACK) == [(second, subscriber.key)]
    store.delete(second)
    assert store.list_callback_subscriptions(CALLBACK) == []
    assert [r for r in _all_rows(tracker) if r["PartitionKey"] == second] == []


def test_a_capability_row_holds_the_tokens_hash_only_and_goes_with_the_sweep(tracker):
    store = tracker._store
    tracking_id = _job(store, "0f3c2b1a-0000-4000-8000-000000000003", ended_days_ago=40)
    store.add_subscriber(tracking_id, Subscriber(callback_url=CALLBACK))
    token = "A" * 43
    store.add_capability(tracking_id, token_hash(token), "default")
    assert store.get_capability(tracking_id, token_hash(token)) == (token_hash(token), "default")
    assert store.get_capability(tracking_id, token_hash("B" * 43)) is None
    assert all(token not in str(value) for row in _all_rows(tracker) for value in row.values())
    assert store.sweep_ended(datetime.now(UTC) - timedelta(days=30)) == 1
    assert [r for r in _all_rows(tracker) if r["PartitionKey"] in (tracking_id, callback_partition(CALLBACK))] == []
