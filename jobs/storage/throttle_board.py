"""Retry-After windows in the table, shared by every instance: the ``jobs.arm.ThrottleBoard`` of a deployment.

Partition ``throttle``: one row per subscription with ``Until``, the end of the latest window ARM gave any
instance. The ARM client reads it before each request; the poll round skips subscriptions whose window is open.
"""

from __future__ import annotations

import logging
from datetime import datetime

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

__all__ = ["THROTTLE_PARTITION", "TableThrottleBoard"]

THROTTLE_PARTITION = "throttle"
_ATTEMPTS = 5

log = logging.getLogger(__name__)


class TableThrottleBoard:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    def set_throttle(self, subscription_id: str, until: datetime) -> None:
        """Records a window ending at ``until`` unless a longer one is on the board. Conditional on the row's ETag
        (or on its absence): of two instances racing, the one that read a stale row re-reads, so a race never
        shortens a window."""
        entity = {"PartitionKey": THROTTLE_PARTITION, "RowKey": subscription_id.lower(), "Until": until}
        for _ in range(_ATTEMPTS):
            try:
                current = self._table.get_entity(THROTTLE_PARTITION, subscription_id.lower())
            except ResourceNotFoundError:
                try:
                    self._table.create_entity(entity)
                    return
                except ResourceExistsError:
                    continue  # another instance wrote one first: compare with it
            if current["Until"] >= until:
                return
            try:
                self._table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=current.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
                return
            except HttpResponseError as exc:
                if exc.status_code not in (404, 412):
                    raise
        log.warning("the Retry-After window of subscription %s changed under %d writes; left as it is",
                    subscription_id, _ATTEMPTS)

    def get_throttle(self, subscription_id: str) -> datetime | None:
        try:
            return self._table.get_entity(THROTTLE_PARTITION, subscription_id.lower())["Until"]
        except ResourceNotFoundError:
            return None

    def list_throttles(self) -> dict[str, datetime]:
        entities = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": THROTTLE_PARTITION})
        return {e["RowKey"]: e["Until"] for e in entities}
