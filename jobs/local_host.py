"""The local host: runs the tracker on this machine with the same code paths as the Functions triggers.

It does what the Functions host does for this app: fires the poll round every ``JOBS_POLL_SECONDS``, and reads the
intake, poll and deliver queues, handing each message to the same ``Tracker`` method the queue trigger calls, on
a pool of worker threads (the host's ``batchSize``). A message whose handler fails becomes visible again after
the visibility timeout and, after ``maxDequeueCount`` (5) failed attempts, moves to ``<queue>-poison``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from azure.storage.queue import QueueClient, QueueMessage

from jobs.tracker import Tracker

__all__ = ["LocalHost"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Binding:
    queue: str
    handler: Callable[[str], object]


class LocalHost:
    def __init__(
        self,
        tracker: Tracker,
        *,
        workers: int = 16,
        visibility_seconds: int = 30,
        max_dequeue_count: int = 5,
        idle_sleep: float = 0.2,
    ) -> None:
        self.tracker = tracker
        settings = tracker.settings
        self._bindings = [
            _Binding(settings.intake_queue, tracker.accept_message),
            _Binding(settings.poll_queue, tracker.handle_poll_message),
            _Binding(settings.deliver_queue, tracker.handle_delivery_message),
        ]
        self._workers = workers
        self._visibility = visibility_seconds
        self._max_dequeue = max_dequeue_count
        self._idle_sleep = idle_sleep
        self._inflight: set[Future[None]] = set()
        self._lock = threading.Lock()
        self.stop_event = threading.Event()

    def run(self, *, until_idle: bool = False, timeout: float | None = None) -> int:
        """Runs until stopped; with ``until_idle``, returns 0 once all is done, 1 at ``timeout``."""
        self.tracker.setup()
        started = time.monotonic()
        next_round = 0.0
        poll_seconds = self.tracker.settings.poll_seconds
        with ThreadPoolExecutor(self._workers, thread_name_prefix="jobs-worker") as pool:
            try:
                while not self.stop_event.is_set():
                    now = time.monotonic()
                    if timeout is not None and now - started > timeout:
                        log.error("timed out after %.0f s with work left", timeout)
                        return 1
                    if now >= next_round:
                        next_round = now + poll_seconds
                        self._guarded(self.tracker.run_poll_round)
                    received = self._receive(pool)
                    if until_idle and not received and self._idle():
                        return 0
                    if not received:
                        self.stop_event.wait(self._idle_sleep)
            finally:
                self.stop_event.set()
        return 0

    def _receive(self, pool: ThreadPoolExecutor) -> int:
        received = 0
        for binding in self._bindings:
            with self._lock:
                room = 2 * self._workers - len(self._inflight)
            if room <= 0:
                break
            client = self.tracker.storage.queue(binding.queue)
            try:
                messages = list(client.receive_messages(
                    messages_per_page=min(32, room), max_messages=min(32, room), visibility_timeout=self._visibility
                ))
            except Exception:
                log.exception("reading queue %s failed", binding.queue)
                continue
            for message in messages:
                future = pool.submit(self._process, client, binding, message)
                with self._lock:
                    self._inflight.add(future)
                future.add_done_callback(self._done)
            received += len(messages)
        return received

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._inflight.discard(future)

    def _process(self, client: QueueClient, binding: _Binding, message: QueueMessage) -> None:
        try:
            binding.handler(message.content)
        except Exception:
            log.exception("handling a message from %s failed (attempt %d)", binding.queue, message.dequeue_count)
            if (message.dequeue_count or 0) >= self._max_dequeue:
                self.tracker.storage.queue(f"{binding.queue}-poison").send_message(message.content)
                client.delete_message(message)
            return
        client.delete_message(message)

    def _guarded(self, action: Callable[[], object]) -> None:
        try:
            action()
        except Exception:
            log.exception("poll round failed")

    def _idle(self) -> bool:
        with self._lock:
            if self._inflight:
                return False
        for binding in self._bindings:
            properties = self.tracker.storage.queue(binding.queue).get_queue_properties()
            if properties.approximate_message_count:
                return False
        return not self.tracker.store.list_index()
