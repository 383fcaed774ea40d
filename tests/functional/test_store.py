"""The Table Storage store on Azurite: ETags, subscribers, the running index, large resources."""

from __future__ import annotations

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
    tracker.store.create(_item(now))
    first, second = tracker.store.get(JOB.key), tracker.store.get(JOB.key)
    first.result_status = second.result_status = "Completed"
    tracker.store.save(first)
    with pytest.raises(ConcurrencyConflict):
        tracker.store.save(second)
    assert tracker.store.get(JOB.key).result_status == "Completed"


def test_create_is_idempotent_and_keeps_the_first_state(tracker):
    now = datetime.now(UTC)
    item, created = tracker.store.create(_item(now))
    item.status = "InProgress"
    tracker.store.save(item)
    again, created_again = tracker.store.create(_item(now + timedelta(minutes=5)))
    assert created and not created_again
    assert again.status == "InProgress"
    assert again.created_at == item.created_at


def test_the_same_subscriber_merges_and_distinct_ones_do_not(tracker):
    tracker.store.create(_item(datetime.now(UTC)))
    for subscriber in (Subscriber(), Subscriber(), Subscriber(correlation_id="a"),
                       Subscriber(correlation_id="a", context={"x": 1, "y": 2}),
                       Subscriber(correlation_id="a", context={"y": 2, "x": 1})):
        tracker.store.add_subscriber(JOB.key, subscriber)
    keys = sorted(r.key for r in tracker.store.list_subscribers(JOB.key))
    assert len(keys) == 3 and "default" in keys


def test_a_job_resource_larger_than_a_table_property_round_trips(tracker):
    item, _ = tracker.store.create(_item(datetime.now(UTC)))
    item.resource = {"properties": {"extendedInfo": {"propertyBag": {f"k{i}": "v" * 200 for i in range(600)}}}}
    tracker.store.save(item)
    assert tracker.store.get(JOB.key).resource == item.resource


def test_the_running_index_lists_only_running_items(tracker):
    now = datetime.now(UTC)
    item, _ = tracker.store.create(_item(now))
    tracker.store.ensure_index(item, now)
    tracker.store.set_next_poll([(item.tracking_id, now + timedelta(seconds=30))])
    [entry] = tracker.store.list_index()
    assert entry.tracking_id == JOB.key and entry.next_poll_at > now
    tracker.store.delete_index(item.tracking_id)
    tracker.store.set_next_poll([(item.tracking_id, now)])  # a row gone meanwhile is not brought back
    assert tracker.store.list_index() == []
