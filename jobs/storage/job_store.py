"""Job state in Azure Table Storage: ``JobStore`` maps the domain's ``TrackedItem`` to and from table entities.

Layout of the one table (``JOBS_TABLE``):

- Partition ``<trackingId>``: row ``state`` (what the tracker knows of the job or operation) and one row
  ``sub-<key>`` per subscriber (correlationId, context, callbackUrl, and which result it was published for).
- Partition ``index-running``: one small row per job or operation still running, with its vault and
  ``NextPollAt``. The poll round reads only this partition, so its cost grows with running jobs, never with
  ended history. A row is removed after the job's result has been published.

Every change of a ``state`` row is conditional on its ETag (optimistic concurrency): of two instances that saw the
same transition, one wins and the other re-reads, so no transition is published twice under different ids.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from jobs.domain.tracked_item import IndexEntry, Subscriber, SubscriberRecord, TrackedItem

__all__ = ["INDEX_PARTITION", "ConcurrencyConflict", "JobStore"]

INDEX_PARTITION = "index-running"
STATE_ROW = "state"
SUBSCRIBER_PREFIX = "sub-"
_CHUNK = 30_000  # characters per string property (Table Storage allows 64 KiB, i.e. 32K UTF-16 units)


class ConcurrencyConflict(Exception):
    """The row changed since it was read (HTTP 412): re-read and decide again."""


class JobStore:
    def __init__(self, table: TableClient, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.table = table
        self._table = table
        self._clock = clock

    # -- state rows --------------------------------------------------------------------------------------------
    def get(self, tracking_id: str) -> TrackedItem | None:
        try:
            entity = self._table.get_entity(tracking_id, STATE_ROW)
        except ResourceNotFoundError:
            return None
        return _item_from_entity(entity)

    def create(self, item: TrackedItem) -> tuple[TrackedItem, bool]:
        """Inserts the item unless it exists; returns the stored item and whether it was created now."""
        try:
            metadata = self._table.create_entity(_entity_from_item(item))
        except ResourceExistsError:
            existing = self.get(item.tracking_id)
            if existing is None:  # deleted in between: try once more
                return self.create(item)
            return existing, False
        item.etag = metadata.get("etag")
        return item, True

    def save(self, item: TrackedItem) -> TrackedItem:
        """Replaces the state row if nobody changed it since it was read; raises ``ConcurrencyConflict``."""
        try:
            metadata = self._table.update_entity(
                _entity_from_item(item), mode=UpdateMode.REPLACE, etag=item.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceNotFoundError, ResourceExistsError) as exc:
            raise ConcurrencyConflict(item.tracking_id) from exc
        except HttpResponseError as exc:
            if exc.status_code == 412:
                raise ConcurrencyConflict(item.tracking_id) from exc
            raise
        item.etag = metadata.get("etag")
        return item

    def list_items(self, state: str = "all") -> Iterator[TrackedItem]:
        """Every state row (a scan: for the command line, not for the poll round)."""
        for entity in self._table.query_entities(f"RowKey eq '{STATE_ROW}'"):
            item = _item_from_entity(entity)
            if state == "all" or (state == "ended") == item.ended:
                yield item

    def delete(self, tracking_id: str) -> None:
        for entity in list(self._table.query_entities("PartitionKey eq @pk", parameters={"pk": tracking_id})):
            self._table.delete_entity(entity["PartitionKey"], entity["RowKey"])
        self.delete_index(tracking_id)

    # -- subscribers -------------------------------------------------------------------------------------------
    def add_subscriber(self, tracking_id: str, subscriber: Subscriber) -> SubscriberRecord:
        """Adds a subscriber once: the same subscriber sent again merges into the existing row."""
        record = SubscriberRecord(key=subscriber.key, subscriber=subscriber, added_at=self._clock())
        entity = {
            "PartitionKey": tracking_id,
            "RowKey": SUBSCRIBER_PREFIX + record.key,
            "AddedAt": record.added_at,
            "CorrelationId": subscriber.correlation_id,
            "Context": None if subscriber.context is None else json.dumps(subscriber.context, separators=(",", ":")),
            "CallbackUrl": subscriber.callback_url,
        }
        with contextlib.suppress(ResourceExistsError):
            self._table.create_entity(_without_none(entity))
        return record

    def list_subscribers(self, tracking_id: str) -> list[SubscriberRecord]:
        entities = self._table.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
            parameters={"pk": tracking_id, "lo": SUBSCRIBER_PREFIX, "hi": SUBSCRIBER_PREFIX[:-1] + "."},
        )
        return [_subscriber_from_entity(entity) for entity in entities]

    def get_subscriber(self, tracking_id: str, key: str) -> SubscriberRecord | None:
        try:
            return _subscriber_from_entity(self._table.get_entity(tracking_id, SUBSCRIBER_PREFIX + key))
        except ResourceNotFoundError:
            return None

    def mark_published(self, tracking_id: str, key: str, status: str) -> None:
        self._table.update_entity(
            {"PartitionKey": tracking_id, "RowKey": SUBSCRIBER_PREFIX + key, "PublishedStatus": status},
            mode=UpdateMode.MERGE,
        )

    def remove_subscriber(self, tracking_id: str, key: str) -> bool:
        try:
            self._table.delete_entity(tracking_id, SUBSCRIBER_PREFIX + key)
        except ResourceNotFoundError:
            return False
        return True

    # -- the running index -------------------------------------------------------------------------------------
    def ensure_index(self, item: TrackedItem, next_poll_at: datetime) -> None:
        entity = {
            "PartitionKey": INDEX_PARTITION,
            "RowKey": item.tracking_id,
            "Kind": item.kind,
            "VaultId": item.vault_id,
            "SubscriptionId": item.vault.subscription_id,
            "NextPollAt": next_poll_at,
        }
        with contextlib.suppress(ResourceExistsError):
            self._table.create_entity(entity)

    def list_index(self) -> list[IndexEntry]:
        entities = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": INDEX_PARTITION})
        return [
            IndexEntry(
                tracking_id=e["RowKey"], kind=e.get("Kind", "job"), vault_id=e["VaultId"],
                subscription_id=e["SubscriptionId"], next_poll_at=e["NextPollAt"],
            )
            for e in entities
        ]

    def set_next_poll(self, schedule: Iterable[tuple[str, datetime]]) -> None:
        """Sets ``NextPollAt`` of index rows, in transactions of up to 100 (one partition)."""
        operations = [
            ("update", {"PartitionKey": INDEX_PARTITION, "RowKey": tracking_id, "NextPollAt": at}, {"mode": "merge"})
            for tracking_id, at in schedule
        ]
        for start in range(0, len(operations), 100):
            batch = operations[start : start + 100]
            try:
                self._table.submit_transaction(batch)
            except Exception:
                # A row removed meanwhile (its job ended) fails the whole batch: fall back to one by one.
                for _, entity, _ in batch:
                    with contextlib.suppress(ResourceNotFoundError):
                        self._table.update_entity(entity, mode=UpdateMode.MERGE)

    def delete_index(self, tracking_id: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self._table.delete_entity(INDEX_PARTITION, tracking_id)


# -- entity mapping ----------------------------------------------------------------------------------------------
_SCALARS = {
    "tracking_id": None, "kind": "Kind", "vault_id": "VaultId", "created_at": "CreatedAt", "deadline_at": "DeadlineAt",
    "job_id": "JobId", "operation_id": "OperationId", "operation_path": "OperationPath",
    "status": "Status", "result_status": "ResultStatus", "ended_at": "EndedAt", "last_polled_at": "LastPolledAt",
    "unknown_since": "UnknownSince", "poll_count": "PollCount",
}
_JSON = {"last_error": "LastError", "resource": "Resource", "errors": "Errors", "named_jobs": "NamedJobs"}


def _entity_from_item(item: TrackedItem) -> dict[str, Any]:
    entity: dict[str, Any] = {"PartitionKey": item.tracking_id, "RowKey": STATE_ROW}
    for attribute, name in _SCALARS.items():
        if name:
            entity[name] = getattr(item, attribute)
    entity["Ended"] = item.ended
    for attribute, name in _JSON.items():
        _put_json(entity, name, getattr(item, attribute))
    return _without_none(entity)


def _item_from_entity(entity: dict[str, Any]) -> TrackedItem:
    values: dict[str, Any] = {"tracking_id": entity["PartitionKey"]}
    for attribute, name in _SCALARS.items():
        if name and name in entity:
            values[attribute] = entity[name]
    for attribute, name in _JSON.items():
        values[attribute] = _get_json(entity, name)
    item = TrackedItem(**values)
    item.etag = entity.metadata.get("etag") if hasattr(entity, "metadata") else None
    return item


def _subscriber_from_entity(entity: dict[str, Any]) -> SubscriberRecord:
    context = entity.get("Context")
    return SubscriberRecord(
        key=entity["RowKey"][len(SUBSCRIBER_PREFIX) :],
        subscriber=Subscriber(
            correlation_id=entity.get("CorrelationId"),
            context=json.loads(context) if context else None,
            callback_url=entity.get("CallbackUrl"),
        ),
        added_at=entity.get("AddedAt") or datetime.now(UTC),
        published_status=entity.get("PublishedStatus"),
    )


def _put_json(entity: dict[str, Any], name: str, value: Any) -> None:
    if value is None:
        return
    text = json.dumps(value, separators=(",", ":"))
    chunks = [text[i : i + _CHUNK] for i in range(0, len(text), _CHUNK)] or [""]
    if len(chunks) == 1:
        entity[name] = chunks[0]
        return
    entity[f"{name}Chunks"] = len(chunks)
    for index, chunk in enumerate(chunks):
        entity[f"{name}{index}"] = chunk


def _get_json(entity: dict[str, Any], name: str) -> Any:
    if name in entity:
        return json.loads(entity[name])
    count = entity.get(f"{name}Chunks")
    if not count:
        return None
    return json.loads("".join(entity[f"{name}{index}"] for index in range(count)))


def _without_none(entity: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in entity.items() if value is not None}
