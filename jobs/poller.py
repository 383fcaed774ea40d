"""The poll round and its workers.

The timer's round (``plan_round`` + ``Tracker.run_poll_round``) reads the running index only, picks the items that
are due, skips subscriptions inside a Retry-After window, groups the rest by vault, leases them (``NextPollAt``
moved past the round) and hands each group to a worker through the poll queue — queue triggers are how Functions
scales out.

A worker (``Poller.poll``) asks Azure about its group with as few reads as it can:
- ``list`` strategy, for a vault with at least ``JOBS_LIST_THRESHOLD`` jobs due: one ``BackupJobs_List`` with
  ``status eq 'InProgress'`` answers for every job still running; only the jobs missing from it (ended,
  cancelling, or not yet visible) get a ``JobDetails_Get`` — which a terminal result needs anyway for its
  extendedInfo. Its cost follows the vault's running jobs, never its ended history.
- ``get`` strategy otherwise: one ``JobDetails_Get`` per job.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from jobs.arm import ArmClient, ArmError, ArmForbidden, ArmNotFound, ArmThrottled, ArmUnavailable
from jobs.config import Settings
from jobs.publisher import Publisher
from jobs.references import VaultRef
from jobs.statuses import JobStatus
from jobs.store import ConcurrencyConflict, IndexEntry, JobStore, TrackedItem
from jobs.tracking import next_poll_at, observe_job, observe_missing, observe_operation

__all__ = ["PollReport", "PollWork", "Poller", "plan_round"]

log = logging.getLogger(__name__)

BATCH_SIZE = 50


@dataclass(frozen=True)
class PollWork:
    """One poll-queue message: due items of one vault."""

    vault_id: str
    tracking_ids: tuple[str, ...]

    def to_message(self) -> str:
        return json.dumps({"kind": "poll", "vaultId": self.vault_id, "trackingIds": list(self.tracking_ids)},
                          separators=(",", ":"))

    @classmethod
    def from_message(cls, text: str) -> PollWork:
        data = json.loads(text)
        return cls(vault_id=str(data["vaultId"]), tracking_ids=tuple(str(t) for t in data["trackingIds"]))


def plan_round(
    entries: list[IndexEntry], now: datetime, blocked: dict[str, datetime], batch_size: int = BATCH_SIZE
) -> list[PollWork]:
    """Due items grouped by vault in batches, leaving out subscriptions blocked until later than ``now``."""
    by_vault: dict[str, list[IndexEntry]] = {}
    for entry in entries:
        if entry.next_poll_at > now:
            continue
        until = blocked.get(entry.subscription_id.lower())
        if until is not None and until > now:
            continue
        by_vault.setdefault(entry.vault_id.lower(), []).append(entry)
    work = []
    for group in by_vault.values():
        group.sort(key=lambda e: e.next_poll_at)
        for start in range(0, len(group), batch_size):
            chunk = group[start : start + batch_size]
            work.append(PollWork(chunk[0].vault_id, tuple(e.tracking_id for e in chunk)))
    return work


@dataclass
class PollReport:
    polled: int = 0
    ended: int = 0
    published: int = 0
    throttled: bool = False
    strategy: str = ""
    schedule: dict[str, datetime] = field(default_factory=dict)


class Poller:
    def __init__(self, settings: Settings, store: JobStore, arm: ArmClient, publisher: Publisher,
                 clock: Callable[[], datetime], monotonic: Callable[[], float]) -> None:
        self._settings = settings
        self._store = store
        self._arm = arm
        self._publisher = publisher
        self._clock = clock
        self._monotonic = monotonic

    def poll(self, work: PollWork) -> PollReport:
        report = PollReport()
        vault = VaultRef.parse(work.vault_id)
        items: list[TrackedItem] = []
        for tracking_id in work.tracking_ids:
            item = self._store.get(tracking_id)
            if item is None:
                self._store.delete_index(tracking_id)
            elif item.ended:  # ended earlier; a crash may have cut its publishing short
                report.published += self._publisher.finish(item)
            else:
                items.append(item)
        if not items:
            return report
        try:
            jobs = [item for item in items if item.kind == "job"]
            summaries: dict[str, dict] | None = None
            if len(jobs) >= self._settings.list_threshold:
                report.strategy = "list"
                try:
                    summaries = self._running_in_vault(vault, jobs)
                except ArmThrottled:
                    raise
                except ArmError as exc:
                    log.warning("listing jobs of %s failed (%s); asking per job", vault.name, exc)
                    report.strategy = "get"
            else:
                report.strategy = "get"
            for index, item in enumerate(items):
                try:
                    self._poll_item(item, summaries, report)
                except ArmThrottled as exc:  # the client shared the window with other instances
                    self._reschedule(items[index:], self._wall(exc.retry_at), report)
                    report.throttled = True
                    break
        except ArmThrottled as exc:  # the list call itself
            self._reschedule(items, self._wall(exc.retry_at), report)
            report.throttled = True
        self._store.set_next_poll(report.schedule.items())
        return report

    # -- one item ----------------------------------------------------------------------------------------------
    def _poll_item(self, item: TrackedItem, summaries: dict[str, dict] | None, report: PollReport) -> None:
        now = self._clock()
        settings = self._settings
        try:
            if item.kind == "operation":
                job_ids = observe_operation(item, self._arm.get_operation(item.operation_ref()), now)
                if job_ids:
                    item.named_jobs = [str(j).lower() for j in job_ids]
                changed = True
            else:
                summary = summaries.get(item.job_id.lower()) if summaries is not None and item.job_id else None
                if summary is not None:
                    changed = observe_job(item, summary, now, detailed=False)
                else:
                    changed = observe_job(item, self._arm.get_job(item.job_ref()), now)
        except (ArmNotFound, ArmForbidden) as exc:
            changed = observe_missing(item, exc, now, settings.not_found_grace_seconds)
        except ArmThrottled:
            raise
        except (ArmUnavailable, ArmError) as exc:
            log.warning("polling %s failed: %s; trying again next round", item.tracking_id, exc)
            report.schedule[item.tracking_id] = now + timedelta(seconds=max(2 * settings.poll_seconds, 5))
            return
        report.polled += 1
        if changed:
            try:
                self._store.save(item)
            except ConcurrencyConflict:
                fresh = self._store.get(item.tracking_id)
                if fresh is not None and fresh.ended:
                    report.published += self._publisher.finish(fresh)
                return
        if item.ended:
            report.ended += 1
            report.published += self._publisher.finish(item)
            report.schedule.pop(item.tracking_id, None)
        else:
            report.schedule[item.tracking_id] = next_poll_at(
                item, now, settings.poll_seconds, settings.max_poll_interval_seconds
            )

    def _running_in_vault(self, vault: VaultRef, jobs: list[TrackedItem]) -> dict[str, dict]:
        """The vault's InProgress jobs since the earliest tracked one, by lower-case jobId."""
        earliest = min(item.created_at for item in jobs) - timedelta(days=1)
        latest = self._clock() + timedelta(days=1)
        filter = (
            f"status eq '{JobStatus.IN_PROGRESS.value}' and startTime eq '{_filter_date(earliest)}' "
            f"and endTime eq '{_filter_date(latest)}'"
        )
        running = {}
        for resource in self._arm.list_jobs(vault, filter):
            name = str(resource.get("name") or "").lower()
            running[name] = resource
        return running

    def _reschedule(self, items: list[TrackedItem], at: datetime, report: PollReport) -> None:
        for item in items:
            report.schedule[item.tracking_id] = at

    def _wall(self, monotonic_at: float) -> datetime:
        return self._clock() + timedelta(seconds=max(0.0, monotonic_at - self._monotonic()))


def _filter_date(moment: datetime) -> str:
    """``$filter`` dates as Azure Backup takes them: ``yyyy-MM-dd hh:mm:ss AM`` (UTC)."""
    return moment.strftime("%Y-%m-%d %I:%M:%S %p")
