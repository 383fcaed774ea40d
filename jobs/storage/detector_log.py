"""The detector's record in the table, shared by every instance: how late it was on each ended job, and the
deployment's current assessment of it.

Partition ``detector-lag``: one row per ended job the detector was asked about (``RowKey``: inverted ticks, so the
newest come first), with who told the tracker first (``detector``, ``list`` or ``get``) and how long after Azure's
``endTime``. Partition ``detector``: one row, ``assessment``, written by the round that assessed it last.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

__all__ = ["ASSESSMENT_PARTITION", "LAG_PARTITION", "LagSample", "TableDetectorLog"]

LAG_PARTITION = "detector-lag"
ASSESSMENT_PARTITION = "detector"
_ASSESSMENT_ROW = "assessment"
_MAX_TICKS = 10**19


class LagSample(tuple[str, float, datetime]):
    """``(source, lag_seconds, learned_at)``: who told the tracker first that a job ended, and how long after the
    job's ``endTime``."""

    __slots__ = ()

    @property
    def source(self) -> str:
        return self[0]

    @property
    def lag_seconds(self) -> float:
        return self[1]

    @property
    def learned_at(self) -> datetime:
        return self[2]


class TableDetectorLog:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    def add_sample(self, tracking_id: str, source: str, lag_seconds: float, learned_at: datetime) -> None:
        ticks = int(learned_at.astimezone(UTC).timestamp() * 1_000_000)
        entity = {"PartitionKey": LAG_PARTITION, "RowKey": f"{_MAX_TICKS - ticks:020d}-{tracking_id}",
                  "Source": source, "LagSeconds": float(lag_seconds), "LearnedAt": learned_at}
        self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def list_samples(self, limit: int) -> list[LagSample]:
        """The newest ``limit`` samples, newest first."""
        samples: list[LagSample] = []
        entities = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": LAG_PARTITION},
                                              results_per_page=min(limit, 1000))
        for entity in entities:
            samples.append(LagSample((str(entity["Source"]), float(entity["LagSeconds"]), entity["LearnedAt"])))
            if len(samples) >= limit:
                break
        return samples

    def trim(self, keep: int, limit: int = 100) -> int:
        """Deletes up to ``limit`` samples older than the newest ``keep``; returns how many."""
        entities = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": LAG_PARTITION},
                                              select=["PartitionKey", "RowKey"])
        deleted = 0
        for index, entity in enumerate(entities):
            if index < keep:
                continue
            with contextlib.suppress(ResourceNotFoundError):
                self._table.delete_entity(LAG_PARTITION, entity["RowKey"])
            deleted += 1
            if deleted >= limit:
                break
        return deleted

    def put_assessment(self, values: dict[str, object]) -> None:
        self._table.upsert_entity({"PartitionKey": ASSESSMENT_PARTITION, "RowKey": _ASSESSMENT_ROW, **values},
                                  mode=UpdateMode.REPLACE)

    def get_assessment(self) -> dict[str, object] | None:
        try:
            entity = self._table.get_entity(ASSESSMENT_PARTITION, _ASSESSMENT_ROW)
        except ResourceNotFoundError:
            return None
        except HttpResponseError:
            return None
        return {key: value for key, value in entity.items() if key not in ("PartitionKey", "RowKey")}
