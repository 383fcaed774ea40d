"""The Table Storage store on Azurite: ETags, subscribers, the running index, large resources."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from jobs.domain.references import JobRef
from jobs.domain.tracked_item import Subscriber, TrackedItem
from jobs.providers import parse_vault_id
from jobs.storage import ConcurrencyConflict
from tests.conftest import VAULT

JOB = JobRef.create(parse_vault_id(VAULT), "0f3c2b1a-0000-4000-8000-000000000042")


def _item(now: datetime) -> TrackedItem:
    return TrackedItem.for_job(JOB, now, now + timedelta(hours=1))


def test_only_one_of_two_writers_of_the_same_transition_wins(tracker):
    now = datetime.now(UTC)
    tracker._store.create(_item(now))
    first, second = tracker._store.get(JOB.key), tracker._store.get(JOB.key)
    first.result_status = second.result_status = "Completed"
    tracker._store.save(first)
    with pytest.raises(ConcurrencyConflict):
        tracker._store.save(second)
    assert tracker._store.get(JOB.key).result_status == "Completed"


def test_create_is_idempotent_and_keeps_the_first_state(tracker):
    now = datetime.now(UTC)
    item, created = tracker._store.create(_item(now))
    item.status = "InProgress"
    tracker._store.save(item)
    again, created_again = tracker._store.create(_item(now + timedelta(minutes=5)))
    assert created and not created_again
    assert again.status == "InProgress"
    assert again.created_at == item.created_at


def test_the_same_subscriber_merges_and_distinct_ones_do_not(tracker):
    tracker._store.create(_item(datetime.now(UTC)))
    for subscriber in (Subscriber(), Subscriber(), Subscriber(correlation_id="a"),
                       Subscriber(correlation_id="a", context={"x": 1, "y": 2}),
                       Subscriber(correlation_id="a", context={"y": 2, "x": 1})):
        tracker._store.add_subscriber(JOB.key, subscriber)
    keys = sorted(r.key for r in tracker._store.list_subscribers(JOB.key))
    assert len(keys) == 3 and "default" in keys


def test_a_job_resource_larger_than_a_table_property_round_trips(tracker):
    item, _ = tracker._store.create(_item(datetime.now(UTC)))
    item.resource = {"properties": {"extendedInfo": {"propertyBag": {f"k{i}": "v" * 200 for i in range(600)}}}}
    tracker._store.save(item)
    assert tracker._store.get(JOB.key).resource == item.resource


def test_the_running_index_lists_only_running_items(tracker):
    now = datetime.now(UTC)
    item, _ = tracker._store.create(_item(now))
    tracker._store.ensure_index(item, now)
    tracker._store.set_next_poll([(item.tracking_id, now + timedelta(seconds=30))])
    [entry] = tracker._store.list_index()
    assert entry.tracking_id == JOB.key and entry.next_poll_at > now
    tracker._store.delete_index(item.tracking_id)
    tracker._store.set_next_poll([(item.tracking_id, now)])  # a row gone meanwhile is not brought back
    assert tracker._store.list_index() == []


def test_the_due_query_returns_only_due_rows_and_the_rows_spread_over_partitions(tracker):
    now = datetime.now(UTC)
    vault = parse_vault_id(VAULT)
    items = [TrackedItem.for_job(JobRef.create(vault, f"0f3c2b1a-0000-4000-8000-{n:012d}"), now, now)
             for n in range(64)]
    for item in items:
        tracker._store.ensure_index(item, now)
    due = {item.tracking_id for item in items[::2]}
    tracker._store.set_next_poll(
        (item.tracking_id, now - timedelta(seconds=5) if item.tracking_id in due else now + timedelta(minutes=5))
        for item in items
    )
    table = tracker._store.table
    query, update = table.query_entities, table.update_entity
    read: list[dict] = []
    updated: list[dict] = []

    def counted_query(*args, **kwargs):
        for entity in query(*args, **kwargs):
            read.append(entity)
            yield entity

    table.query_entities = counted_query
    table.update_entity = lambda entity, **kwargs: updated.append(entity) or update(entity, **kwargs)
    assert {entry.tracking_id for entry in tracker._store.list_due(now)} == due
    assert {e["RowKey"] for e in read} == due  # the filter runs in the table: only due rows come back
    tracker._store.set_next_poll((tracking_id, now + timedelta(seconds=30)) for tracking_id in due)
    assert updated == []  # every transaction stayed within one partition (none fell back to one by one)
    assert tracker._store.list_due(now) == []
    table.query_entities, table.update_entity = query, update

    partitions = Counter(e["PartitionKey"] for e in table.query_entities(
        "PartitionKey ge 'index-running' and PartitionKey lt 'index-running.'"))
    assert sum(partitions.values()) == 64
    assert len(partitions) >= 12 and max(partitions.values()) <= 12, partitions
    assert all(p.startswith("index-running-") for p in partitions)
    assert len(tracker._store.list_index()) == 64


def test_rows_of_the_old_single_index_partition_are_still_polled_and_move_to_their_partition(tracker):
    now = datetime.now(UTC)
    item, _ = tracker._store.create(_item(now))
    tracker._store.table.create_entity({  # as the tracker before the spread index wrote it
        "PartitionKey": "index-running", "RowKey": item.tracking_id, "Kind": "job", "VaultId": item.vault_id,
        "SubscriptionId": item.vault.subscription_id, "NextPollAt": now - timedelta(seconds=1),
    })
    assert [e.tracking_id for e in tracker._store.list_index()] == [item.tracking_id]
    assert [e.tracking_id for e in tracker._store.list_due(now)] == [item.tracking_id]
    assert [e.tracking_id for e in tracker._store.list_index()] == [item.tracking_id]  # moved, not doubled
    old = list(tracker._store.table.query_entities("PartitionKey eq 'index-running'"))
    assert old == []
    tracker._store.set_next_poll([(item.tracking_id, now + timedelta(seconds=30))])
    assert tracker._store.list_due(now) == []
    tracker._store.delete_index(item.tracking_id)
    assert tracker._store.list_index() == []
