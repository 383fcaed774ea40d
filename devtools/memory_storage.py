"""In-memory stand-ins for the storage account, for the benchmark only: a table and queues that answer the subset
of the ``azure-data-tables`` and ``azure-storage-queue`` clients the tracker calls, and count every transaction.

Behaviour tests stay on Azurite. This exists so that ``python -m jobs bench`` can run the tracker's own poll round,
poll worker and publisher for hours of virtual time in seconds, and report what they would cost in Table Storage.
It keeps the semantics the tracker relies on: ETags (412 on a stale one), insert conflicts (409), missing rows
(404), MERGE and REPLACE, the filters the store sends (``Name op @param`` joined by ``and``), and transactions.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode

__all__ = ["MemoryQueue", "MemoryStorageAccount", "MemoryTable"]

_CLAUSE = re.compile(r"^\s*(\w+)\s+(eq|ne|gt|ge|lt|le)\s+(@\w+|'(?:[^']|'')*')\s*$")
_COMPARE = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
}


def _clauses(query: str, parameters: Mapping[str, Any] | None) -> list[tuple[str, str, Any]]:
    clauses = []
    for part in re.split(r"\s+and\s+", query.strip()):
        match = _CLAUSE.match(part)
        if not match:
            raise ValueError(f"the in-memory table understands 'Name op @param' joined by 'and', not {part!r}")
        name, op, raw = match.groups()
        value = (parameters or {})[raw[1:]] if raw.startswith("@") else raw[1:-1].replace("''", "'")
        clauses.append((name, op, value))
    return clauses


def _matches(entity: Mapping[str, Any], clauses: list[tuple[str, str, Any]]) -> bool:
    for name, op, value in clauses:
        if name not in entity:
            return False
        try:
            if not _COMPARE[op](entity[name], value):
                return False
        except TypeError:
            return False
    return True


class MemoryTable:
    """One table: rows by (PartitionKey, RowKey), each with an ETag; ``transactions`` counts billable requests."""

    def __init__(self) -> None:
        self._partitions: dict[str, dict[str, tuple[dict[str, Any], str]]] = {}
        self._sorted: list[str] = []  # partition keys in order, for range queries
        self._undo: list[tuple[tuple[str, str], tuple[dict[str, Any], str] | None]] | None = None
        self._etags = itertools.count(1)
        self.transactions = 0
        self.calls: Counter[str] = Counter()

    def _count(self, call: str, requests: int = 1) -> None:
        self.transactions += requests
        self.calls[call] += requests

    def _row(self, key: tuple[str, str]) -> tuple[dict[str, Any], str] | None:
        return self._partitions.get(key[0], {}).get(key[1])

    def _entity(self, key: tuple[str, str], select: Iterable[str] | None = None) -> TableEntity:
        values, etag = self._partitions[key[0]][key[1]]
        entity = TableEntity({k: v for k, v in values.items() if select is None or k in select or k in (
            "PartitionKey", "RowKey")})
        entity._metadata = {"etag": etag, "timestamp": None}
        return entity

    def _store(self, values: Mapping[str, Any]) -> dict[str, Any]:
        key = (str(values["PartitionKey"]), str(values["RowKey"]))
        etag = f'W/"{next(self._etags)}"'
        self._put(key, ({k: v for k, v in values.items() if v is not None}, etag))
        return {"etag": etag}

    def _put(self, key: tuple[str, str], row: tuple[dict[str, Any], str] | None) -> None:
        if self._undo is not None:
            self._undo.append((key, self._row(key)))
        partition = self._partitions.get(key[0])
        if row is None:
            if partition is not None and partition.pop(key[1], None) is not None and not partition:
                del self._partitions[key[0]]
                del self._sorted[bisect.bisect_left(self._sorted, key[0])]
            return
        if partition is None:
            partition = self._partitions[key[0]] = {}
            bisect.insort(self._sorted, key[0])
        partition[key[1]] = row

    def _remove(self, key: tuple[str, str]) -> bool:
        if self._row(key) is None:
            return False
        self._put(key, None)
        return True

    # -- single rows ---------------------------------------------------------------------------------------------
    def get_entity(self, partition_key: str, row_key: str, select: Iterable[str] | None = None, **_: Any) -> Any:
        self._count("get")
        key = (partition_key, row_key)
        if self._row(key) is None:
            raise ResourceNotFoundError("The specified resource does not exist.")
        return self._entity(key, list(select) if select else None)

    def create_entity(self, entity: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        self._count("create")
        return self._create(entity)

    def _create(self, entity: Mapping[str, Any]) -> dict[str, Any]:
        if self._row((str(entity["PartitionKey"]), str(entity["RowKey"]))) is not None:
            raise ResourceExistsError("The specified entity already exists.")
        return self._store(entity)

    def update_entity(self, entity: Mapping[str, Any], mode: Any = UpdateMode.MERGE, etag: str | None = None,
                      match_condition: Any = None, **_: Any) -> dict[str, Any]:
        self._count("update")
        return self._update(entity, mode, etag, match_condition)

    def _update(self, entity: Mapping[str, Any], mode: Any, etag: str | None, match_condition: Any) -> dict[str, Any]:
        row = self._row((str(entity["PartitionKey"]), str(entity["RowKey"])))
        if row is None:
            raise ResourceNotFoundError("The specified resource does not exist.")
        current, current_etag = row
        if match_condition == MatchConditions.IfNotModified and etag != current_etag:
            error = HttpResponseError("The update condition specified in the request was not satisfied.")
            error.status_code = 412
            raise error
        values = dict(entity) if str(mode).lower().endswith("replace") else {**current, **entity}
        return self._store(values)

    def upsert_entity(self, entity: Mapping[str, Any], mode: Any = UpdateMode.MERGE, **_: Any) -> dict[str, Any]:
        self._count("upsert")
        row = self._row((str(entity["PartitionKey"]), str(entity["RowKey"])))
        if row is not None and not str(mode).lower().endswith("replace"):
            return self._store({**row[0], **entity})
        return self._store(entity)

    def delete_entity(self, *args: Any, **_: Any) -> None:
        self._count("delete")
        entity = args[0] if len(args) == 1 else {"PartitionKey": args[0], "RowKey": args[1]}
        key = (str(entity["PartitionKey"]), str(entity["RowKey"]))
        self._remove(key)  # Table Storage answers 404; the store suppresses it anyway

    # -- many rows -----------------------------------------------------------------------------------------------
    def query_entities(self, query_filter: str, parameters: Mapping[str, Any] | None = None,
                       select: Iterable[str] | None = None, results_per_page: int | None = None,
                       **_: Any) -> Iterator[Any]:
        clauses = _clauses(query_filter, parameters)
        partitions = self._candidate_partitions([(op, value) for name, op, value in clauses if name == "PartitionKey"])
        keys = sorted(
            (pk, rk) for pk in partitions for rk, (values, _) in self._partitions[pk].items()
            if _matches(values, clauses)
        )
        page = results_per_page or 1000
        self._count("query", max(1, -(-len(keys) // page)))  # one request per page of results
        chosen = list(select) if select else None
        return iter([self._entity(key, chosen) for key in keys])

    def _candidate_partitions(self, on_partition: list[tuple[str, Any]]) -> list[str]:
        equal = [value for op, value in on_partition if op == "eq"]
        if equal:
            return [equal[0]] if equal[0] in self._partitions else []
        low, high = 0, len(self._sorted)
        for op, value in on_partition:
            if op == "ge":
                low = max(low, bisect.bisect_left(self._sorted, value))
            elif op == "gt":
                low = max(low, bisect.bisect_right(self._sorted, value))
            elif op == "lt":
                high = min(high, bisect.bisect_left(self._sorted, value))
            elif op == "le":
                high = min(high, bisect.bisect_right(self._sorted, value))
        return [pk for pk in self._sorted[low:high]
                if all(_COMPARE[op](pk, value) for op, value in on_partition)]

    def list_entities(self, **_: Any) -> Iterator[Any]:
        keys = sorted((pk, rk) for pk, rows in self._partitions.items() for rk in rows)
        self._count("query", max(1, -(-len(keys) // 1000)))
        return iter([self._entity(key) for key in keys])

    def submit_transaction(self, operations: Iterable[tuple[Any, ...]], **_: Any) -> list[dict[str, Any]]:
        """All or nothing, as a batch: a failing operation leaves the table as it was."""
        self._count("transaction")
        self._undo = []
        results = []
        try:
            for operation in operations:
                kind, entity = str(operation[0]).lower(), operation[1]
                options = operation[2] if len(operation) > 2 else {}
                if kind == "create":
                    results.append(self._create(entity))
                elif kind in ("update", "upsert"):
                    if kind == "update":
                        results.append(self._update(entity, options.get("mode", UpdateMode.MERGE), None, None))
                    else:
                        results.append(self.upsert_entity(entity, options.get("mode", UpdateMode.MERGE)))
                        self.transactions -= 1  # part of the one transaction
                        self.calls["upsert"] -= 1
                elif kind == "delete":
                    if not self._remove((str(entity["PartitionKey"]), str(entity["RowKey"]))):
                        raise ResourceNotFoundError("The specified resource does not exist.")
                    results.append({})
                else:
                    raise ValueError(f"unknown transaction operation {kind!r}")
        except Exception:
            undo, self._undo = self._undo, None
            for key, row in reversed(undo):
                self._put(key, row)
            raise
        finally:
            self._undo = None
        return results

    def __len__(self) -> int:
        return sum(len(rows) for rows in self._partitions.values())


@dataclass
class _Properties:
    approximate_message_count: int


@dataclass
class _Message:
    content: str
    visible_at: datetime | None = None
    sent_at: datetime | None = None


@dataclass
class MemoryQueue:
    """A queue whose messages the benchmark takes as they are sent (``drain``), with their visibility delay."""

    name: str
    clock: Any = None
    messages: deque[_Message] = field(default_factory=deque)
    sent: int = 0

    def send_message(self, content: str, visibility_timeout: int | None = None, **_: Any) -> dict[str, Any]:
        self.sent += 1
        visible_at = None
        if visibility_timeout and self.clock is not None:
            from datetime import timedelta

            visible_at = self.clock() + timedelta(seconds=visibility_timeout)
        self.messages.append(_Message(content, visible_at, self.clock() if self.clock is not None else None))
        return {}

    def get_queue_properties(self, **_: Any) -> _Properties:
        return _Properties(len(self.messages))

    def create_queue(self, **_: Any) -> None:
        return None

    def drain(self, now: datetime | None = None) -> list[str]:
        """The messages visible at ``now`` (all when no clock), taken off the queue."""
        return [content for content, _ in self.drain_timed(now)]

    def drain_timed(self, now: datetime | None = None) -> list[tuple[str, datetime | None]]:
        """As ``drain``, each message with the time it was sent (None without a clock)."""
        taken, kept = [], deque()
        for message in self.messages:
            if now is None or message.visible_at is None or message.visible_at <= now:
                taken.append((message.content, message.sent_at))
            else:
                kept.append(message)
        self.messages = kept
        return taken


class MemoryStorageAccount:
    """What ``jobs.storage.StorageAccount`` offers the tracker, in memory: ``queue``, ``table``, ``ensure``."""

    def __init__(self, clock: Any = None) -> None:
        self._clock = clock
        self._queues: dict[str, MemoryQueue] = {}
        self._tables: dict[str, MemoryTable] = {}

    def queue(self, name: str) -> MemoryQueue:
        return self._queues.setdefault(name, MemoryQueue(name, self._clock))

    def table(self, name: str) -> MemoryTable:
        return self._tables.setdefault(name, MemoryTable())

    def ensure(self, queues: list[str], table: str) -> None:
        for name in queues:
            self.queue(name)
        self.table(table)
