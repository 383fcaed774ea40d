"""How long each entity's earlier jobs took, shared by every instance through the table.

Partition ``durations``: one row per entity and kind of job (``RowKey``: a hash of the vault, the entity's name, the
job type and the operation), holding the newest ``KEEP`` durations of its jobs that completed, in seconds. The end
hints (``jobs.flows.end_hints``) read it to know when a new job of the same entity can end at the earliest.
"""

from __future__ import annotations

import contextlib
import json

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

__all__ = ["DURATIONS_PARTITION", "KEEP", "TableDurationLog"]

DURATIONS_PARTITION = "durations"
KEEP = 5  # durations kept per entity and kind of job


class TableDurationLog:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    def get_durations(self, key: str) -> list[float]:
        """The newest durations (seconds, newest first) recorded under ``key``; [] when there are none."""
        try:
            entity = self._table.get_entity(DURATIONS_PARTITION, key, select=["Seconds"])
        except ResourceNotFoundError:
            return []
        with contextlib.suppress(TypeError, ValueError):
            return [float(s) for s in json.loads(entity.get("Seconds") or "[]")][:KEEP]
        return []

    def add_duration(self, key: str, seconds: float) -> list[float]:
        """Records one more duration under ``key`` (the newest ``KEEP`` are kept); returns them, newest first. Two
        instances recording at once may lose one of the two: a hint is a measure, not a record. Raises the
        table's errors."""
        durations = [float(seconds), *self.get_durations(key)][:KEEP]
        entity = {"PartitionKey": DURATIONS_PARTITION, "RowKey": key,
                  "Seconds": json.dumps([round(d, 1) for d in durations])}
        self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        return durations
