"""The poll worker: one poll-queue message, one vault's due items, as few Azure reads as it can.

``Poller.poll`` asks Azure about a vault's due items through the vault's provider: one list of the vault's running
jobs when the poll policy says so (``PollPolicy.lists``; the list's cost follows the vault's running jobs, never its
history), a GET for each job missing from it (ended, cancelling, not yet visible: a result needs its details
anyway) or shown ended by the detector, and the status of each operation. Refusals (401, 403), throttling and
outages back the vault's items off without ending any of them, never past their deadline: at its deadline an item
whose reads fail ends ``TimedOut`` with the last error (``_read_failed``). The policy schedules each item's next
poll. In the timer's round (``poll_within``) no read starts past the round's time: what is left goes to the queue.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jobs.arm import ArmClient, ArmError, ArmForbidden, ArmNotFound, ArmThrottled, ArmUnauthorized, ArmUnavailable
from jobs.config import Settings
from jobs.domain.azure_time import parse_time
from jobs.domain.references import VaultRef
from jobs.domain.results import ResultStatus
from jobs.domain.tracked_item import TrackedItem
from jobs.domain.tracking import end_tracking_failed, end_unread, observe_job, observe_missing, observe_operation
from jobs.flows.detector_health import DetectorHealth
from jobs.flows.end_hints import EndHints
from jobs.flows.policy import PollPolicy, poll_policy
from jobs.flows.poll_round import PollWork
from jobs.flows.read_failures import ReadFailures
from jobs.providers import Provider, Providers
from jobs.storage import ConcurrencyConflict, JobStore
from jobs.telemetry import Observer, PollReport, ReadRefusal

__all__ = ["PollReport", "PollWork", "Poller"]

log = logging.getLogger(__name__)

LIST_REFUSED_FOR = timedelta(hours=1)
# A fresh job may answer 500 CloudInternalError before it is visible: within this age it counts as a 404.
EARLY_INTERNAL_ERROR_SECONDS = 300


@dataclass
class Poller:
    """Polls one vault's due items. Its inputs are explicit: the settings, the store, the ARM client, the providers,
    the clocks, ``conclude`` (what to do with an item that ended: the publisher's ``conclude``), the poll policy
    (``poll_policy(settings)`` unless given) and the observer that hears of every read and poll."""

    settings: Settings
    store: JobStore
    arm: ArmClient
    providers: Providers
    conclude: Callable[[TrackedItem], int]
    clock: Callable[[], datetime]
    monotonic: Callable[[], float]
    policy: PollPolicy | None = None
    observer: Observer = field(default_factory=Observer)
    detector_health: DetectorHealth | None = None  # where each end the detector covers is measured
    hints: EndHints | None = None  # each running job's expected end, and the durations of those that completed
    failures: ReadFailures = field(default_factory=ReadFailures)
    # Vaults whose BackupJobs_List Azure refused with 400, until when their jobs are asked about one by one.
    list_refused: dict[str, datetime] = field(default_factory=dict)
    # Vaults whose list failed with 5xx or timeouts, and how many times in a row: their jobs back off together.
    list_unavailable: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._policy: PollPolicy = self.policy or poll_policy(self.settings)

    def poll(self, work: PollWork) -> PollReport:
        """Reads the message's due items from Azure, records what changed, concludes what ended and writes each
        item's next poll."""
        return self._poll(work, None)[0]

    def poll_within(self, work: PollWork, until: float) -> PollWork | None:
        """``poll`` for the timer's round, within its time: no read starts once ``monotonic()`` reaches ``until``.
        Returns the items left unread as poll-queue work under the message's lease (their index rows still hold
        it), or None when every item was read."""
        _, left = self._poll(work, until)
        if not left:
            return None
        log.info("%d of %d jobs of %s left to the poll queue: the round's inline time is spent", len(left),
                 len(work.tracking_ids), VaultRef.from_locator(work.vault_id).name)
        ended = set(work.ended)
        return PollWork(work.vault_id, tuple(left), work.lease, tuple(t for t in left if t in ended))

    def _poll(self, work: PollWork, until: float | None) -> tuple[PollReport, list[str]]:
        report = PollReport()
        left: list[str] = []
        vault = VaultRef.from_locator(work.vault_id)
        items = self._load(work, vault, report)
        if items:
            try:
                left = self._poll_items(self.providers.for_vault(vault), vault, items, set(work.ended), report,
                                        until)
            except ArmThrottled as exc:  # the list call itself
                self._reschedule(items, self._wall(exc.retry_at), report)
                report.throttled = True
            except ArmUnauthorized as exc:
                self._credential_refused(vault, items, exc, report)
        self.store.set_next_poll(report.schedule.items())
        self.observer.vault_polled(vault.locator, report)
        return report, left

    def _load(self, work: PollWork, vault: VaultRef, report: PollReport) -> list[TrackedItem]:
        """The message's items that are still running and whose lease it still holds; an item found ended (a
        crash cut its publishing short) is concluded again."""
        tracking_ids = work.tracking_ids
        if work.lease:  # only the items whose lease this message still holds: a later round's copy polls the rest
            leases = self.store.get_leases(tracking_ids)
            tracking_ids = tuple(t for t in tracking_ids if leases.get(t) == work.lease)
            report.skipped = len(work.tracking_ids) - len(tracking_ids)
            if report.skipped:
                log.info("%d of %d jobs of %s skipped: their lease passed to another round", report.skipped,
                         len(work.tracking_ids), vault.name)
        items: list[TrackedItem] = []
        for tracking_id in tracking_ids:
            try:
                item = self.store.get(tracking_id)
                if item is None:
                    self.store.delete_index(tracking_id)
                elif item.ended:
                    report.published += self.conclude(item)
                else:
                    items.append(item)
            except Exception as exc:  # one bad item never holds up the others
                self._item_failed(tracking_id, exc, report)
        return items

    def _poll_items(self, provider: Provider, vault: VaultRef, items: list[TrackedItem], ended: set[str],
                    report: PollReport, until: float | None = None) -> list[str]:
        """One list for the vault's due jobs when the policy says so (jobs a detector saw end get their GET
        straight away), then each item from the list or its own read. With ``until`` (the timer's round), no read
        starts after it: returns the tracking ids left unread, their leases untouched."""
        jobs = [item for item in items if item.kind == "job" and item.tracking_id not in ended]
        summaries: dict[str, dict[str, Any]] | None = None
        report.strategy = "get"
        if until is not None and self.monotonic() >= until:
            return [item.tracking_id for item in items]
        if jobs and provider.lists_running_jobs and self._policy.lists(len(jobs)) and not self._list_refused(vault):
            report.strategy = "list"
            try:
                summaries = self._list(provider, vault, jobs)
            except (ArmThrottled, ArmUnauthorized):
                raise  # the whole message waits, or backs off (``poll``)
            except ArmUnavailable as exc:
                # ARM is failing (5xx, timeouts, after the client's own retries): a GET per job would multiply
                # the load during the incident. The whole message backs off instead, longer each time; only the
                # items at their deadline get a read of their own, the last one (``_read_failed``).
                now = self.clock()
                late = [item for item in items if now >= item.deadline_at]
                self._list_unavailable(vault, [item for item in items if now < item.deadline_at], exc, report)
                if not late:
                    return []
                items, summaries, report.strategy = late, None, "get"
            except ArmError as exc:
                self._list_failed(vault, exc)
                report.strategy = "get"
        left: list[str] = []
        for index, item in enumerate(items):
            detected = item.tracking_id in ended
            if (until is not None and self.monotonic() >= until
                    and not _listed(provider, item, None if detected else summaries)):
                left.append(item.tracking_id)  # a read of its own would start past the round's time
                continue
            source = "detector" if detected else "list" if summaries is not None else "get"
            try:
                self._poll_item(provider, item, None if detected else summaries, report, source)
            except ArmThrottled as exc:  # the client shared the window with other instances
                self._reschedule(items[index:], self._wall(exc.retry_at), report)
                report.throttled = True
                break
            except ArmUnauthorized as exc:  # the rest of the batch would be refused the same way
                self._credential_refused(vault, items[index:], exc, report)
                break
            except Exception as exc:  # a Table, queue or event failure of this item alone
                self._item_failed(item.tracking_id, exc, report)
        return left

    def _list(self, provider: Provider, vault: VaultRef, jobs: list[TrackedItem]) -> dict[str, dict[str, Any]]:
        since = min(item.created_at for item in jobs)
        try:
            summaries = provider.list_running_jobs(self.arm, vault, since, self.clock())
        except ArmError as exc:
            self.observer.arm_read("list", _outcome(exc))
            raise
        self.observer.arm_read("list", "ok")
        self.list_unavailable.pop(vault.key, None)
        return summaries

    def _list_refused(self, vault: VaultRef) -> bool:
        """Whether Azure refused this vault's list (400) within ``LIST_REFUSED_FOR``."""
        until = self.list_refused.get(vault.key)
        if until is not None and self.clock() >= until:
            del self.list_refused[vault.key]
            return False
        return until is not None

    def _list_failed(self, vault: VaultRef, exc: ArmError) -> None:
        """A list Azure answered with an error (not throttling, a credential or an outage): the jobs are asked
        about one by one this time, and for ``LIST_REFUSED_FOR`` when Azure refuses the call itself (400)."""
        if exc.lasting:  # Azure refuses this list call (400), or its nextLink is not followed: no use every round
            self.list_refused[vault.key] = self.clock() + LIST_REFUSED_FOR
            log.warning("Azure refused listing the jobs of %s (%s); asking per job for %s", vault.name,
                        exc, LIST_REFUSED_FOR)
        elif not isinstance(exc, ArmForbidden):  # a 403's warning comes from the GETs, with its advice
            log.warning("listing jobs of %s failed (%s); asking per job", vault.name, exc)

    # -- one item ----------------------------------------------------------------------------------------------
    def _poll_item(self, provider: Provider, item: TrackedItem, summaries: dict[str, dict[str, Any]] | None,
                   report: PollReport, source: str = "get") -> None:
        now = self.clock()
        settings = self.settings
        try:
            changed = self._read(provider, item, summaries, now, source)
        except ArmForbidden as exc:
            self._vault_refused(item, exc, now)
            changed = observe_missing(item, exc, now, settings.not_found_grace_seconds)
        except ArmNotFound as exc:
            self.failures.clear(item.vault.subscription_id, item.vault.key)
            changed = observe_missing(item, exc, now, settings.not_found_grace_seconds)
        except (ArmThrottled, ArmUnauthorized):
            raise
        except ArmUnavailable as exc:
            if not _not_yet_visible(item, exc, now, settings.not_found_grace_seconds):
                self._read_failed(item, exc, now, report)
                return
            changed = observe_missing(item, exc, now, settings.not_found_grace_seconds)
        except ArmError as exc:
            self._read_failed(item, exc, now, report)
            return
        else:
            self.failures.clear(item.vault.subscription_id, item.vault.key)
        report.polled += 1
        if item.failing_since is not None:  # it came through: its own backoff is over
            item.failing_since = None
            changed = True
        if changed and not self._save(item, now, report):
            return
        if item.ended:
            report.ended += 1
            report.published += self.conclude(item)
            report.schedule.pop(item.tracking_id, None)
        else:
            report.schedule[item.tracking_id] = self.next_poll(item, now)

    def _save(self, item: TrackedItem, now: datetime, report: PollReport) -> bool:
        """Writes ``item``'s state row; False when another instance moved it on meanwhile (its ETag): then its end,
        if it ended there, is concluded, else it is asked about again next round, with the lease given back."""
        try:
            self.store.save(item)
            return True
        except ConcurrencyConflict:
            fresh = self.store.get(item.tracking_id)
            if fresh is not None and fresh.ended:
                report.published += self.conclude(fresh)
                report.schedule.pop(item.tracking_id, None)
            else:
                report.schedule[item.tracking_id] = now + timedelta(seconds=self.settings.poll_seconds)
            return False

    def _read_failed(self, item: TrackedItem, error: ArmError, now: datetime, report: PollReport) -> None:
        """A read that failed for a reason that may pass (5xx, a timeout, an unexpected 4xx): the item is asked
        again after a backoff, never later than its deadline; at its deadline it ends ``TimedOut`` with this
        error (``end_unread``) and its reads stop. The error, and since when reads fail, stay on its row (written
        when they change)."""
        before = item.last_error
        since = _failing_since(before, now)
        item.last_error = {"status": error.status, "code": error.code, "message": error.message[:1000],
                           "since": since.isoformat()}
        ended = end_unread(item, error, since, now)
        if not ended:
            log.warning("polling %s failed: %s; trying again next round", item.tracking_id, error)
            retry = now + timedelta(seconds=max(2 * self.settings.poll_seconds, 5))
            report.schedule[item.tracking_id] = min(retry, max(item.deadline_at, now))
        if (ended or item.last_error != before) and not self._save(item, now, report):
            return
        if ended:
            log.warning("%s ended %s at its deadline while its reads failed: %s", item.tracking_id,
                        item.result_status, error)
            report.ended += 1
            report.published += self.conclude(item)
            report.schedule.pop(item.tracking_id, None)

    def _end_late(self, items: list[TrackedItem], error: ArmError, report: PollReport) -> list[TrackedItem]:
        """Of items none of whose reads got through (a refused credential), those at their deadline end
        ``TimedOut`` with ``error``; returns the others."""
        now = self.clock()
        rest = []
        for item in items:
            if now < item.deadline_at:
                rest.append(item)
                continue
            try:
                self._read_failed(item, error, now, report)
            except Exception as exc:  # a Table, queue or event failure of this item alone
                self._item_failed(item.tracking_id, exc, report)
        return rest

    def _read(self, provider: Provider, item: TrackedItem, summaries: dict[str, dict[str, Any]] | None,
              now: datetime, source: str = "get") -> bool:
        """What Azure says of ``item`` (from the vault's list when it is there, else its own read), observed into
        it; whether it changed. A list row that shows the job ended is not a result: its GET fetches the details.
        A job that ended is measured: who told first (``source``), how long after Azure's ``endTime``."""
        if item.kind == "job" and item.job_id and summaries is not None:
            summary = summaries.get(item.job_id.lower())
            if summary is not None:
                state = provider.job_state(summary, detailed=False)
                if not state.terminal:
                    first_sighting = item.resource is None
                    changed = observe_job(item, state, now)
                    changed = self._hint(provider, item, now, detailed=False) or changed
                    if not (first_sighting and self._probes(item)):
                        return changed
        kind = "operation" if item.kind == "operation" else "get"
        try:
            if item.kind == "operation":
                state = provider.operation_state(provider.get_operation(self.arm, item.operation_ref()))
            else:
                resource = provider.get_job(self.arm, item.job_ref())
        except ArmError as exc:
            self.observer.arm_read(kind, _outcome(exc))
            raise
        self.observer.arm_read(kind, "ok")
        if item.kind != "operation":
            changed = observe_job(item, provider.job_state(resource), now)
            if item.ended:
                self._learned(provider, item, source, now)
                return changed
            return self._hint(provider, item, now, detailed=True) or changed
        job_ids = observe_operation(item, state, now)
        if job_ids:
            item.named_jobs = [str(j).lower() for j in job_ids]
        return True

    def _probes(self, item: TrackedItem) -> bool:
        """Whether a running job first seen in a list is read in detail too, for Azure's estimate of its end
        (``JOBS_END_HINTS=estimate``, when nothing else tells it)."""
        return (self.hints is not None and self.settings.end_hints == "estimate" and not item.ended
                and item.expected_end_at is None)

    def _hint(self, provider: Provider, item: TrackedItem, now: datetime, *, detailed: bool) -> bool:
        """Updates a running job's expected end (``jobs.flows.end_hints``); whether it changed."""
        if self.hints is None or item.ended:
            return False
        expected = self.hints.expected_end(item, provider, now, detailed=detailed)
        if expected == item.expected_end_at:
            return False
        item.expected_end_at = expected
        return True

    def _learned(self, provider: Provider, item: TrackedItem, source: str, now: datetime) -> None:
        """Records who told the tracker first that ``item`` ended, and how long after Azure's ``endTime``; a
        sample of the detector's lag when it covers the job."""
        end_time = parse_time(provider.event_fields(item.resource).get("endTime"))
        item.learned_from = source
        item.learned_lag_seconds = None if end_time is None else max(0.0, (now - end_time).total_seconds())
        if self.hints is not None:
            self.hints.record(item, provider)
        if self.detector_health is not None:
            try:
                self.detector_health.record_end(item.tracking_id, item.vault_id, source, end_time, now,
                                                item.vault.subscription_id)
            except Exception as exc:  # a measure, never a reason to hold a result back
                log.warning("recording the detector's lag for %s failed: %s", item.tracking_id, exc)

    def next_poll(self, item: TrackedItem, now: datetime) -> datetime:
        """The item's next poll, as the poll policy schedules it."""
        return self._policy.next_poll(item, now)

    def _item_failed(self, tracking_id: str, error: Exception, report: PollReport) -> None:
        """Something other than ARM failed for one item (a Table or queue error, an event that cannot be built).

        The item backs off on its own while the others go on. One that keeps failing for longer than the grace
        period ends as ``TrackingFailed`` with the error, and its subscribers hear of it: never silence.
        """
        now = self.clock()
        log.warning("tracking %s failed: %s: %s; it backs off on its own", tracking_id, type(error).__name__,
                    str(error)[:300])
        delay = self.settings.poll_seconds
        try:
            item = self.store.get(tracking_id)
            if item is None:
                return
            item.failing_since = item.failing_since or now
            failing_for = (now - item.failing_since).total_seconds()
            delay = min(max(self.settings.poll_seconds, failing_for),
                        max(self.settings.poll_seconds, self.settings.max_poll_interval_seconds))
            if not item.ended:
                item.last_error = {"code": type(error).__name__, "message": str(error)[:1000]}
                if failing_for >= self.settings.not_found_grace_seconds:
                    end_tracking_failed(item, error, failing_for, now)
                    log.error("tracking %s ended as %s after failing for %.0f s: %s", tracking_id,
                              item.result_status, failing_for, error)
            self.store.save(item)
            if item.ended and item.result_status == ResultStatus.TRACKING_FAILED:
                report.ended += 1
                report.published += self.conclude(item)
                report.schedule.pop(tracking_id, None)
                return
        except Exception as again:  # the store itself is failing: the schedule below still applies, if it can
            log.warning("recording the failure of %s failed too: %s: %s", tracking_id, type(again).__name__,
                        str(again)[:300])
        report.schedule[tracking_id] = now + timedelta(seconds=delay)

    def _list_unavailable(self, vault: VaultRef, items: list[TrackedItem], error: ArmError,
                          report: PollReport) -> None:
        failures = self.list_unavailable.get(vault.key, 0) + 1
        self.list_unavailable[vault.key] = failures
        first = max(2 * self.settings.poll_seconds, 5)
        delay = min(first * 2 ** (failures - 1), max(first, self.settings.max_poll_interval_seconds))
        log.warning("listing jobs of %s failed (%s); its %d jobs back off %.0f s rather than one read each",
                    vault.name, error, len(items), delay)
        now = self.clock()
        for item in items:  # never past an item's deadline: then it gets its last read (``_poll_items``)
            report.schedule[item.tracking_id] = min(now + timedelta(seconds=delay), max(item.deadline_at, now))

    def _credential_refused(self, vault: VaultRef, items: list[TrackedItem], error: ArmError,
                            report: PollReport) -> None:
        """A 401: the token was refused. No job ends over it: each keeps its place, with its last error on record,
        and is asked about again after a backoff that doubles while the credential stays wrong, never later than
        its deadline; a job at its deadline ends ``TimedOut`` with the 401 as its last error, as any whose reads
        fail."""
        now = self.clock()
        items = self._end_late(items, error, report)  # a job at its deadline ends TimedOut, with this error
        subscription = vault.subscription_id
        _, due = self.failures.record(subscription, error.status, error.code, error.message, now)
        self.observer.read_refused(ReadRefusal(subscription, "credential", error.status, error.code, error.message,
                                               due))
        delay = self.failures.backoff_seconds(subscription, self.settings.poll_seconds,
                                              max(self.settings.poll_seconds, self.settings.max_poll_interval_seconds))
        last_error = {"status": error.status, "code": error.code, "message": error.message}
        for item in items:
            if item.last_error != last_error:
                item.last_error = last_error
                with contextlib.suppress(ConcurrencyConflict):  # then someone else's state stands
                    self.store.save(item)
            report.schedule[item.tracking_id] = min(now + timedelta(seconds=delay), max(item.deadline_at, now))

    def _vault_refused(self, item: TrackedItem, error: ArmError, now: datetime) -> None:
        """A 403 on a vault: logged as a WARNING from its first occurrence (then every few minutes)."""
        vault = item.vault
        _, due = self.failures.record(vault.key, error.status, error.code, error.message, now)
        self.observer.read_refused(ReadRefusal(vault.id, "role", error.status, error.code, error.message, due,
                                               self.settings.not_found_grace_seconds))

    def _reschedule(self, items: list[TrackedItem], at: datetime, report: PollReport) -> None:
        for item in items:
            report.schedule[item.tracking_id] = at

    def _wall(self, monotonic_at: float) -> datetime:
        return self.clock() + timedelta(seconds=max(0.0, monotonic_at - self.monotonic()))


def _listed(provider: Provider, item: TrackedItem, summaries: dict[str, dict[str, Any]] | None) -> bool:
    """Whether the vault's list answers for ``item`` (it is there, still running): no read of its own."""
    if item.kind != "job" or not item.job_id or summaries is None:
        return False
    summary = summaries.get(item.job_id.lower())
    return summary is not None and not provider.job_state(summary, detailed=False).terminal


def _failing_since(last_error: dict[str, Any] | None, now: datetime) -> datetime:
    """Since when the item's reads fail: what its last error says, else ``now`` (this is the first)."""
    since = parse_time((last_error or {}).get("since"))
    return since if since is not None and since <= now else now


def _outcome(error: ArmError) -> str:
    """How a read ended, for the observer."""
    if isinstance(error, ArmThrottled):
        return "throttled"
    if isinstance(error, ArmNotFound):
        return "not_found"
    if isinstance(error, ArmUnauthorized | ArmForbidden):
        return "refused"
    return "failed"


def _not_yet_visible(item: TrackedItem, error: ArmError, now: datetime, grace_seconds: float) -> bool:
    """A job that answers 500 ``CloudInternalError`` in its first minutes is not visible yet (seen for fresh jobs):
    it counts as a 404 within the grace period, never beyond it."""
    return (item.kind == "job" and error.status == 500 and error.code == "CloudInternalError"
            and (now - item.created_at).total_seconds() < min(EARLY_INTERNAL_ERROR_SECONDS, grace_seconds))
