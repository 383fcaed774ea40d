"""Job state in Azure Table Storage: ``JobStore`` maps the domain's ``TrackedItem`` to and from table entities.

One partition per tracked item (its ``state`` row, subscriber and capability rows), a running index over 16
partitions, callback and ended-day indexes; every change of a ``state`` row is conditional on its ETag. The layout,
row by row, and why: docs/design.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from jobs.domain.references import JobRef
from jobs.domain.results import OPERATION_SUCCEEDED
from jobs.domain.tracked_item import IndexEntry, Subscriber, SubscriberRecord, TrackedItem
from jobs.storage.entity_size import check_entity

__all__ = [
    "CALLBACK_PREFIX", "DELIVERY_SLACK", "ENDED_PREFIX", "INDEX_PARTITION", "RUNNING_PARTITIONS", "SWEEP_LIMIT",
    "ConcurrencyConflict",
    "JobStore", "callback_partition", "ended_index_keys", "entity_from_item", "index_partition",
]

INDEX_PARTITION = "index-running"  # the running index's prefix, and its one partition before it was spread
RUNNING_PARTITIONS = 16
ENDED_PREFIX = "index-ended-"
SWEEP_LIMIT = 100  # ended jobs removed per poll round at most
# Beyond the delivery retry window, how long an item is kept after an event went out: the last attempt is made as the
# window closes, and the host may try its message again (maxDequeueCount 5, 2 min apart) before it is done.
DELIVERY_SLACK = timedelta(hours=1)
STATE_ROW = "state"
SUBSCRIBER_PREFIX = "sub-"
CAPABILITY_PREFIX = "cap-"
CALLBACK_PREFIX = "callback-"
_CHUNK = 30_000  # characters per string property (Table Storage allows 64 KiB, i.e. 32K UTF-16 units)


class ConcurrencyConflict(Exception):
    """The row changed since it was read (HTTP 412): re-read and decide again."""


class JobStore:
    def __init__(self, table: TableClient, clock: Callable[[], datetime] = lambda: datetime.now(UTC), *,
                 delivery_hold: timedelta = timedelta(hours=24) + DELIVERY_SLACK) -> None:
        """``delivery_hold``: how long after an event went out its deliveries may still be tried (the sweep keeps
        the item that long): ``JOBS_DELIVERY_RETRY_HOURS`` plus ``DELIVERY_SLACK``."""
        self.table = table
        self._table = table
        self._clock = clock
        self._delivery_hold = delivery_hold

    # -- state rows --------------------------------------------------------------------------------------------
    def get(self, tracking_id: str) -> TrackedItem | None:
        try:
            entity = self._table.get_entity(tracking_id, STATE_ROW)
        except ResourceNotFoundError:
            return None
        return _item_from_entity(entity)

    def create(self, item: TrackedItem) -> tuple[TrackedItem, bool]:
        """Inserts the item unless it exists; returns the stored item and whether it was created now."""
        self._record_ended(item)
        try:
            metadata = self._table.create_entity(entity_from_item(item))
        except ResourceExistsError:
            existing = self.get(item.tracking_id)
            if existing is None:  # deleted in between: try once more
                return self.create(item)
            return existing, False
        item.etag = metadata.get("etag")
        return item, True

    def save(self, item: TrackedItem) -> TrackedItem:
        """Replaces the state row if nobody changed it since it was read; raises ``ConcurrencyConflict``."""
        self._record_ended(item)
        try:
            metadata = self._table.update_entity(
                entity_from_item(item), mode=UpdateMode.REPLACE, etag=item.etag,
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
        """Stops tracking: the running-index row first (no round hands it out again), then the item's partition
        (state, subscribers, status URLs) and its subscribers' callback index rows."""
        self.delete_index(tracking_id)
        for entity in list(self._table.query_entities("PartitionKey eq @pk", parameters={"pk": tracking_id})):
            self._delete_callback_row(entity)
            with contextlib.suppress(ResourceNotFoundError):
                self._table.delete_entity(entity["PartitionKey"], entity["RowKey"])

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
            "Watch": subscriber.watch,
        }
        if subscriber.callback_url:  # its callback index row first: a crash leaves at worst a row pointing nowhere
            self._table.upsert_entity({
                "PartitionKey": callback_partition(subscriber.callback_url),
                "RowKey": _callback_row(tracking_id, record.key),
                "TrackingId": tracking_id,
                "SubscriberKey": record.key,
            }, mode=UpdateMode.REPLACE)
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
        """The subscriber got its event (``PublishedAt``: the sweep keeps the item while it may be delivered)."""
        self._table.update_entity(
            {"PartitionKey": tracking_id, "RowKey": SUBSCRIBER_PREFIX + key, "PublishedStatus": status,
             "PublishedAt": self._clock()},
            mode=UpdateMode.MERGE,
        )

    def remove_subscriber(self, tracking_id: str, key: str, *, callback_url: str | None = None) -> bool:
        """Removes one subscriber, then its callback index row; False when it was not there. ``callback_url``
        removes that URL's index row for it even when the subscriber row is already gone (a crash in between)."""
        removed = True
        try:
            entity = self._table.get_entity(tracking_id, SUBSCRIBER_PREFIX + key)
            self._table.delete_entity(tracking_id, SUBSCRIBER_PREFIX + key)
        except ResourceNotFoundError:
            entity, removed = None, False
        if entity is not None:
            self._delete_callback_row(entity)
        if callback_url:
            with contextlib.suppress(ResourceNotFoundError):
                self._table.delete_entity(callback_partition(callback_url), _callback_row(tracking_id, key))
        return removed

    def add_callback_alias(self, alias: str, tracking_id: str, subscriber_key: str) -> None:
        """One more name in the callback index for a subscriber (a Logic Apps webhook action's identity), found by
        ``list_callback_subscriptions(alias)`` and removed by ``remove_subscriber(..., callback_url=alias)``."""
        self._table.upsert_entity({
            "PartitionKey": callback_partition(alias), "RowKey": _callback_row(tracking_id, subscriber_key),
            "TrackingId": tracking_id, "SubscriberKey": subscriber_key,
        }, mode=UpdateMode.REPLACE)

    def list_callback_subscriptions(self, callback_url: str) -> list[tuple[str, str]]:
        """``(tracking id, subscriber key)`` of every subscriber whose ``callbackUrl`` is exactly this URL: one
        partition query (the callback index), whatever the jobs."""
        entities = self._table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": callback_partition(callback_url)}
        )
        return [(str(e["TrackingId"]), str(e["SubscriberKey"])) for e in entities]

    def _delete_callback_row(self, entity: dict[str, Any]) -> None:
        url = entity.get("CallbackUrl")
        if url and str(entity.get("RowKey", "")).startswith(SUBSCRIBER_PREFIX):
            key = entity["RowKey"][len(SUBSCRIBER_PREFIX) :]
            with contextlib.suppress(ResourceNotFoundError):
                self._table.delete_entity(callback_partition(url), _callback_row(entity["PartitionKey"], key))

    # -- status URLs (capabilities) ----------------------------------------------------------------------------
    def add_capability(self, tracking_id: str, token_hash: str, subscriber_key: str) -> None:
        """Records a status URL handed out for ``subscriber_key``: only the hash of its token."""
        self._table.upsert_entity({
            "PartitionKey": tracking_id, "RowKey": CAPABILITY_PREFIX + token_hash, "SubscriberKey": subscriber_key,
            "TokenHash": token_hash, "IssuedAt": self._clock(),
        }, mode=UpdateMode.REPLACE)

    def get_capability(self, tracking_id: str, token_hash: str) -> tuple[str, str] | None:
        """``(stored token hash, subscriber key)`` of a status URL, or None when no such URL was handed out."""
        try:
            entity = self._table.get_entity(tracking_id, CAPABILITY_PREFIX + token_hash)
        except ResourceNotFoundError:
            return None
        return str(entity.get("TokenHash", "")), str(entity.get("SubscriberKey", ""))

    def remove_capability(self, tracking_id: str, token_hash: str) -> None:
        """Forgets a status URL (its row), whatever became of its subscriber."""
        with contextlib.suppress(ResourceNotFoundError):
            self._table.delete_entity(tracking_id, CAPABILITY_PREFIX + token_hash)

    def capability_holders(self, tracking_id: str) -> list[str]:
        """The subscriber key of every capability row of the item's partition (one partition query)."""
        entities = self._table.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
            parameters={"pk": tracking_id, "lo": CAPABILITY_PREFIX, "hi": CAPABILITY_PREFIX[:-1] + "."},
            select=["SubscriberKey"],
        )
        return [str(entity.get("SubscriberKey", "")) for entity in entities]

    def get_index_entry(self, tracking_id: str) -> IndexEntry | None:
        """The item's running-index row (a point read), or None when it is not running."""
        try:
            entity = self._table.get_entity(index_partition(tracking_id), tracking_id)
        except ResourceNotFoundError:
            return None
        return _index_entry(entity)

    # -- the running index -------------------------------------------------------------------------------------
    def ensure_index(self, item: TrackedItem, next_poll_at: datetime) -> None:
        entity = {
            "PartitionKey": index_partition(item.tracking_id),
            "RowKey": item.tracking_id,
            "Kind": item.kind,
            "VaultId": item.vault_id,
            "SubscriptionId": item.vault.subscription_id,
            "NextPollAt": next_poll_at,
        }
        with contextlib.suppress(ResourceExistsError):
            self._table.create_entity(entity)

    def list_index(self) -> list[IndexEntry]:
        """Every running item (one range query over the index partitions): for the command line, the heartbeat and
        the idle check. The poll round asks ``list_due`` instead."""
        entities = self._table.query_entities(
            "PartitionKey ge @lo and PartitionKey lt @hi",
            parameters={"lo": INDEX_PARTITION, "hi": INDEX_PARTITION + "."},  # index-running and index-running-<n>
        )
        entries: dict[str, IndexEntry] = {}
        for entity in entities:
            if entity["PartitionKey"] == INDEX_PARTITION and entity["RowKey"] in entries:
                continue  # moved meanwhile: its own partition's row counts
            entries[entity["RowKey"]] = _index_entry(entity)
        return list(entries.values())

    def list_due(self, now: datetime) -> list[IndexEntry]:
        """The running items due at ``now``: each index partition is asked for its due rows only (the filter runs
        in the table). Due rows of the old single partition move to their own partition on the way."""
        due: dict[str, IndexEntry] = {}
        for partition in (*_RUNNING_PARTITION_NAMES, INDEX_PARTITION):
            entities = self._table.query_entities(
                "PartitionKey eq @pk and NextPollAt le @now", parameters={"pk": partition, "now": now}
            )
            for entity in entities:
                if partition == INDEX_PARTITION:
                    self._move_legacy_row(entity)
                due.setdefault(entity["RowKey"], _index_entry(entity))
        return list(due.values())

    def _move_legacy_row(self, entity: dict[str, Any]) -> None:
        moved = {key: value for key, value in entity.items() if key not in ("PartitionKey", "Timestamp")}
        moved["PartitionKey"] = index_partition(entity["RowKey"])
        with contextlib.suppress(ResourceExistsError):  # already there: that row stands
            self._table.create_entity(moved)
        with contextlib.suppress(ResourceNotFoundError):
            self._table.delete_entity(INDEX_PARTITION, entity["RowKey"])

    def set_next_poll(self, schedule: Iterable[tuple[str, datetime]], lease: str = "") -> None:
        """Sets ``NextPollAt`` of index rows, in transactions of up to 100 rows of one partition each, and their
        ``Lease``: the round's token when it hands them out, "" when a worker has polled them."""
        by_partition: dict[str, list[tuple[str, dict[str, Any], dict[str, Any]]]] = {}
        for tracking_id, at in schedule:
            partition = index_partition(tracking_id)
            entity = {"PartitionKey": partition, "RowKey": tracking_id, "NextPollAt": at, "Lease": lease}
            by_partition.setdefault(partition, []).append(("update", entity, {"mode": "merge"}))
        for operations in by_partition.values():
            for start in range(0, len(operations), 100):
                batch = operations[start : start + 100]
                try:
                    self._table.submit_transaction(batch)
                except Exception:
                    # A row removed meanwhile (its job ended) fails the whole batch: fall back to one by one.
                    for _, entity, _ in batch:
                        with contextlib.suppress(ResourceNotFoundError):
                            self._table.update_entity(entity, mode=UpdateMode.MERGE)

    def get_leases(self, tracking_ids: Iterable[str]) -> dict[str, str]:
        """The lease token each item's index row holds ("" when none); items no longer running are left out."""
        leases = {}
        for tracking_id in tracking_ids:
            try:
                entity = self._table.get_entity(index_partition(tracking_id), tracking_id, select=["Lease"])
            except ResourceNotFoundError:
                continue
            leases[tracking_id] = str(entity.get("Lease") or "")
        return leases

    def delete_index(self, tracking_id: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self._table.delete_entity(index_partition(tracking_id), tracking_id)

    def in_index(self, tracking_id: str) -> bool:
        try:
            self._table.get_entity(index_partition(tracking_id), tracking_id, select=["RowKey"])
        except ResourceNotFoundError:
            return False
        return True

    # -- retention: the ended index and its sweep --------------------------------------------------------------
    def _record_ended(self, item: TrackedItem) -> None:
        """The item's row in the ended index, written before its state row says it ended (idempotent)."""
        if not item.ended:
            return
        partition, row = ended_index_keys(item.ended_at or self._clock(), item.tracking_id)
        self._table.upsert_entity({"PartitionKey": partition, "RowKey": row, "TrackingId": item.tracking_id},
                                  mode=UpdateMode.REPLACE)

    def sweep_ended(self, ended_before: datetime, limit: int = SWEEP_LIMIT) -> int:
        """Removes up to ``limit`` items that ended before ``ended_before`` (state and subscriber rows of their
        partition); returns how many. Reads only the ended index's days up to ``ended_before``, never running jobs
        (an ended item still in the running index has results to publish and is left for a later round)."""
        day, cutoff_row = ended_index_keys(ended_before, "")
        rows = list(_first(self._table.query_entities(
            "PartitionKey ge @lo and PartitionKey lt @day", parameters={"lo": ENDED_PREFIX, "day": day},
            results_per_page=limit,
        ), limit))
        if len(rows) < limit:
            rows += _first(self._table.query_entities(
                "PartitionKey eq @day and RowKey lt @row", parameters={"day": day, "row": cutoff_row},
                results_per_page=limit - len(rows),
            ), limit - len(rows))
        swept = 0
        for row in rows:
            swept += self._sweep_one(row, ended_before)
        return swept

    def _sweep_one(self, row: dict[str, Any], ended_before: datetime) -> int:
        tracking_id = row.get("TrackingId") or row["RowKey"].split("-", 1)[1]
        entities = list(self._table.query_entities("PartitionKey eq @pk", parameters={"pk": tracking_id}))
        state = next((e for e in entities if e["RowKey"] == STATE_ROW), None)
        item = _item_from_entity(state) if state is not None else None
        removed = 0
        if item is not None and item.ended and item.ended_at is not None and item.ended_at <= ended_before:
            if self.in_index(tracking_id):
                return 0  # its results are not out yet: the poll round hands it out again; swept later
            kept_until = self._kept_until(item, entities, ended_before)
            if kept_until > ended_before:
                # Still being delivered, or an operation whose job is still on record: filed again in the ended
                # index where the sweep finds it when that is over, the old row removed.
                partition, again = ended_index_keys(kept_until, tracking_id)
                self._table.upsert_entity({"PartitionKey": partition, "RowKey": again, "TrackingId": tracking_id},
                                          mode=UpdateMode.REPLACE)
                with contextlib.suppress(ResourceNotFoundError):
                    self._table.delete_entity(row["PartitionKey"], row["RowKey"])
                return 0
            # Subscriber rows first, the state row last: a crash in between leaves a job the next sweep finishes.
            entities.sort(key=lambda e: e["RowKey"] == STATE_ROW)
            for entity in entities:
                self._delete_callback_row(entity)
            for start in range(0, len(entities), 100):
                batch = entities[start : start + 100]
                try:
                    self._table.submit_transaction([("delete", e) for e in batch])
                except Exception:  # a row went meanwhile: one by one
                    for entity in batch:
                        with contextlib.suppress(ResourceNotFoundError):
                            self._table.delete_entity(entity["PartitionKey"], entity["RowKey"])
            removed = 1
        # else: a stale row (the state is gone, running again, or ended later under a row of its own: that of the
        # writer that won the state row, written before its save)
        with contextlib.suppress(ResourceNotFoundError):
            self._table.delete_entity(row["PartitionKey"], row["RowKey"])
        return removed

    def _kept_until(self, item: TrackedItem, entities: list[dict[str, Any]], ended_before: datetime) -> datetime:
        """Where the ended index must file ``item`` for the sweep to find it no earlier than it may go (the sweep
        reads rows filed before ``ended_before``, i.e. ``now`` minus the retention):

        - an event went out less than ``delivery_hold`` ago: its deliveries may still be tried, and each attempt
          rebuilds the event from these rows. Kept until the hold ends.
        - an operation that named its jobs: its status URLs answer with the jobs' state. Kept while a job it named
          is kept: while the job runs, looked at again a retention later; once it ended, as long as the job itself.
        """
        now = self._clock()
        retention = now - ended_before
        until = ended_before  # nothing holds it
        published = [e["PublishedAt"] for e in entities
                     if str(e.get("RowKey", "")).startswith(SUBSCRIBER_PREFIX) and e.get("PublishedAt")]
        if published:
            until = max(until, max(_utc(p) for p in published) + self._delivery_hold - retention)
        if item.kind == "operation" and item.result_status == OPERATION_SUCCEEDED:
            for job_id in item.named_jobs or []:
                key = JobRef.create(item.vault, job_id).key
                job = self.get(key)
                if job is None:
                    continue  # never created, or swept: nothing to answer with
                if job.ended_at is None:
                    until = max(until, now)  # asked again one retention from now
                else:
                    rows = list(self._table.query_entities("PartitionKey eq @pk", parameters={"pk": key}))
                    until = max(until, _utc(job.ended_at), self._kept_until(job, rows, ended_before))
        return until


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def index_partition(tracking_id: str) -> str:
    """The running-index partition of an item: a stable hash of its tracking id, 16 partitions."""
    digest = hashlib.sha256(tracking_id.encode("utf-8")).digest()
    return f"{INDEX_PARTITION}-{int.from_bytes(digest[:4], 'big') % RUNNING_PARTITIONS}"


def callback_partition(callback_url: str) -> str:
    """The callback index partition of a ``callbackUrl``: a hash of the exact URL (the URL is never a key)."""
    return CALLBACK_PREFIX + hashlib.sha256(callback_url.encode("utf-8")).hexdigest()[:40]


def _callback_row(tracking_id: str, subscriber_key: str) -> str:
    return f"{tracking_id}|{subscriber_key}"


_RUNNING_PARTITION_NAMES = tuple(f"{INDEX_PARTITION}-{n}" for n in range(RUNNING_PARTITIONS))


def ended_index_keys(ended_at: datetime, tracking_id: str) -> tuple[str, str]:
    """The ended index's (PartitionKey, RowKey) of an item that ended at ``ended_at`` (UTC; naive means UTC):
    ``index-ended-<yyyymmdd>`` and ``<hhmmssffffff>-<trackingId>``."""
    moment = ended_at.astimezone(UTC) if ended_at.tzinfo else ended_at.replace(tzinfo=UTC)
    return f"{ENDED_PREFIX}{moment:%Y%m%d}", f"{moment:%H%M%S%f}-{tracking_id}"


def _first(entities: Iterable[dict[str, Any]], count: int) -> Iterator[dict[str, Any]]:
    """At most ``count`` entities, without asking the table for a further page."""
    if count <= 0:
        return
    for number, entity in enumerate(entities, start=1):
        yield entity
        if number >= count:
            return


def _index_entry(entity: dict[str, Any]) -> IndexEntry:
    return IndexEntry(
        tracking_id=entity["RowKey"], kind=entity.get("Kind", "job"), vault_id=entity["VaultId"],
        subscription_id=entity["SubscriptionId"], next_poll_at=entity["NextPollAt"], lease=entity.get("Lease") or "",
    )


# -- entity mapping ----------------------------------------------------------------------------------------------
_SCALARS = {
    "tracking_id": None, "kind": "Kind", "vault_id": "VaultId", "created_at": "CreatedAt", "deadline_at": "DeadlineAt",
    "job_id": "JobId", "operation_id": "OperationId", "operation_path": "OperationPath",
    "status": "Status", "result_status": "ResultStatus", "ended_at": "EndedAt", "last_polled_at": "LastPolledAt",
    "unknown_since": "UnknownSince", "failing_since": "FailingSince", "poll_count": "PollCount",
    "learned_from": "LearnedFrom", "learned_lag_seconds": "LearnedLagSeconds", "expected_end_at": "ExpectedEndAt",
}
_JSON = {"last_error": "LastError", "resource": "Resource", "errors": "Errors", "named_jobs": "NamedJobs"}


def entity_from_item(item: TrackedItem) -> dict[str, Any]:
    """The ``state`` row of ``item`` as it is written to the table (``EntityTooLarge`` past Azure's limits)."""
    entity: dict[str, Any] = {"PartitionKey": item.tracking_id, "RowKey": STATE_ROW}
    for attribute, name in _SCALARS.items():
        if name:
            entity[name] = getattr(item, attribute)
    entity["Ended"] = item.ended
    for attribute, name in _JSON.items():
        _put_json(entity, name, getattr(item, attribute))
    entity = _without_none(entity)
    check_entity(entity)  # Azure refuses more than 1 MiB (Azurite does not): fail here, as there
    return entity


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
            watch=entity.get("Watch"),
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
