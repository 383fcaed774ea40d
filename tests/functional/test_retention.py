"""Retention on Azurite: ended jobs leave the table after ``JOBS_RETENTION_DAYS``, swept a bounded number per
poll round from the ended-day index; running jobs and younger ended jobs stay. The clock is the only thing faked."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.simulator import JobScript
from jobs.config import Settings
from jobs.domain.references import JobRef
from jobs.domain.tracked_item import Subscriber, TrackedItem
from jobs.flows.poll_round import run_round
from jobs.flows.subscriptions import CapabilityRefused
from jobs.providers import parse_vault_id
from jobs.storage.job_store import DELIVERY_SLACK
from jobs.tracker import Tracker
from tests.conftest import VAULT, ManualClock, drain, poll_once, tracker_with_clock

START = datetime(2026, 1, 10, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class TableCalls:
    """Counts the requests a TableClient makes and the entities its queries return (the real client, wrapped)."""

    def __init__(self, table: Any) -> None:
        self.requests: Counter[str] = Counter()
        self.entities_read = 0
        for name in ("get_entity", "create_entity", "upsert_entity", "update_entity", "delete_entity",
                     "submit_transaction"):
            setattr(table, name, self._counted(name, getattr(table, name)))
        query = table.query_entities

        def query_entities(*args: Any, **kwargs: Any) -> Iterator[Any]:
            self.requests["query_entities"] += 1
            for entity in query(*args, **kwargs):
                self.entities_read += 1
                yield entity

        table.query_entities = query_entities

    def _counted(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.requests[name] += 1
            return method(*args, **kwargs)

        return call

    def reset(self) -> None:
        self.requests.clear()
        self.entities_read = 0


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def timed_tracker(env: dict[str, str], clock: Clock) -> Tracker:
    tracker = Tracker(Settings.from_env(env), clock=clock)
    tracker.setup()
    return tracker


def _job(number: int) -> JobRef:
    return JobRef.create(parse_vault_id(VAULT), f"0f3c2b1a-0000-4000-8000-{number:012d}")


def _start(tracker: Tracker, number: int, subscribers: int = 2) -> TrackedItem:
    """A job put on record as the intake does: state row, subscribers, running index row."""
    now = tracker._clock()
    item, _ = tracker._store.create(TrackedItem.for_job(_job(number), now, now + timedelta(hours=72)))
    tracker._store.ensure_index(item, now)
    for index in range(subscribers):
        tracker._store.add_subscriber(item.tracking_id, Subscriber(correlation_id=f"c{number}-{index}"))
    return item


def _end(tracker: Tracker, item: TrackedItem, status: str = "Completed") -> None:
    """The job ends as the poll worker ends it (saved, ETag-guarded), then is published by the publisher."""
    item = tracker._store.get(item.tracking_id)
    item.status = item.result_status = status
    item.ended_at = tracker._clock()
    tracker._store.save(item)
    assert tracker._publisher.finish(item) == len(tracker._store.list_subscribers(item.tracking_id))


def _partition(tracker: Tracker, tracking_id: str) -> list[str]:
    return sorted(e["RowKey"] for e in tracker._store.table.query_entities(
        "PartitionKey eq @pk", parameters={"pk": tracking_id}))


def test_an_ended_job_older_than_the_retention_is_swept_a_younger_one_and_a_running_one_are_not(
        timed_tracker, clock):
    tracker = timed_tracker
    assert tracker.settings.retention_days == 30
    old = _start(tracker, 1)
    running = _start(tracker, 2)  # started 40 days before the sweep: older than the retention, but running
    clock.now = START + timedelta(hours=1)
    _end(tracker, old, "Failed")
    clock.now = START + timedelta(days=26)
    young = _start(tracker, 3)
    _end(tracker, young)
    assert len(_partition(tracker, old.tracking_id)) == 3  # state + 2 subscribers

    clock.now = START + timedelta(days=30, hours=2)  # the old job ended 30 days and 1 hour ago
    report = tracker.run_poll_round()
    assert report.swept == 1
    assert _partition(tracker, old.tracking_id) == []
    assert tracker._store.get(old.tracking_id) is None
    assert len(_partition(tracker, young.tracking_id)) == 3
    assert tracker._store.get(running.tracking_id) is not None
    assert [e.tracking_id for e in tracker._store.list_index()] == [running.tracking_id]
    assert tracker.run_poll_round().swept == 0  # nothing left to sweep, and nothing done twice

    clock.now = START + timedelta(days=57)  # the young one is 31 days ended now
    assert tracker.run_poll_round().swept == 1
    assert _partition(tracker, young.tracking_id) == []
    assert tracker._store.get(running.tracking_id) is not None


def test_each_round_sweeps_a_bounded_number_of_jobs_and_reads_only_what_it_sweeps(timed_tracker, clock):
    tracker = timed_tracker
    old = [_start(tracker, number, subscribers=1) for number in range(130)]
    for item in old:
        _end(tracker, item)
    clock.now = START + timedelta(days=20)
    young = [_start(tracker, 1000 + number, subscribers=1) for number in range(40)]
    for item in young:
        _end(tracker, item)
    running = [_start(tracker, 2000 + number, subscribers=1) for number in range(5)]
    clock.now = START + timedelta(days=31)

    calls = TableCalls(tracker._store.table)
    first = tracker.run_poll_round()
    assert first.swept == 100
    # Per swept job: its ended-index row, its state and subscriber rows, a look at the running index, one
    # transaction; plus the round's own reads. Nothing of the 40 younger ended jobs is read.
    assert calls.entities_read <= 100 * 3 + len(running) + 20, calls.entities_read
    assert sum(calls.requests.values()) <= 100 * 5 + 60, calls.requests
    calls.reset()
    second = tracker.run_poll_round()
    assert second.swept == 30
    assert calls.entities_read <= 30 * 3 + len(running) + 20, calls.entities_read
    assert tracker.run_poll_round().swept == 0
    assert all(tracker._store.get(item.tracking_id) is None for item in old)
    assert all(tracker._store.get(item.tracking_id) is not None for item in young + running)
    assert sorted(e.tracking_id for e in tracker._store.list_index()) == sorted(i.tracking_id for i in running)


def test_an_ended_job_whose_results_are_not_out_yet_is_not_swept(timed_tracker, clock):
    """A crash between the end and the publishing leaves the job in the running index: the round hands it out
    again and the sweep leaves it alone until its events are out."""
    tracker = timed_tracker
    item = _start(tracker, 7)
    item = tracker._store.get(item.tracking_id)
    item.status = item.result_status = "Completed"
    item.ended_at = tracker._clock()
    tracker._store.save(item)  # ... and the publisher never ran
    clock.now = START + timedelta(days=45)
    assert tracker.run_poll_round().swept == 0
    assert tracker._store.get(item.tracking_id) is not None
    assert tracker._publisher.finish(tracker._store.get(item.tracking_id)) == 2
    assert tracker.run_poll_round().swept == 0  # its events just went out: their deliveries may still be tried
    clock.now += timedelta(hours=tracker.settings.delivery_retry_hours) + DELIVERY_SLACK + timedelta(minutes=1)
    assert tracker.run_poll_round().swept == 1
    assert tracker._store.get(item.tracking_id) is None


def test_the_retention_setting_is_honoured(env, clock):
    tracker = Tracker(Settings.from_env({**env, "JOBS_RETENTION_DAYS": "2.5"}), clock=clock)
    tracker.setup()
    item = _start(tracker, 9)
    _end(tracker, item)

    def round_at(now: datetime) -> int:
        clock.now = now
        return run_round(tracker._store, tracker._throttle_board, lambda _: None, now, tracker.settings.poll_seconds,
                         retention_days=tracker.settings.retention_days).swept

    assert round_at(START + timedelta(days=2, hours=11)) == 0
    assert round_at(START + timedelta(days=2, hours=13)) == 1


def test_status_of_a_swept_job_says_how_long_ended_jobs_are_kept(timed_tracker, clock, env, monkeypatch, capsys,
                                                                  tmp_path):
    from jobs.cli import main

    item = _start(timed_tracker, 11)
    _end(timed_tracker, item)
    clock.now = START + timedelta(days=31)
    assert timed_tracker.run_poll_round().swept == 1
    for key, value in {**env, "JOBS_RETENTION_DAYS": "30"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    assert main(["status", item.job_id]) == 1
    err = capsys.readouterr().err
    assert f"no job {item.job_id!r}" in err and "ended jobs are kept for 30 days" in err, err


def test_point4_a_late_subscribers_delivery_is_not_swept_from_under_it(timed_tracker, clock, receiver):
    """A subscriber that arrives just before the retention cutoff gets its event at once; the sweep that comes
    after the cutoff must leave the rows its delivery rebuilds the event from, until the retry window is over."""
    tracker = timed_tracker
    item = _start(tracker, 21)
    _end(tracker, item)
    deliver = tracker._storage.queue(tracker.settings.deliver_queue)
    drain(deliver)  # the first subscribers' deliveries: not this test's
    clock.now = START + timedelta(days=30) - timedelta(hours=1)
    late = clock.now
    tracker.accept_message(json.dumps({"jobResourceId": f"{VAULT}/backupJobs/{item.job_id}", "correlationId": "late"}))
    [task] = drain(deliver)

    clock.now = START + timedelta(days=30, hours=1)  # past the cutoff, the delivery still being tried
    assert tracker.run_poll_round().swept == 0
    assert tracker.handle_delivery_message(task) == "delivered"
    assert [r.json()["data"]["correlationId"] for r in receiver.delivered()] == ["late"]
    assert drain(tracker._storage.queue(tracker.settings.deadletter_queue)) == []

    clock.now = late + timedelta(hours=tracker.settings.delivery_retry_hours) + DELIVERY_SLACK - timedelta(minutes=1)
    assert tracker.run_poll_round().swept == 0
    clock.now += timedelta(minutes=2)  # the window, and its slack, are over: it goes
    assert tracker.run_poll_round().swept == 1
    assert _partition(tracker, item.tracking_id) == []


def test_point4_an_operations_status_url_answers_while_the_job_it_named_runs(simulator, env, receiver):
    """An operation that named its job ended then; its status URL answers with the job. With a retention shorter
    than the job's run, the sweep must keep the operation while the job runs (today: 404), and remove both once the
    job ended and its own time is over."""
    clock = ManualClock()
    tracker = tracker_with_clock(env, clock, JOBS_RETENTION_DAYS="0.01", JOBS_DELIVERY_RETRY_HOURS="0.1")  # 14.4, 6 min
    operation = simulator.trigger_backup(VAULT, JobScript(duration=3600), operation_delay=0)
    [grant] = tracker.track(json.dumps({"operationUrl": operation.azure_async_operation})).grants
    poll_once(tracker)
    assert tracker._store.get(grant.tracking_id).ended  # it named its job
    assert tracker.get_status(grant.tracking_id, grant.token).running

    clock.advance(3600)  # the operation ended an hour ago, four times the retention; its job runs on
    poll_once(tracker)
    view = tracker.get_status(grant.tracking_id, grant.token)
    assert view.running and view.status == "InProgress"

    [job_key] = [e.tracking_id for e in tracker._store.list_index()]
    job = tracker._store.get(job_key)
    job.status = job.result_status = "Completed"
    job.ended_at = clock()
    tracker._store.save(job)
    tracker._publisher.finish(job)
    clock.advance(3600)
    poll_once(tracker)
    view = tracker.get_status(grant.tracking_id, grant.token)  # the job's deliveries may still be tried
    assert not view.running and [e["data"]["status"] for e in view.events] == ["Completed"]

    clock.advance(tracker.settings.delivery_retry_hours * 3600 + DELIVERY_SLACK.total_seconds())
    assert sum(tracker.run_poll_round().swept for _ in range(2)) == 2  # the operation and its job
    with pytest.raises(CapabilityRefused):
        tracker.get_status(grant.tracking_id, grant.token)
    assert tracker._store.get(job_key) is None
