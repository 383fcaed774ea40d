"""Retry-After windows in the table, shared by every instance: the ``jobs.arm.ThrottleBoard`` of a deployment.

Partition ``throttle``: one row per subscription with ``Until``, the end of the latest window ARM gave any
instance. The ARM client reads it before each request; the poll round skips subscriptions whose window is open.
"""

from __future__ import annotations

from datetime import datetime

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

__all__ = ["THROTTLE_PARTITION", "TableThrottleBoard"]

THROTTLE_PARTITION = "throttle"


class TableThrottleBoard:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    def set_throttle(self, subscription_id: str, until: datetime) -> None:
        current = self.get_throttle(subscription_id)
        if current is not None and current >= until:
            return
        self._table.upsert_entity(
            {"PartitionKey": THROTTLE_PARTITION, "RowKey": subscription_id.lower(), "Until": until},
            mode=UpdateMode.REPLACE,
        )

    def get_throttle(self, subscription_id: str) -> datetime | None:
        try:
            return self._table.get_entity(THROTTLE_PARTITION, subscription_id.lower())["Until"]
        except ResourceNotFoundError:
            return None

    def list_throttles(self) -> dict[str, datetime]:
        entities = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": THROTTLE_PARTITION})
        return {e["RowKey"]: e["Until"] for e in entities}
