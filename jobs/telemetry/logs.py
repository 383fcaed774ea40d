"""The log sink: the tracker's summary lines and the ``run`` heartbeat, as one ``Observer``.

Per-attempt diagnostics (a read that failed, a webhook attempt's reason) stay with the flow that knows them; what
an operator scans for (what was tracked or rejected, each round, each result, a refused credential or role, the
heartbeat) is written here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from jobs.telemetry import Assessment, Heartbeat, Observer, PollReport, ReadRefusal, RoundReport

__all__ = ["LogObserver"]

log = logging.getLogger("jobs.tracker")


class LogObserver(Observer):
    """Writes the summary lines to the ``jobs.tracker`` logger; the heartbeat once a ``heartbeat_seconds`` or
    when a number changes."""

    def __init__(self, heartbeat_seconds: float = 60.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._heartbeat_seconds = heartbeat_seconds
        self._monotonic = monotonic
        self._last_beat: tuple[float, tuple[object, ...]] | None = None
        self._lock = threading.Lock()

    def intake_accepted(self, tracking_ids: Sequence[str]) -> None:
        log.info("tracking %s", ", ".join(tracking_ids))

    def intake_rejected(self, reason: str) -> None:
        log.warning("rejected an intake message: %s", reason)

    def round_finished(self, report: RoundReport) -> None:
        log.info("poll round: %d rows read, %d leased, %d polled here, %d messages, %d seen ended by Resource "
                 "Graph, %d swept", report.running, report.due, report.inline, report.messages, report.detected,
                 report.swept)

    def vault_polled(self, vault_id: str, report: PollReport) -> None:
        log.debug("polled %s: %d read (%s), %d ended, %d published, %d skipped%s", vault_id, report.polled,
                  report.strategy or "-", report.ended, report.published, report.skipped,
                  ", throttled" if report.throttled else "")

    def read_refused(self, refusal: ReadRefusal) -> None:
        if not refusal.first:
            return
        if refusal.kind == "credential":
            what = ("the tracker could not get a token" if refusal.code == "TokenUnavailable"
                    else "Azure refused the tracker's credential")
            log.error(
                "%s for subscription %s (%s %s: %s). No job ends over this; they are retried with backoff. Check the "
                "token: AZURE_CLIENT_ID names the managed identity the app runs as (and JOBS_ARM_TOKEN, if set, must "
                "be valid for ARM_ENDPOINT)",
                what, refusal.scope, refusal.status, refusal.code, refusal.message or "no message",
            )
        else:
            log.warning(
                "the tracker's identity may not read vault %s (%s %s). Grant it the Backup Reader role on the vault, "
                "its resource group or its subscription; until then its jobs end as BackupJob.NotFound after %.0f s",
                refusal.scope, refusal.status, refusal.code, refusal.grace_seconds,
            )

    def result_published(self, tracking_id: str, status: str, subscriber: str, correlation_id: str | None,
                         outputs: Sequence[str]) -> None:
        log.info("published %s for %s to subscriber %s (correlationId %s; %s)", status, tracking_id, subscriber,
                 correlation_id or "-", ", ".join(outputs) or "no outputs")

    def heartbeat(self, beat: Heartbeat) -> None:
        """One line a ``heartbeat_seconds``, or sooner when a number changes."""
        now = self._monotonic()
        # The detector's state counts as a change, not its figures (they move with every ended job).
        numbers = (beat.running, beat.due, beat.deliveries_waiting, tuple(sorted(beat.failing.items())),
                   beat.detector.partition(";")[0])
        with self._lock:
            if self._last_beat is not None:
                last_time, last_numbers = self._last_beat
                if last_numbers == numbers and now - last_time < self._heartbeat_seconds:
                    return
            self._last_beat = (now, numbers)
        log.info("heartbeat: running jobs %d, due %d, deliveries waiting %d, failing subscriptions %d%s%s",
                 beat.running, beat.due, beat.deliveries_waiting, len(beat.failing),
                 "".join(f"; {sub}: {why}" for sub, why in sorted(beat.failing.items())),
                 f"; Resource Graph: {beat.detector}" if beat.detector else "")

    def detector_assessed(self, assessment: Assessment, changed: bool) -> None:
        """A line when the state changes: WARNING when the detector stops being fresh, INFO otherwise."""
        if not changed:
            return
        level = logging.INFO if assessment.state in ("fresh", "unproven") else logging.WARNING
        log.log(level, "Resource Graph as the detector%s: %s",
                 f" of {assessment.kind} jobs" if assessment.kind else "", assessment.describe())
