"""The detector's record in the table, shared by every instance: how late it was on each ended job, and the
deployment's current assessment of it.

Partition ``detector-lag``: one row per ended job the detector covers (``RowKey``: inverted ticks, so the newest
come first): how long after Azure's ``endTime`` the detector showed the end, and whether it told the tracker first
(``detector``), showed it later (``shown``) or never within the wait (``never``). Partition ``detector-pending``:
the jobs that ended without the detector showing it yet, asked about until it does. Partition ``detector``: one
row, ``assessment``, written by the round that assessed it last.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import NamedTuple

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

__all__ = ["ASSESSMENT_PARTITION", "LAG_PARTITION", "PENDING_PARTITION", "LagSample", "PendingEnd", "TableDetectorLog"]

LAG_PARTITION = "detector-lag"
PENDING_PARTITION = "detector-pending"
ASSESSMENT_PARTITION = "detector"
_ASSESSMENT_ROW = "assessment"
_MAX_TICKS = 10**19


class LagSample(NamedTuple):
    """Who told the tracker first that a job ended (``detector``; or ``shown``/``never`` for an end the detector
    showed only later, or not within the wait), and how long after the job's ``endTime``."""

    source: str
    lag_seconds: float
    learned_at: datetime


class PendingEnd(NamedTuple):
    """A job that ended without the detector showing it yet. The detector is asked about it until it shows it or
    it is too old: either way, one sample of the detector's own lag."""

    tracking_id: str
    vault_id: str  # the vault's locator
    subscription_id: str
    end_time: datetime  # Azure's endTime
    learned_at: datetime  # when the tracker learned it (from a list or a GET)


class TableDetectorLog:
    """The record of one kind of vault's jobs: ``kind`` "" (the first provider, Recovery Services) keeps the
    partitions above; another kind (``backupvault``) has its own, suffixed ``-<kind>``, and its own assessment row."""

    def __init__(self, table: TableClient, kind: str = "") -> None:
        self._table = table
        suffix = f"-{kind}" if kind else ""
        self._lag, self._pending = LAG_PARTITION + suffix, PENDING_PARTITION + suffix
        self._row = _ASSESSMENT_ROW + suffix

    def add_sample(self, tracking_id: str, source: str, lag_seconds: float, learned_at: datetime) -> None:
        ticks = int(learned_at.astimezone(UTC).timestamp() * 1_000_000)
        entity = {"PartitionKey": self._lag, "RowKey": f"{_MAX_TICKS - ticks:020d}-{tracking_id}",
                  "Source": source, "LagSeconds": float(lag_seconds), "LearnedAt": learned_at}
        self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def list_samples(self, limit: int) -> list[LagSample]:
        """The newest ``limit`` samples, newest first."""
        samples: list[LagSample] = []
        entities = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": self._lag},
                                              results_per_page=min(limit, 1000))
        for entity in entities:
            samples.append(LagSample(str(entity["Source"]), float(entity["LagSeconds"]), entity["LearnedAt"]))
            if len(samples) >= limit:
                break
        return samples

    def trim(self, keep: int, limit: int = 100) -> int:
        """Deletes up to ``limit`` samples older than the newest ``keep``; returns how many."""
        entities = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": self._lag},
                                              select=["PartitionKey", "RowKey"])
        deleted = 0
        for index, entity in enumerate(entities):
            if index < keep:
                continue
            with contextlib.suppress(ResourceNotFoundError):
                self._table.delete_entity(self._lag, entity["RowKey"])
            deleted += 1
            if deleted >= limit:
                break
        return deleted

    def add_pending(self, pending: PendingEnd) -> None:
        self._table.upsert_entity({"PartitionKey": self._pending, "RowKey": pending.tracking_id,
                                   "VaultId": pending.vault_id, "SubscriptionId": pending.subscription_id,
                                   "EndTime": pending.end_time, "LearnedAt": pending.learned_at},
                                  mode=UpdateMode.REPLACE)

    def list_pending(self, limit: int = 1000) -> list[PendingEnd]:
        pending: list[PendingEnd] = []
        for entity in self._table.query_entities("PartitionKey eq @pk", parameters={"pk": self._pending}):
            pending.append(PendingEnd(entity["RowKey"], str(entity["VaultId"]), str(entity["SubscriptionId"]),
                                      entity["EndTime"], entity["LearnedAt"]))
            if len(pending) >= limit:
                break
        return pending

    def delete_pending(self, tracking_id: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self._table.delete_entity(self._pending, tracking_id)

    def put_assessment(self, values: dict[str, object]) -> None:
        self._table.upsert_entity({"PartitionKey": ASSESSMENT_PARTITION, "RowKey": self._row, **values},
                                  mode=UpdateMode.REPLACE)

    def get_assessment(self) -> dict[str, object] | None:
        try:
            entity = self._table.get_entity(ASSESSMENT_PARTITION, self._row)
        except ResourceNotFoundError:
            return None
        except HttpResponseError:
            return None
        return {key: value for key, value in entity.items() if key not in ("PartitionKey", "RowKey")}
