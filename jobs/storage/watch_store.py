"""Watches in Table Storage, in the job table beside the jobs: every instance reads the same watches and the same
high-water marks.

- ``watches`` partition, one row per watch (``RowKey`` its name): its scopes (each with when it joined the watch),
  its subscriber (``callbackUrl``, ``correlationId``, ``context``), its filters, and when its scopes were last
  expanded into vaults. The ``settings`` watch is ``JOBS_WATCH_SCOPES``'s.
- ``watch-vaults`` partition, one row per (watch, vault): when the vault joined the watch (jobs that ended before
  are not replayed), the discovery's high-water mark (the last listing's ``now``) and when it is next listed.
- ``watch-day-<name>-<yyyymmdd>`` partitions: the tracking ids a watch found that day, read once by its daily
  summary and swept with it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from jobs.domain.tracked_item import Subscriber

__all__ = ["SETTINGS_WATCH", "WATCH_NAME", "Watch", "WatchStore", "WatchedVault"]

WATCHES = "watches"
WATCH_VAULTS = "watch-vaults"
DAY_PREFIX = "watch-day-"
SETTINGS_WATCH = "settings"  # the watch JOBS_WATCH_SCOPES describes
WATCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")


@dataclass
class Watch:
    name: str
    scopes: dict[str, datetime]  # scope id -> when it joined the watch
    created_at: datetime
    correlation_id: str | None = None
    context: dict[str, Any] | None = None
    callback_url: str | None = field(default=None, repr=False)
    filters: dict[str, str] = field(default_factory=dict)  # operation, jobType, entityName: Azure's values
    expanded_at: datetime | None = None
    summarized: date | None = None  # the last day whose summary went out
    daily_summary: bool = False  # whether it gets a summary of each day (BackupJobs.DailySummary)

    @property
    def subscriber(self) -> Subscriber:
        """The watch's subscriber: its own, apart from a handed-in one with the same fields (``watch``)."""
        return Subscriber(self.correlation_id, self.context, self.callback_url, watch=self.name)


@dataclass
class WatchedVault:
    watch: str
    vault_id: str  # ``VaultRef.locator``
    began_at: datetime  # when the vault joined the watch: jobs that ended before are not reported
    next_at: datetime  # when it is next listed
    since: datetime | None = None  # the high-water mark: the last listing's "now" (None: never listed)


class WatchStore:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    # -- watches -----------------------------------------------------------------------------------------------
    def put_watch(self, watch: Watch) -> None:
        self._table.upsert_entity(_without_none({
            "PartitionKey": WATCHES, "RowKey": watch.name,
            "Scopes": json.dumps({scope: at.isoformat() for scope, at in watch.scopes.items()}),
            "CreatedAt": watch.created_at, "CorrelationId": watch.correlation_id,
            "Context": None if watch.context is None else json.dumps(watch.context, separators=(",", ":")),
            "CallbackUrl": watch.callback_url, "Filters": json.dumps(watch.filters),
            "ExpandedAt": watch.expanded_at,
            "Summarized": None if watch.summarized is None else watch.summarized.isoformat(),
            "DailySummary": watch.daily_summary,
        }), mode=UpdateMode.REPLACE)

    def get_watch(self, name: str) -> Watch | None:
        try:
            return _watch(self._table.get_entity(WATCHES, name))
        except ResourceNotFoundError:
            return None

    def list_watches(self) -> list[Watch]:
        try:
            rows = list(self._table.query_entities("PartitionKey eq @pk", parameters={"pk": WATCHES}))
        except ResourceNotFoundError:  # no table yet
            return []
        return sorted((_watch(row) for row in rows), key=lambda w: w.name)

    def delete_watch(self, name: str) -> bool:
        """Removes the watch and its vault rows (its found jobs stay tracked); whether it was there."""
        for vault in self.list_vaults(name):
            self.delete_vault(vault)
        if self.get_watch(name) is None:
            return False
        with contextlib.suppress(ResourceNotFoundError):
            self._table.delete_entity(WATCHES, name)
        return True

    # -- watched vaults ------------------------------------------------------------------------------------------
    def put_vault(self, vault: WatchedVault) -> None:
        self._table.upsert_entity(_without_none({
            "PartitionKey": WATCH_VAULTS, "RowKey": _vault_row(vault.watch, vault.vault_id), "Watch": vault.watch,
            "VaultId": vault.vault_id, "BeganAt": vault.began_at, "NextAt": vault.next_at, "Since": vault.since,
        }), mode=UpdateMode.REPLACE)

    def delete_vault(self, vault: WatchedVault) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self._table.delete_entity(WATCH_VAULTS, _vault_row(vault.watch, vault.vault_id))

    def list_vaults(self, watch: str | None = None) -> list[WatchedVault]:
        """Every watched vault (of one watch): one partition, read whole (a row per vault and watch)."""
        query, parameters = "PartitionKey eq @pk", {"pk": WATCH_VAULTS}
        if watch is not None:
            query += " and Watch eq @watch"
            parameters["watch"] = watch
        return [_watched_vault(row) for row in self._table.query_entities(query, parameters=parameters)]

    # -- what a watch found, by day (its daily summary) -----------------------------------------------------------
    def add_found(self, watch: str, day: date, tracking_ids: Iterable[str]) -> None:
        for tracking_id in tracking_ids:
            self._table.upsert_entity({"PartitionKey": _day_partition(watch, day), "RowKey": tracking_id},
                                      mode=UpdateMode.REPLACE)

    def list_found(self, watch: str, day: date) -> list[str]:
        return [row["RowKey"] for row in self._table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": _day_partition(watch, day)}, select=["RowKey"])]

    def drop_found(self, watch: str, day: date) -> None:
        for tracking_id in self.list_found(watch, day):
            with contextlib.suppress(ResourceNotFoundError):
                self._table.delete_entity(_day_partition(watch, day), tracking_id)


def _vault_row(watch: str, vault_id: str) -> str:
    return f"{watch}~{hashlib.sha256(vault_id.lower().encode('utf-8')).hexdigest()[:24]}"


def _day_partition(watch: str, day: date) -> str:
    return f"{DAY_PREFIX}{watch}-{day:%Y%m%d}"


def _utc(moment: Any) -> datetime | None:
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _watch(row: dict[str, Any]) -> Watch:
    scopes = {scope: _utc(at) or datetime.now(UTC) for scope, at in json.loads(row.get("Scopes") or "{}").items()}
    context = row.get("Context")
    return Watch(
        name=row["RowKey"], scopes=scopes, created_at=_utc(row.get("CreatedAt")) or datetime.now(UTC),
        correlation_id=row.get("CorrelationId"), context=json.loads(context) if context else None,
        callback_url=row.get("CallbackUrl"), filters=json.loads(row.get("Filters") or "{}"),
        expanded_at=_utc(row.get("ExpandedAt")),
        summarized=date.fromisoformat(row["Summarized"]) if row.get("Summarized") else None,
        daily_summary=bool(row.get("DailySummary")),
    )


def _watched_vault(row: dict[str, Any]) -> WatchedVault:
    now = datetime.now(UTC)
    return WatchedVault(watch=row["Watch"], vault_id=row["VaultId"], began_at=_utc(row.get("BeganAt")) or now,
                        next_at=_utc(row.get("NextAt")) or now, since=_utc(row.get("Since")))


def _without_none(entity: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in entity.items() if value is not None}
