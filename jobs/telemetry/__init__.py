"""The telemetry seam: what the flows report as it happens, to an ``Observer`` whose hooks do nothing by default.

The flows call the hooks (a round, a vault's poll, each Azure read and refusal, a result published, a delivery
attempt, the intake's verdicts, the heartbeat's numbers, the detector's assessment); a sink subclasses ``Observer``
and overrides what it needs. ``activity`` wraps a unit of work (a round, a vault's poll, a delivery) so that a sink
can time it as a span; the hooks called inside it happen within it. ``jobs.telemetry.logs.LogObserver`` (the log
lines and the ``run`` heartbeat) is always on; ``jobs.telemetry.otel.OtelObserver`` (metrics and spans through
OpenTelemetry) joins it when ``jobs.telemetry.otel.with_opentelemetry`` finds an exporter configured.
``Observers`` hands each report to several. A hook must never raise into a flow: ``Observers`` logs and drops what
a sink raises.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

__all__ = ["Assessment", "Attributes", "Heartbeat", "Observer", "Observers", "PollReport", "ReadRefusal",
           "RoundReport"]

# A span's attributes as the tracker names them: ids only (a job's tracking id, a vault's locator, a subscription
# id, a delivery target's name), never a URL, a capability or a secret.
Attributes = Mapping[str, str | Sequence[str]]

log = logging.getLogger(__name__)


@dataclass
class RoundReport:
    """One timer round (``jobs.flows.poll_round``)."""

    running: int  # index rows the round read: the due ones only (every running one when a detector is on)
    due: int
    messages: int  # poll messages sent to the poll queue
    swept: int = 0  # ended jobs removed after JOBS_RETENTION_DAYS
    inline: int = 0  # vault batches the round polled itself instead of sending them
    detected: int = 0  # items the detector showed as ended
    whole_index: bool = False  # ``running`` is every running item (the detector read them all), not the due ones


@dataclass
class PollReport:
    """One vault's due items polled (``jobs.flows.poll_worker``)."""

    polled: int = 0
    ended: int = 0
    published: int = 0
    throttled: bool = False
    skipped: int = 0  # items whose lease had passed to another round
    strategy: str = ""  # "list" or "get": how the vault's jobs were read
    schedule: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class ReadRefusal:
    """Azure refused the tracker's reads: ``scope`` is a subscription (401, the credential) or a vault (403, the
    role). ``first`` is true once per scope per few minutes: when a sink should say it loudly."""

    scope: str
    kind: str  # "credential" or "role"
    status: int
    code: str
    message: str
    first: bool
    grace_seconds: float = 0.0  # a refused vault's jobs end as NotFound after this long


@dataclass(frozen=True)
class Heartbeat:
    """The numbers the ``run`` heartbeat shows."""

    running: int
    due: int
    deliveries_waiting: int
    failing: dict[str, str]  # subscription or vault id: what fails
    detector: str = ""  # the detector's assessment in one line, its state first ("off": Resource Graph not asked)


class Assessment(Protocol):
    """The detector's assessment (``jobs.flows.detector_health.DetectorAssessment``) as a sink sees it."""

    state: str
    lag_p95: float | None  # seconds from Azure's endTime to the detector showing it, p95 of the newest samples
    kind: str  # the vault kind measured: "" for Recovery Services, "dataprotection" for Backup vaults

    def describe(self) -> str: ...


class Observer:
    """Hooks the flows call; each does nothing here. Subclass and override what a sink needs."""

    def intake_accepted(self, tracking_ids: Sequence[str]) -> None:
        """A message or request was put on record: these items are tracked."""

    def intake_rejected(self, reason: str) -> None:
        """A queue message could not be used; it went to the rejected queue with ``reason``."""

    def round_finished(self, report: RoundReport) -> None:
        """A timer round ended."""

    def vault_polled(self, vault_id: str, report: PollReport) -> None:
        """A vault's due items were polled (in the round or from the poll queue)."""

    def arm_read(self, kind: str, outcome: str) -> None:
        """One read from Resource Manager: ``kind`` get, list or operation; ``outcome`` ok, not_found, refused,
        throttled or failed."""

    def read_refused(self, refusal: ReadRefusal) -> None:
        """Azure refused a read for the credential (401) or the role (403)."""

    def result_published(self, tracking_id: str, status: str, subscriber: str, correlation_id: str | None,
                         outputs: Sequence[str]) -> None:
        """An ended item's event went to one subscriber through ``outputs`` (their names)."""

    def delivery_attempted(self, tracking_id: str, target: str, outcome: str, detail: str = "") -> None:
        """One webhook attempt: ``outcome`` delivered, retry, deadletter or dropped."""

    def heartbeat(self, beat: Heartbeat) -> None:
        """The local host's periodic numbers (``python -m jobs run``)."""

    def detector_assessed(self, assessment: Assessment, changed: bool) -> None:
        """A round assessed the detector (Azure Resource Graph); ``changed``: its state is not the last one's."""

    def event_published(self, body: bytes) -> None:
        """A result event went out (after ``result_published``): the CloudEvent exactly as the outputs got it."""

    def graph_asked(self, queries: int, unavailable: str | None) -> None:
        """The detector asked Resource Graph: ``queries`` requests (pages included); ``unavailable`` says why the
        round was not answered in full ("throttled", "quota", "refused", "unreachable"), None when it was."""

    def activity(self, name: str, attributes: Attributes) -> AbstractContextManager[object]:
        """A unit of work runs within the returned context (``backupjobs.round``, ``backupjobs.vault_poll``,
        ``backupjobs.delivery``): a sink may time it as a span. The work's own exceptions pass through."""
        return nullcontext()


class Observers(Observer):
    """Several sinks as one: each hook goes to every sink; a sink that raises is logged, never the flow's fault."""

    def __init__(self, sinks: Sequence[Observer]) -> None:
        self.sinks = tuple(sinks)

    def _each(self, hook: str, *args: object) -> None:
        for sink in self.sinks:
            try:
                getattr(sink, hook)(*args)
            except Exception:  # a sink's failure never stops tracking
                log.exception("telemetry sink %s failed in %s", type(sink).__name__, hook)

    def intake_accepted(self, tracking_ids: Sequence[str]) -> None:
        self._each("intake_accepted", tracking_ids)

    def intake_rejected(self, reason: str) -> None:
        self._each("intake_rejected", reason)

    def round_finished(self, report: RoundReport) -> None:
        self._each("round_finished", report)

    def vault_polled(self, vault_id: str, report: PollReport) -> None:
        self._each("vault_polled", vault_id, report)

    def arm_read(self, kind: str, outcome: str) -> None:
        self._each("arm_read", kind, outcome)

    def read_refused(self, refusal: ReadRefusal) -> None:
        self._each("read_refused", refusal)

    def result_published(self, tracking_id: str, status: str, subscriber: str, correlation_id: str | None,
                         outputs: Sequence[str]) -> None:
        self._each("result_published", tracking_id, status, subscriber, correlation_id, outputs)

    def delivery_attempted(self, tracking_id: str, target: str, outcome: str, detail: str = "") -> None:
        self._each("delivery_attempted", tracking_id, target, outcome, detail)

    def heartbeat(self, beat: Heartbeat) -> None:
        self._each("heartbeat", beat)

    def detector_assessed(self, assessment: Assessment, changed: bool) -> None:
        self._each("detector_assessed", assessment, changed)

    def event_published(self, body: bytes) -> None:
        self._each("event_published", body)

    def graph_asked(self, queries: int, unavailable: str | None) -> None:
        self._each("graph_asked", queries, unavailable)

    @contextmanager
    def activity(self, name: str, attributes: Attributes) -> Iterator[object]:
        """Every sink's context, entered in turn; a sink that fails to enter one is logged and left out."""
        with ExitStack() as stack:
            for sink in self.sinks:
                try:
                    stack.enter_context(sink.activity(name, attributes))
                except Exception:
                    log.exception("telemetry sink %s failed in activity", type(sink).__name__)
            yield None

