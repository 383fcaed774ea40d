"""The Retry-After board on Azurite: a race between two instances never shortens a window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from jobs.storage import TableThrottleBoard

SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"


class InterleavedTable:
    """The real table client of one instance, with another instance's write slipped in right after its first read:
    the interleaving a race produces, made to happen every time."""

    def __init__(self, table: Any, between: Any) -> None:
        self._table = table
        self._between = between

    def get_entity(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._table.get_entity(*args, **kwargs)
        finally:
            between, self._between = self._between, None
            if between is not None:
                between()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


def test_a_shorter_window_written_in_a_race_never_replaces_a_longer_one(tracker) -> None:
    table = tracker._store.table
    now = datetime.now(UTC)
    long_window, short_window = now + timedelta(seconds=300), now + timedelta(seconds=30)
    other = TableThrottleBoard(table)

    # The row does not exist yet: both instances try to create it.
    racing = TableThrottleBoard(InterleavedTable(table, lambda: other.set_throttle(SUBSCRIPTION, long_window)))
    racing.set_throttle(SUBSCRIPTION, short_window)
    assert other.get_throttle(SUBSCRIPTION) == long_window

    # The row exists: the racing instance read an older, shorter window before the other one lengthened it.
    later = now + timedelta(seconds=600)
    racing = TableThrottleBoard(InterleavedTable(table, lambda: other.set_throttle(SUBSCRIPTION, later)))
    racing.set_throttle(SUBSCRIPTION, now + timedelta(seconds=400))
    assert other.get_throttle(SUBSCRIPTION) == later


def test_a_longer_window_replaces_a_shorter_one(tracker) -> None:
    board = TableThrottleBoard(tracker._store.table)
    now = datetime.now(UTC)
    board.set_throttle(SUBSCRIPTION, now + timedelta(seconds=10))
    board.set_throttle(SUBSCRIPTION, now + timedelta(seconds=20))
    board.set_throttle(SUBSCRIPTION, now + timedelta(seconds=5))
    assert board.get_throttle(SUBSCRIPTION) == now + timedelta(seconds=20)
    assert board.list_throttles() == {SUBSCRIPTION: now + timedelta(seconds=20)}
