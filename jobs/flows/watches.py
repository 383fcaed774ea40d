"""Watches: whole vaults followed, every job that starts in them tracked and reported like a handed-in one.

A watch is a name, scopes (vault ids of any provider, resource groups, subscriptions), a subscriber of its own
(``callbackUrl``, ``correlationId``, ``context``; ``Subscriber.watch`` is its name) and optional filters
(``operation``, ``jobType``, ``entityName``, Azure's values). ``JOBS_WATCH_SCOPES`` is the ``settings`` watch;
``python -m jobs watch add`` adds others. Each poll round (``run``), before its due jobs are planned:

1. Expansion: a watch's resource groups and subscriptions are listed for their vaults through Resource Manager's
   resource lists (``Resources_List`` with a ``resourceType`` filter naming every provider's vault type: one read
   per scope for both kinds of vault), again every ``JOBS_WATCH_EXPAND_SECONDS``, so a new vault is watched.
2. Discovery: each watched vault is listed on its vault-round grid every ``JOBS_WATCH_SECONDS`` through its
   provider's ``list_recent_jobs`` (the jobs started since the high-water mark less ``OVERLAP``, any status), one
   read per vault however many watches name it; the first listing adds the vault's running jobs
   (``list_running_jobs``): jobs running when a watch begins are reported, jobs that ended before are not. A found
   job is put on record like a handed-in one (``Subscriptions.add``) with the watch's subscriber, due at once: the
   round that found it polls it. A job both watched and handed in is one item, polled once, with one subscriber
   (one event) each.
3. Daily summaries: once a UTC day is over, each watch that asks for them (``--daily-summary``,
   ``JOBS_WATCH_DAILY_SUMMARY`` for the settings' watch) gets one event of type ``SUMMARY_TYPE`` for it (counts per
   status, the failed and warned jobs with their errors), published like a result (a ``summary`` item of its own,
   id stable per watch and day), so every output and retry applies.

The reads go through the tracker's ARM client, its read budget and pacing. The round lists vaults itself until its
time budget is spent; the vaults still due then go through the poll queue, one ``discover`` message per vault
(``DiscoverWork``), so that many watched vaults spread over instances as polls do; a listing's jobs found that way
are polled from the next round. A vault whose listing fails keeps its mark: the next listing covers the gap.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

from jobs.arm import ArmClient
from jobs.arm.errors import ArmError
from jobs.config import Settings, parse_watch_scope, scope_kind
from jobs.domain.azure_time import parse_time
from jobs.domain.references import InvalidReference, JobRef, VaultRef
from jobs.domain.tracked_item import TrackedItem
from jobs.domain.tracking import vault_grid_after
from jobs.flows.intake import MAX_CONTEXT_BYTES, MAX_CORRELATION_ID
from jobs.flows.poll_round import lease_seconds
from jobs.flows.publisher import Publisher
from jobs.flows.result_events import SUMMARY_KIND, SUMMARY_STATUS
from jobs.flows.subscriptions import Subscriptions
from jobs.providers import Providers, for_vault
from jobs.storage import JobStore
from jobs.storage.watch_store import SETTINGS_WATCH, WATCH_NAME, Watch, WatchedVault, WatchStore
from jobs.webhooks.callback_urls import CallbackUrlRejected, check_callback_url

__all__ = ["FILTERS", "OVERLAP", "RESOURCES_API_VERSION", "SUMMARY_DAYS", "DiscoverWork", "Watch", "WatchRefused",
           "WatchReport", "WatchView", "Watches"]

log = logging.getLogger(__name__)

# A job's startTime may be older than when a listing first shows it: each listing reaches this far behind the last.
OVERLAP = timedelta(minutes=15)
# The first listing of a vault also asks for the jobs still running that started up to this long ago (a list's
# window is 30 days at most).
RUNNING_LOOKBACK = timedelta(days=29)
# Microsoft.Resources api-version of Resources_List / Resources_ListByResourceGroup (a watch's vaults).
RESOURCES_API_VERSION = "2021-04-01"
# Days a watch may owe summaries for (a tracker stopped for longer sends the last ones only).
SUMMARY_DAYS = 7
# A summary's data at most (a queue message holds 64 KiB with the envelope and the subscriber's context): past it,
# the last failed or warned jobs are left out of their lists (``truncated``); the counts stay whole.
SUMMARY_MAX_BYTES = 32 * 1024
# The filters a watch may have: its name for them -> the event's field (``Provider.event_fields``) it compares.
FILTERS = {"operation": "operation", "jobType": "jobType", "entityName": "entityFriendlyName"}


@dataclass(frozen=True)
class DiscoverWork:
    """One poll-queue message: a vault to list for the watches that name it, with each one's mark."""

    vault_id: str
    rows: tuple[WatchedVault, ...]

    KIND: ClassVar[str] = "discover"

    def to_message(self) -> str:
        return json.dumps({"kind": self.KIND, "vaultId": self.vault_id, "rows": [
            {"watch": r.watch, "began": r.began_at.isoformat(), "since": r.since.isoformat() if r.since else None}
            for r in self.rows]}, separators=(",", ":"))

    @classmethod
    def from_message(cls, text: str) -> DiscoverWork | None:
        """The work a message holds, or ``None`` for a message of another kind (a poll)."""
        if '"discover"' not in text:
            return None
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("kind") != cls.KIND:
            return None
        vault_id = str(data["vaultId"])
        rows = tuple(WatchedVault(str(r["watch"]), vault_id, datetime.fromisoformat(r["began"]),
                                  datetime.fromisoformat(r["began"]),
                                  datetime.fromisoformat(r["since"]) if r.get("since") else None)
                     for r in data.get("rows") or [])
        return cls(vault_id, rows)


class WatchRefused(ValueError):
    """A watch that cannot be added or found: one line naming what is wrong."""


@dataclass(frozen=True)
class WatchView:
    """A watch as ``python -m jobs watch list`` shows it."""

    watch: Watch
    vaults: list[str]


@dataclass
class WatchReport:
    expanded: int = 0  # scopes listed for their vaults
    listed: int = 0  # vaults listed for their jobs
    queued: int = 0  # vaults handed to the poll queue (the round's time was spent)
    found: int = 0  # jobs put on record (or a watch's subscriber added to one)
    summaries: int = 0
    unread: list[str] = field(default_factory=list)  # vaults or scopes whose read failed (one line each)


@dataclass
class Watches:
    settings: Settings
    store: WatchStore
    jobs: JobStore
    subscriptions: Subscriptions
    publisher: Publisher
    providers: Providers
    arm: ArmClient
    clock: Callable[[], datetime]
    monotonic: Callable[[], float] = time.monotonic

    # -- enrolment -----------------------------------------------------------------------------------------------
    def add(self, name: str, scopes: Sequence[str], *, callback_url: str | None = None,
            correlation_id: str | None = None, context: dict[str, Any] | None = None,
            filters: dict[str, str] | None = None, daily_summary: bool = False) -> Watch:
        """A new watch (or the same name again: replaced, keeping when each of its scopes began)."""
        if not WATCH_NAME.match(name or ""):
            raise WatchRefused(f"watch name {name!r} must be 1-63 letters, digits, hyphens and underscores")
        if name == SETTINGS_WATCH:
            raise WatchRefused(f"'{SETTINGS_WATCH}' is the watch of JOBS_WATCH_SCOPES; choose another name")
        if not scopes:
            raise WatchRefused("a watch needs at least one scope (a vault, resource group or subscription id)")
        try:
            parsed = list(dict.fromkeys(parse_watch_scope(scope, "scope") for scope in scopes))
        except InvalidReference as exc:
            raise WatchRefused(str(exc)) from None
        if correlation_id is not None and len(correlation_id) > MAX_CORRELATION_ID:
            raise WatchRefused(f"correlationId must be at most {MAX_CORRELATION_ID} characters")
        if context is not None:
            if not isinstance(context, dict):
                raise WatchRefused("context must be a JSON object")
            if len(json.dumps(context, separators=(",", ":")).encode("utf-8")) > MAX_CONTEXT_BYTES:
                raise WatchRefused(f"context is more than the {MAX_CONTEXT_BYTES} bytes a context may have")
        if callback_url is not None:
            try:
                check_callback_url(callback_url, self.settings.callback_allowed_hosts)
            except CallbackUrlRejected as exc:
                raise WatchRefused(exc.reason) from None
        unknown = sorted(set(filters or {}) - set(FILTERS))
        if unknown:
            raise WatchRefused(f"unknown filter {', '.join(unknown)} (only {', '.join(FILTERS)})")
        now = self.clock()
        old = self.store.get_watch(name)
        began = old.scopes if old else {}
        watch = Watch(name, {scope: began.get(scope, now) for scope in parsed}, old.created_at if old else now,
                      correlation_id, context, callback_url, {k: v for k, v in (filters or {}).items() if v},
                      summarized=old.summarized if old else None, daily_summary=daily_summary)
        self.store.put_watch(watch)  # expanded by the next round
        return watch

    def remove(self, name: str) -> bool:
        """Stops the watch (the jobs it found are still followed to their end); whether it was there."""
        if name == SETTINGS_WATCH and self.settings.watch_scopes:
            raise WatchRefused(f"'{SETTINGS_WATCH}' is the watch of JOBS_WATCH_SCOPES: unset the setting instead")
        return self.store.delete_watch(name)

    def list(self) -> list[WatchView]:
        vaults: dict[str, list[str]] = {}
        for row in self.store.list_vaults():
            vaults.setdefault(row.watch, []).append(row.vault_id)
        return [WatchView(watch, sorted(vaults.get(watch.name, []))) for watch in self._watches(self.clock())]

    def _watches(self, now: datetime) -> list[Watch]:
        """Every watch, the settings' one brought in line with ``JOBS_WATCH_SCOPES`` first."""
        watches = {watch.name: watch for watch in self.store.list_watches()}
        wanted = list(self.settings.watch_scopes)
        current = watches.get(SETTINGS_WATCH)
        if not wanted:
            if current is not None:
                self.store.delete_watch(SETTINGS_WATCH)
                del watches[SETTINGS_WATCH]
            return list(watches.values())
        summary = self.settings.watch_daily_summary
        if current is None or set(current.scopes) != set(wanted) or current.daily_summary != summary:
            began = current.scopes if current else {}
            watch = Watch(SETTINGS_WATCH, {scope: began.get(scope, now) for scope in wanted},
                          current.created_at if current else now,
                          summarized=current.summarized if current else None, daily_summary=summary)
            self.store.put_watch(watch)  # expanded_at unset: expanded this round
            watches[SETTINGS_WATCH] = watch
        return list(watches.values())

    # -- the round's part ----------------------------------------------------------------------------------------
    def run(self, now: datetime, until: float, send: Callable[[str], object] | None = None) -> WatchReport:
        """Expansion, discovery and summaries as due at ``now``; no listing starts once ``monotonic()`` passed
        ``until``: the vaults still due then go to the poll queue through ``send`` (else wait for the next
        round)."""
        report = WatchReport()
        watches = self._watches(now)
        if not watches:
            return report
        period = timedelta(seconds=self.settings.watch_expand_seconds)
        for watch in watches:  # one read per resource group or subscription every JOBS_WATCH_EXPAND_SECONDS
            if watch.expanded_at is None or now - watch.expanded_at >= period:
                self._expand(watch, now, report)
        by_name = {watch.name: watch for watch in watches}
        due: dict[str, list[WatchedVault]] = {}
        for row in self.store.list_vaults():
            if row.next_at <= now and row.watch in by_name:
                due.setdefault(row.vault_id.lower(), []).append(row)
        for rows in sorted(due.values(), key=lambda group: min(r.next_at for r in group)):
            if self.monotonic() < until:
                self._discover(rows, by_name, now, report)
            elif send is not None:  # listed by a poll worker; leased to it as a poll is (the worker sets the next)
                send(DiscoverWork(rows[0].vault_id, tuple(rows)).to_message())
                lease = now + timedelta(seconds=lease_seconds(self.settings.poll_seconds))
                next_at = max(lease, self._next_listing(VaultRef.from_locator(rows[0].vault_id), now))
                for row in rows:
                    row.next_at = next_at
                    self.store.put_vault(row)
                report.queued += 1
        for watch in watches:
            report.summaries += self._summaries(watch, now)
        self._log(report)
        return report

    def handle(self, work: DiscoverWork) -> WatchReport:
        """A ``discover`` message of the poll queue: the vault listed for the watches it names that still exist."""
        report = WatchReport()
        watches = {watch.name: watch for watch in self.store.list_watches()}
        rows = [row for row in work.rows if row.watch in watches]
        if rows:
            self._discover(rows, watches, self.clock(), report)
        self._log(report)
        return report

    def _log(self, report: WatchReport) -> None:
        if report.listed or report.found or report.unread or report.queued:
            log.log(logging.WARNING if report.unread else logging.INFO,
                    "watches: %d vault(s) listed, %d job(s) found, %d scope(s) expanded, %d vault(s) sent to the "
                    "poll queue%s", report.listed, report.found, report.expanded, report.queued,
                    f"; unread: {'; '.join(report.unread)}" if report.unread else "")

    def _next_listing(self, vault: VaultRef, now: datetime) -> datetime:
        interval = max(self.settings.watch_seconds, float(self.settings.poll_seconds))
        return vault_grid_after(vault.key, now, self.settings.poll_seconds, interval)

    def _expand(self, watch: Watch, now: datetime, report: WatchReport) -> None:
        """The watch's vaults from its scopes: rows added for new vaults, removed for vaults gone (unless a scope
        could not be read)."""
        found: dict[str, datetime] = {}
        failed = False
        for scope, began in watch.scopes.items():
            try:
                for vault in self._vaults_in(scope):
                    found[vault.locator] = min(began, found.get(vault.locator, began))
            except ArmError as exc:
                failed = True
                report.unread.append(f"{scope}: {exc.status} {exc.code}")
            report.expanded += scope_kind(scope) != "vault"
        existing = {row.vault_id.lower(): row for row in self.store.list_vaults(watch.name)}
        for locator, began in found.items():
            if locator.lower() not in existing:
                self.store.put_vault(WatchedVault(watch.name, locator, began, now))
        if not failed:
            for key, row in existing.items():
                if key not in {locator.lower() for locator in found}:
                    self.store.delete_vault(row)
        watch.expanded_at = now
        self.store.put_watch(watch)

    def _vaults_in(self, scope: str) -> list[VaultRef]:
        if scope_kind(scope) == "vault":
            return [self.providers.registry.for_id(scope).parse_vault_id(scope)]
        types = [f"{kind.namespace}/{kind.vault_type}" for kind in self.providers.registry.kinds
                 if not kind.cross_region]
        query = {"api-version": RESOURCES_API_VERSION,
                 "$filter": " or ".join(f"resourceType eq '{t}'" for t in dict.fromkeys(types))}
        vaults = []
        for resource in self.arm.iter_pages(f"{scope}/resources", query, scope.split("/")[2]):
            try:
                vaults.append(self.providers.registry.for_id(resource.get("id")).parse_vault_id(resource.get("id")))
            except InvalidReference:
                continue  # not a vault the tracker knows
        return vaults

    def _discover(self, rows: list[WatchedVault], watches: dict[str, Watch], now: datetime,
                  report: WatchReport) -> None:
        """One vault listed for every watch that names it."""
        vault = VaultRef.from_locator(rows[0].vault_id)
        provider = self.providers.for_vault(vault)
        since = min(row.since or row.began_at for row in rows) - OVERLAP
        next_at = self._next_listing(vault, now)
        try:
            listed = {str(job.get("name") or "").lower(): job
                      for job in provider.list_recent_jobs(self.arm, vault, since, now)}
            if any(row.since is None for row in rows):  # first listing: jobs running since before the watch
                listed.update(provider.list_running_jobs(self.arm, vault, now - RUNNING_LOOKBACK, now))
        except ArmError as exc:  # this vault's mark stays: the next listing covers the gap
            report.unread.append(f"{vault.id}: {exc.status} {exc.code}")
            for row in rows:
                row.next_at = next_at
                self.store.put_vault(row)
            return
        report.listed += 1
        for row in rows:
            watch = watches[row.watch]
            by_day: dict[date, list[str]] = {}
            for job_id, job in listed.items():
                fields = provider.event_fields(job)  # the provider's reading: any kind of vault, one vocabulary
                if not _wanted(fields, watch, row.began_at, provider.job_state(job, detailed=False).terminal):
                    continue
                tracking_id = self._follow(vault, job_id, watch, now)
                if tracking_id is not None:
                    report.found += 1
                    if not watch.daily_summary:
                        continue
                    day = max(_start_day(fields) or now.date(), row.began_at.date())
                    by_day.setdefault(day, []).append(tracking_id)
            for day, ids in by_day.items():
                self.store.add_found(watch.name, day, ids)
            row.since, row.next_at = now, next_at
            self.store.put_vault(row)

    def _follow(self, vault: VaultRef, job_id: str, watch: Watch, now: datetime) -> str | None:
        """The job on record with the watch's subscriber (published at once if it has ended already); its
        tracking id, or ``None`` when the watch follows it already or it is not a job id."""
        try:
            ref = JobRef.create(vault, job_id)
        except InvalidReference:
            return None
        subscriber = watch.subscriber
        if self.jobs.get_subscriber(ref.key, subscriber.key) is not None:
            return None  # found by an earlier listing (the overlap lists it again)
        deadline = now + timedelta(hours=self.settings.max_tracking_hours)
        item = self.subscriptions.add(TrackedItem.for_job(ref, now, deadline), subscriber, now)
        if item.ended:  # handed in before and ended: this subscriber gets the same result
            record = self.subscriptions.get_subscriber(item.tracking_id, subscriber.key)
            if record is not None:
                self.publisher.publish_one(item, record)
        return item.tracking_id

    # -- daily summaries -----------------------------------------------------------------------------------------
    def _summaries(self, watch: Watch, now: datetime) -> int:
        """The summary of each UTC day that is over and not yet summarised (since the watch began), for a watch
        that wants them; how many."""
        if not watch.daily_summary:
            return 0
        yesterday = now.astimezone(UTC).date() - timedelta(days=1)
        first = max(watch.created_at.astimezone(UTC).date(), yesterday - timedelta(days=SUMMARY_DAYS - 1))
        if watch.summarized is not None:
            first = max(first, watch.summarized + timedelta(days=1))
        sent = 0
        day = first
        while day <= yesterday:
            sent += self.publish_summary(watch, day, now)
            watch.summarized = day
            self.store.put_watch(watch)
            self.store.drop_found(watch.name, day)
            day += timedelta(days=1)
        return sent

    def publish_summary(self, watch: Watch, day: date, now: datetime) -> int:
        """The watch's summary of ``day``: one event per subscriber, once (a repeat publishes nothing)."""
        items = [item for item in (self.jobs.get(t) for t in self.store.list_found(watch.name, day)) if item]
        summary = summarize(watch.name, day, items)
        tracking_id = f"summary-{watch.name}-{day:%Y%m%d}"
        end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        item = TrackedItem(tracking_id=tracking_id, kind=SUMMARY_KIND, vault_id=next(iter(watch.scopes), ""),
                           created_at=now, deadline_at=now, status=SUMMARY_STATUS, result_status=SUMMARY_STATUS,
                           ended_at=end, resource=summary)
        stored, _ = self.jobs.create(item)
        self.jobs.add_subscriber(tracking_id, watch.subscriber)
        return self.publisher.finish(stored)


def summarize(name: str, day: date, items: Iterable[TrackedItem]) -> dict[str, Any]:
    """A day of a watch: how many jobs in each status (``InProgress`` for those still running), and the failed and
    warned ones with their errors."""
    counts: Counter[str] = Counter()
    failed: list[dict[str, Any]] = []
    warned: list[dict[str, Any]] = []
    for item in sorted(items, key=lambda i: i.created_at):
        status = item.result_status or "InProgress"
        counts[status] += 1
        if status not in ("Failed", "CompletedWithWarnings") or not item.job_id:
            continue
        provider = for_vault(item.vault)
        fields = provider.event_fields(item.resource)
        entry = {"jobId": item.job_id, "jobResourceId": provider.job_resource_id(item.job_ref()),
                 "vaultId": item.vault.id, "status": status,
                 **{name: fields.get(name) for name in ("operation", "jobType", "entityFriendlyName", "startTime",
                                                        "endTime")},
                 "errors": item.errors if item.errors is not None else fields.get("errors") or []}
        (failed if status == "Failed" else warned).append(entry)
    summary: dict[str, Any] = {"watch": name, "day": day.isoformat(), "total": sum(counts.values()),
                               "counts": dict(sorted(counts.items())), "failed": failed, "warned": warned}
    while len(json.dumps(summary, separators=(",", ":")).encode("utf-8")) > SUMMARY_MAX_BYTES and (failed or warned):
        (warned if len(warned) >= len(failed) else failed).pop()  # the counts stay whole; the lists say so
        summary["truncated"] = True
    return summary


def _wanted(fields: dict[str, Any], watch: Watch, began: datetime, terminal: bool) -> bool:
    """Whether a listed job (its provider's ``event_fields``) is the watch's: not ended before the vault joined it (a
    running job's ``endTime``, if Azure writes one, means nothing), and through its filters."""
    ended = parse_time(fields.get("endTime")) if terminal else None
    if ended is not None and ended < began:
        return False
    return all(str(fields.get(FILTERS[name]) or "").lower() == value.lower() for name, value in watch.filters.items())


def _start_day(fields: dict[str, Any]) -> date | None:
    started = parse_time(fields.get("startTime"))
    return started.astimezone(UTC).date() if started else None
