"""The tracker: one object whose methods are what the Functions triggers (and the local host) call.

- ``accept_message``: an intake message (queue trigger on ``JOBS_INTAKE_QUEUE``).
- ``run_poll_round``: the timer's round, which polls a small round itself and hands a large one to the poll queue.
- ``handle_poll_message``: a poll-queue message (queue trigger).
- ``handle_delivery_message``: a deliver-queue message (queue trigger): one webhook attempt.

Nothing here knows which trigger called it, and nothing here decides anything: each method hands its input to
its flow (``jobs.flows``). The tracker only builds the parts once, from the settings, and wires them together.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from jobs.arm import ArmClient
from jobs.arm.resource_graph import ResourceGraph
from jobs.config import Settings
from jobs.flows.delivery import Delivery, DeliveryTask
from jobs.flows.intake import Acceptance, Intake
from jobs.flows.poll_round import BATCH_SIZE, VAULT_BATCH_SIZE, PollWork, RoundReport, run_round
from jobs.flows.poll_worker import Poller, PollReport
from jobs.flows.publisher import Publisher
from jobs.providers import Providers
from jobs.providers.graph import GraphDetector
from jobs.storage import JobStore, StorageAccount, TableThrottleBoard
from jobs.webhooks.sender import WebhookSender

__all__ = ["Acceptance", "RoundReport", "Tracker"]

log = logging.getLogger(__name__)


class Tracker:
    def __init__(
        self,
        settings: Settings,
        *,
        storage: StorageAccount | None = None,
        arm: ArmClient | None = None,
        clock: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self.storage = storage or StorageAccount(settings.storage)
        table = self.storage.table(settings.table)
        self.store = JobStore(table, self.clock)
        self.throttle_board = TableThrottleBoard(table)
        self.arm = arm or ArmClient.from_settings(settings)
        if self.arm.board is None:
            self.arm.board = self.throttle_board  # Retry-After windows shared by every instance
        self.providers = Providers.from_settings(settings)
        self.publisher = Publisher(settings, self.storage, self.store, self.clock)
        self.intake = Intake(settings, self.storage, self.store, self.publisher, self.clock)
        self.poller = Poller(settings, self.store, self.arm, self.providers, self.intake.conclude, self.clock,
                             monotonic)
        self.resource_graph = (
            GraphDetector(ResourceGraph(self.arm, settings.resource_graph_api_version, monotonic=monotonic))
            if settings.resource_graph else None)
        self.sender = WebhookSender(
            secret=settings.webhook_secret,
            allowed_callback_hosts=settings.callback_allowed_hosts,
            timeout_seconds=settings.webhook_timeout_seconds,
        )
        self.delivery = Delivery(settings, self.storage, self.store, self.sender, self.clock)
        if settings.webhook_secret_problem:  # the one line at start-up; deliveries wait, never go unsigned
            log.error("%s", settings.webhook_secret_problem)

    def setup(self) -> None:
        """Creates the queues and the table when they are missing (local runs; Bicep creates them in Azure)."""
        self.storage.ensure(self.settings.all_queues(), self.settings.table)

    def accept_message(self, body: bytes | str) -> Acceptance:
        return self.intake.accept_message(body)

    def run_poll_round(self) -> RoundReport:
        queue = self.storage.queue(self.settings.poll_queue)
        backlog = queue.get_queue_properties().approximate_message_count or 0
        return run_round(self.store, self.throttle_board, queue.send_message, self.clock(), self.settings.poll_seconds,
                         retention_days=self.settings.retention_days, backlog=backlog, detector=self.resource_graph,
                         poll=self.poller.poll, inline_max=self.settings.inline_poll_max,
                         batch_size=VAULT_BATCH_SIZE if self.settings.poll_strategy == "vault" else BATCH_SIZE)

    def handle_poll_message(self, text: str) -> PollReport:
        return self.poller.poll(PollWork.from_message(text))

    def failing_subscriptions(self) -> dict[str, str]:
        """Subscriptions (401: the credential) and vaults (403: the role) whose reads Azure refuses, by id: one
        line each, for the ``run`` heartbeat and the health check. Empty when every read works."""
        return self.poller.failures.snapshot()

    def handle_delivery_message(self, text: str) -> str:
        """One delivery attempt; returns what happened: delivered, retry, deadletter or dropped."""
        return self.delivery.attempt(DeliveryTask.from_message(text))
