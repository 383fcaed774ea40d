"""The tracker: the one front door. Every adapter (the Functions triggers, the HTTP API, the command line, the local
host) calls these methods and nothing else, and gets plain results back.

- intake: ``accept_message`` (a queue message), ``track`` (an HTTP body: tracked, with a capability per item),
  ``submit`` (validated, then put on the intake queue);
- what a subscriber sees and does: ``get_status``, ``unsubscribe``, ``unsubscribe_callback``;
- work: ``run_poll_round``, ``handle_poll_message``, ``handle_delivery_message``;
- watches (whole vaults followed): ``add_watch``, ``remove_watch``, ``list_watches``;
- operating: ``setup``, ``check_health``, ``heartbeat``, ``list_items``, ``find_item``, ``waiting_on_intake``,
  ``bindings`` (what a host reads and fires), ``describe``.

Nothing here knows which trigger called it, and nothing here decides anything: each method hands its input to its
flow (``jobs.flows``). The tracker builds the parts once from the settings (the poll policy, the providers, the
outputs, the observer) and keeps them to itself.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from azure.core.exceptions import ResourceNotFoundError

from jobs.arm import ArmClient
from jobs.arm.resource_graph import ResourceGraph
from jobs.config import Settings
from jobs.domain.tracked_item import SubscriberRecord, TrackedItem
from jobs.flows.delivery import Delivery, DeliveryTask
from jobs.flows.detector_health import DetectorHealth, DetectorHealthByKind, MeasuringDetector
from jobs.flows.end_hints import EndHints
from jobs.flows.intake import Acceptance, Intake, TrackRequest
from jobs.flows.policy import poll_policy, uses_detector
from jobs.flows.poll_round import PollWork, run_round
from jobs.flows.poll_worker import Poller
from jobs.flows.publisher import Publisher
from jobs.flows.result_events import event_for
from jobs.flows.subscriptions import CapabilityRefused, StatusView, Subscriptions
from jobs.flows.watches import DiscoverWork, Watch, Watches, WatchRefused, WatchView
from jobs.outputs import Output, outputs_from_settings
from jobs.outputs.eventgrid import EventGridSender
from jobs.providers import Providers, parse_job_id
from jobs.providers.graph import GraphDetector
from jobs.storage import JobStore, StorageAccount, TableThrottleBoard
from jobs.storage.detector_log import TableDetectorLog
from jobs.storage.duration_log import TableDurationLog
from jobs.storage.health import HEALTH_STORAGE, check_storage
from jobs.storage.job_store import DELIVERY_SLACK
from jobs.storage.watch_store import WatchStore
from jobs.telemetry import Heartbeat, Observer, PollReport, RoundReport
from jobs.telemetry.logs import LogObserver
from jobs.telemetry.otel import subscription_of, with_opentelemetry
from jobs.webhooks.sender import WebhookSender

__all__ = [
    "Acceptance",
    "CapabilityRefused",
    "Grant",
    "Health",
    "HostBindings",
    "ItemDetails",
    "RoundReport",
    "StatusView",
    "Tracked",
    "Tracker",
    "Watch",
    "WatchRefused",
    "WatchView",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Grant:
    """A tracked item and the capability (token) that stands for the caller's subscription to it."""

    tracking_id: str
    token: str


@dataclass(frozen=True)
class Tracked:
    """What ``track`` put on record: a grant per item, and the seconds until the first one is polled."""

    grants: list[Grant]
    retry_after: int


@dataclass(frozen=True)
class Health:
    checks: dict[str, str]  # configuration, storage, arm: "ok" or what is wrong
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class ItemDetails:
    """One item for ``python -m jobs status``: its state, its subscribers, and its event (the first subscriber's)."""

    item: TrackedItem
    subscribers: list[SubscriberRecord]
    event: dict[str, object] | None
    detector: str = ""  # the deployment's assessment of Resource Graph, in one line ("off" when it is not used)


@dataclass(frozen=True)
class QueueBinding:
    queue: str
    handler: Callable[[str], object]


@dataclass(frozen=True)
class HostBindings:
    """What a host (the Functions host, ``LocalHost``) reads and fires: the queues with the method each message
    goes to, the timer's period, and the storage account it reads the queues from (AzureWebJobsStorage)."""

    queues: list[QueueBinding]
    poll_seconds: float
    storage: StorageAccount


class Tracker:
    def __init__(
        self,
        settings: Settings,
        *,
        storage: StorageAccount | None = None,
        arm: ArmClient | None = None,
        clock: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        observer: Observer | None = None,
        outputs: Sequence[Output] | None = None,
    ) -> None:
        """``observer`` hears what happens (default: the log lines, ``LogObserver``, and OpenTelemetry when the
        environment configures an exporter, ``jobs.telemetry.otel``); ``outputs`` replace the ones
        the settings turn on (``jobs.outputs.outputs_from_settings``)."""
        self.settings = settings  # read-only configuration, for the tooling; adapters call methods only
        self._clock = clock or (lambda: datetime.now(UTC))
        self._storage = storage or StorageAccount(settings.storage)
        self._observer = observer or with_opentelemetry(LogObserver())
        table = self._storage.table(settings.table)
        self._store = JobStore(table, self._clock,  # the sweep keeps what may still be delivered
                               delivery_hold=timedelta(hours=settings.delivery_retry_hours) + DELIVERY_SLACK)
        self._throttle_board = TableThrottleBoard(table)
        self._arm = arm or ArmClient.from_settings(settings)
        if self._arm.board is None:
            self._arm.board = self._throttle_board  # Retry-After windows shared by every instance
        self._providers = Providers.from_settings(settings)
        self._health: DetectorHealthByKind | None = None
        self._detector: MeasuringDetector | None = None
        if uses_detector(settings):
            graph = GraphDetector(ResourceGraph(self._arm, settings.resource_graph_api_version, monotonic=monotonic))
            self._health = DetectorHealthByKind({  # each kind of vault's lag measured apart
                kind: DetectorHealth(TableDetectorLog(table, kind), self._clock, graph.covers, self._observer,
                                     settings.poll_seconds, kind) for kind in graph.kinds}, graph.kind_of)
            self._detector = MeasuringDetector(graph, self._health)
        self._policy = poll_policy(settings, self._health)
        watched = self._health.covers if self._health is not None else _unwatched
        self._subscriptions = Subscriptions(self._store, self._policy, self._providers, self._clock,
                                            settings.poll_seconds, watched)
        if outputs is None:
            outputs = outputs_from_settings(settings, self._storage, self._clock)
        self._publisher = Publisher(self._store, self._subscriptions, outputs, self._observer)
        self._watches = Watches(settings, WatchStore(table), self._store, self._subscriptions, self._publisher,
                                self._providers, self._arm, self._clock, monotonic)
        self._intake = Intake(settings, self._storage, self._subscriptions, self._publisher, self._clock,
                              self._observer)
        self._poller = Poller(settings, self._store, self._arm, self._providers, self._publisher.conclude,
                              self._clock, monotonic, policy=self._policy, observer=self._observer,
                              detector_health=self._health, hints=EndHints(TableDurationLog(table)))
        sender = WebhookSender(
            secret=settings.webhook_secret,
            allowed_callback_hosts=settings.callback_allowed_hosts,
            timeout_seconds=settings.webhook_timeout_seconds,
        )
        self._delivery = Delivery(settings, self._storage, self._store, sender, self._clock, self._observer,
                                  eventgrid=EventGridSender.from_settings(settings))
        self._probe: StorageAccount | None = None
        for problem in (settings.webhook_secret_problem, settings.eventgrid_key_problem):
            if problem:  # the one line at start-up; deliveries wait, never go unsigned or keyless
                log.error("%s", problem)

    # -- setting up ----------------------------------------------------------------------------------------------
    def setup(self) -> None:
        """Creates the queues and the table when they are missing (local runs; Bicep creates them in Azure)."""
        self._storage.ensure(self.settings.all_queues(), self.settings.table)

    # -- intake --------------------------------------------------------------------------------------------------
    def accept_message(self, body: bytes | str) -> Acceptance:
        """An intake-queue message: tracked, or sent to the rejected queue with its reason."""
        return self._intake.accept_message(body)

    def track(self, body: bytes | str, webhook_action: str | None = None) -> Tracked:
        """A request body (any intake shape): tracked, with a new capability per item for the caller's subscriber.
        Raises ``IntakeRejected`` (naming the field) when the body cannot be tracked; nothing is queued then.
        ``webhook_action``: the Logic Apps webhook action that subscribed a ``callbackUrl``, by which its unsubscribe
        (``unsubscribe_callback``) finds it."""
        request = self._intake.parse(body)
        acceptance = self._intake.track(request)
        grants = [Grant(tracking_id, self._subscriptions.issue_capability(tracking_id, request.subscriber.key))
                  for tracking_id in acceptance.tracking_ids]
        if webhook_action and request.subscriber.callback_url:
            for tracking_id in acceptance.tracking_ids:
                self._subscriptions.add_alias(tracking_id, request.subscriber.key, webhook_action)
        return Tracked(grants, self._subscriptions.retry_after_for(grants[0].tracking_id))

    def submit(self, body: str) -> TrackRequest:
        """Validates a message as the intake would, then puts it on the intake queue (``python -m jobs track``).
        Raises ``IntakeRejected`` instead of queueing what the intake would reject."""
        request = self._intake.parse(body)
        self._storage.ensure([self.settings.intake_queue], self.settings.table)
        self._storage.queue(self.settings.intake_queue).send_message(body)
        return request

    # -- what a subscriber sees and does -------------------------------------------------------------------------
    def get_status(self, tracking_id: str, token: str | None) -> StatusView:
        """The status a capability grants; raises ``CapabilityRefused`` (401 without one, 404 otherwise)."""
        return self._subscriptions.status(tracking_id, token)

    def unsubscribe(self, tracking_id: str, token: str | None, callback_url: str | None = None) -> None:
        """Drops the subscription a capability stands for (or the item's subscribers with ``callback_url``)."""
        self._subscriptions.unsubscribe(tracking_id, token, callback_url)

    def public_base_url(self) -> str | None:
        """Where callers reach the HTTP API, up to ``/api`` (``JOBS_PUBLIC_BASE_URL``); None: as each request says."""
        return self.settings.public_base_url

    def unsubscribe_callback(self, callback_url: str, correlation_id: str | None = None) -> int:
        """Drops every subscription with ``callback_url`` (or a webhook action's identity given to ``track``),
        whatever its item, only those that gave ``correlation_id`` when it is given; returns how many."""
        return self._subscriptions.unsubscribe_callback(callback_url, correlation_id)

    # -- work ----------------------------------------------------------------------------------------------------
    def run_poll_round(self) -> RoundReport:
        """The timer's round: polls a small round itself, hands a large one vault by vault to the poll queue."""
        queue = self._storage.queue(self.settings.poll_queue)
        backlog = queue.get_queue_properties().approximate_message_count or 0
        with self._observer.activity("backupjobs.round", {}):
            return run_round(self._store, self._throttle_board, queue.send_message, self._clock(),
                             self.settings.poll_seconds, retention_days=self.settings.retention_days, backlog=backlog,
                             detector=self._detector, poll=self._poll_vault_within,
                             inline_max=self.settings.inline_poll_max, batch_size=self._policy.batch_size,
                             observer=self._observer, monotonic=self._poller.monotonic,
                             discover=lambda now, until: self._watches.run(now, until, queue.send_message))

    def handle_poll_message(self, text: str) -> PollReport:
        """A poll-queue message: one vault's due items, or a watched vault to list (``DiscoverWork``)."""
        discover = DiscoverWork.from_message(text)
        if discover is not None:
            with self._observer.activity("backupjobs.watch_listing", {"backupjobs.vault": discover.vault_id}):
                found = self._watches.handle(discover)
            return PollReport(polled=found.listed, strategy="discover")
        return self._poll_vault(PollWork.from_message(text))

    def _poll_vault(self, work: PollWork) -> PollReport:
        with self._observer.activity("backupjobs.vault_poll", _vault_attributes(work)):
            return self._poller.poll(work)

    def _poll_vault_within(self, work: PollWork, until: float) -> PollWork | None:
        """A vault's poll in the timer's round, within its time (``Poller.poll_within``)."""
        with self._observer.activity("backupjobs.vault_poll", _vault_attributes(work)):
            return self._poller.poll_within(work, until)

    def handle_delivery_message(self, text: str) -> str:
        """One delivery attempt; returns what happened: delivered, retry, deadletter or dropped."""
        task = DeliveryTask.from_message(text)
        with self._observer.activity("backupjobs.delivery", {"backupjobs.job": task.tracking_id,
                                                             "backupjobs.target": task.target}):
            return self._delivery.attempt(task)

    # -- watches -------------------------------------------------------------------------------------------------
    def add_watch(self, name: str, scopes: Sequence[str], *, callback_url: str | None = None,
                  correlation_id: str | None = None, context: dict[str, object] | None = None,
                  filters: dict[str, str] | None = None, daily_summary: bool = False) -> Watch:
        """Watches vaults (ids, resource groups, subscriptions) with a subscriber of its own; the next round
        expands and lists them. Raises ``WatchRefused`` (one line) for what cannot be watched."""
        self._storage.ensure([], self.settings.table)
        return self._watches.add(name, scopes, callback_url=callback_url, correlation_id=correlation_id,
                                 context=context, filters=filters, daily_summary=daily_summary)

    def remove_watch(self, name: str) -> bool:
        """Stops a watch (jobs it found are followed to their end); whether there was one by that name."""
        try:
            return self._watches.remove(name)
        except ResourceNotFoundError:  # no table yet: no watch either
            return False

    def list_watches(self) -> list[WatchView]:
        """Every watch (``JOBS_WATCH_SCOPES``'s as ``settings``) with the vaults its last expansion found."""
        try:
            return self._watches.list()
        except ResourceNotFoundError:
            return []

    # -- operating -----------------------------------------------------------------------------------------------
    def failing_subscriptions(self) -> dict[str, str]:
        """Subscriptions (401: the credential) and vaults (403: the role) whose reads Azure refuses, by id: one
        line each. Empty when every read works."""
        return self._poller.failures.snapshot()

    def check_health(self) -> Health:
        """Configuration, storage (a quick probe of its own), an ARM token (asked now) and Azure's refusals, each "ok"
        or what is wrong."""
        checks: dict[str, str] = {}
        problems: list[str] = []
        unresolved = [p for p in (self.settings.webhook_secret_problem, self.settings.eventgrid_key_problem) if p]
        checks["configuration"] = "; ".join(unresolved) or "ok"
        problems += [f"configuration: {problem}" for problem in unresolved]
        if self._probe is None:
            self._probe = StorageAccount(self.settings.storage, HEALTH_STORAGE)
        storage = check_storage(self._probe, self.settings.intake_queue, self.settings.table)
        checks["storage"] = storage or "ok"
        if storage:
            problems.append(f"storage: {storage}")
        failing = self.failing_subscriptions()
        token = self._arm.transport.token_problem()  # asked now: this instance may not have polled yet
        arm = [f"token: {token}"] if token else []
        checks["arm"] = "; ".join(arm + [f"{key}: {why}" for key, why in sorted(failing.items())]) or "ok"
        # How far Resource Graph is trusted: a measure, not a fault (a late detector costs reads, not results).
        checks["detector"] = self._detector_state()
        problems += [f"no ARM token: {token}"] if token else []
        problems += [f"ARM reads refused for {key}: {why}" for key, why in sorted(failing.items())]
        return Health(checks, problems)

    def heartbeat(self) -> Heartbeat:
        """The numbers of the ``run`` heartbeat (running, due, deliveries waiting, failing reads), also handed to
        the observer."""
        index = self._store.list_index()
        now = self._clock()
        due = sum(1 for entry in index if entry.next_poll_at <= now)
        deliveries = self._storage.queue(self.settings.deliver_queue).get_queue_properties()
        beat = Heartbeat(len(index), due, deliveries.approximate_message_count or 0, self.failing_subscriptions(),
                         self._detector_state())
        self._observer.heartbeat(beat)
        return beat

    def has_running(self) -> bool:
        """Whether any item is still tracked as running."""
        return bool(self._store.list_index())

    def bindings(self) -> HostBindings:
        return HostBindings(
            queues=[QueueBinding(self.settings.intake_queue, self.accept_message),
                    QueueBinding(self.settings.poll_queue, self.handle_poll_message),
                    QueueBinding(self.settings.deliver_queue, self.handle_delivery_message)],
            poll_seconds=self.settings.poll_seconds,
            storage=self._storage,
        )

    def list_items(self, state: str = "all") -> list[TrackedItem] | None:
        """The items the table holds (``running``, ``ended`` or ``all``); ``None`` when the table does not exist."""
        try:
            return list(self._store.list_items(state))
        except ResourceNotFoundError:
            return None

    def find_item(self, wanted: str) -> ItemDetails | None:
        """The item ``wanted`` names (tracking id, job resource id, job GUID, operation id or operation URL), with
        its subscribers and event. Raises ``InvalidReference`` for a resource id that is not a job's and
        ``ResourceNotFoundError`` when the table does not exist."""
        item = self._find(wanted.strip())
        if item is None:
            return None
        subscribers = self._store.list_subscribers(item.tracking_id)
        event = event_for(item, subscribers[0]) if item.ended and subscribers and not item.named_jobs else None
        return ItemDetails(item, subscribers, event, self._detector_state())

    def _detector_state(self) -> str:
        """The deployment's assessment of Resource Graph in one line; "off" when it is not asked."""
        return self._health.describe() if self._health is not None else "off"  # each kind of vault's

    def _find(self, wanted: str) -> TrackedItem | None:
        if wanted.lower().startswith(("http://", "https://")):
            path = urlsplit(wanted).path.rstrip("/")
            operation_id = path.rsplit("/", 1)[-1].lower()
            return next((i for i in self._store.list_items() if (i.operation_id or "").lower() == operation_id
                         or (i.operation_path or "").lower() == path.lower()), None)
        if wanted.startswith("/"):
            wanted = parse_job_id(wanted).key
        item = self._store.get(wanted)
        if item is None:
            lowered = wanted.lower()
            item = next((i for i in self._store.list_items()
                         if lowered in ((i.job_id or "").lower(), (i.operation_id or "").lower())), None)
        return item

    def waiting_on_intake(self) -> int:
        """Messages on the intake queue that no runner has read yet (0 when the queue does not exist)."""
        try:
            properties = self._storage.queue(self.settings.intake_queue).get_queue_properties()
        except ResourceNotFoundError:
            return 0
        return int(properties.approximate_message_count or 0)

    def describe(self) -> dict[str, str]:
        """What this tracker runs against, for a banner: storage (never a key), ARM, queues, polling."""
        settings = self.settings
        endpoints = self._storage.endpoints()
        match = re.search(r"AccountName=([^;]+)", settings.storage.connection_string or "", re.IGNORECASE)
        account = f"account {match[1]}, " if match else ""
        token = "fixed token from JOBS_ARM_TOKEN" if settings.arm_token else "DefaultAzureCredential"
        results = f"results {settings.results_queue}" if settings.results_queue else "results queue off"
        return {
            "storage": f"{account}queue {endpoints['queue']}, table {endpoints['table']} ({settings.table})",
            "ARM": f"{settings.arm_endpoint} ({token})",
            "queues": f"intake {settings.intake_queue}, poll {settings.poll_queue}, deliver {settings.deliver_queue}; "
                      f"{results}",
            "polling": f"every {settings.poll_seconds:g} s; a heartbeat line every minute or on change",
        }


def _unwatched(locator: str) -> bool:
    """Without a detector, no vault's jobs are watched between their polls."""
    return False


def _vault_attributes(work: PollWork) -> dict[str, object]:
    """A vault poll's span attributes: ids only."""
    return {"backupjobs.vault": work.vault_id, "backupjobs.subscription": subscription_of(work.vault_id),
            "backupjobs.jobs": list(work.tracking_ids)}
