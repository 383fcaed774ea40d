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

from azure.storage.queue import QueueClient, QueueMessage

from jobs.storage.account import is_unreachable
from jobs.tracker import QueueBinding, Tracker

__all__ = ["LocalHost"]

log = logging.getLogger(__name__)


class LocalHost:
    def __init__(
        self,
        tracker: Tracker,
        *,
        workers: int = 16,
        visibility_seconds: int = 30,
        max_dequeue_count: int = 5,
        idle_sleep: float = 0.2,
        heartbeat_sample_seconds: float = 5.0,
        outage_retry_seconds: float = 2.0,
    ) -> None:
        self.tracker = tracker
        bindings = tracker.bindings()
        self._bindings = bindings.queues
        self._storage = bindings.storage  # the host reads the queues, as the Functions host does
        self._poll_seconds = bindings.poll_seconds
        self._workers = workers
        self._visibility = visibility_seconds
        self._max_dequeue = max_dequeue_count
        self._idle_sleep = idle_sleep
        self._heartbeat_sample = heartbeat_sample_seconds
        self._outage_retry = outage_retry_seconds
        self._inflight: set[Future[None]] = set()
        self._lock = threading.Lock()
        self._outage_since: float | None = None
        self.stop_event = threading.Event()

    def run(self, *, until_idle: bool = False, timeout: float | None = None) -> int:
        """Runs until stopped; with ``until_idle``, returns 0 once all is done; returns 1 at ``timeout``.

        Storage that cannot be reached is an outage, not a crash: one line when it starts, one when it ends, and
        the loop keeps trying every ``outage_retry_seconds`` while honouring ``stop_event`` and ``timeout``.
        """
        self.tracker.setup()
        started = time.monotonic()
        next_round = 0.0
        next_sample = 0.0
        poll_seconds = self._poll_seconds
        pool = ThreadPoolExecutor(self._workers, thread_name_prefix="jobs-worker")
        try:
            while not self.stop_event.is_set():
                now = time.monotonic()
                if timeout is not None and now - started > timeout:
                    log.error("timed out after %.0f s with work left", timeout)
                    return 1
                try:
                    if now >= next_round:
                        self._guarded(self.tracker.run_poll_round)
                        next_round = now + poll_seconds
                    received = self._receive(pool)
                    if now >= next_sample:
                        next_sample = now + self._heartbeat_sample
                        self.tracker.heartbeat()  # its observer writes the line, once a minute or on change
                    idle = until_idle and not received and self._idle()
                    self._storage_up()
                except Exception as exc:
                    if not is_unreachable(exc):
                        raise
                    self._storage_down(exc)
                    wait = self._outage_retry
                    if timeout is not None:
                        wait = max(0.0, min(wait, started + timeout - time.monotonic()) + 0.01)
                    self.stop_event.wait(wait)
                    continue
                if idle:
                    return 0
                if not received:
                    self.stop_event.wait(self._idle_sleep)
        finally:
            self.stop_event.set()
            # messages not started yet stay on their queue and come back after the visibility timeout
            pool.shutdown(wait=True, cancel_futures=True)
        return 0

    def _storage_down(self, exc: BaseException) -> None:
        with self._lock:
            if self._outage_since is not None:
                return
            self._outage_since = time.monotonic()
        log.warning("storage unreachable: %s; retrying every %g s, nothing is lost (messages stay on their queues)",
                    self._storage.describe_unreachable(exc), self._outage_retry)

    def _storage_up(self) -> None:
        with self._lock:
            since, self._outage_since = self._outage_since, None
        if since is not None:
            log.warning("storage reachable again after %.0f s; resuming", time.monotonic() - since)

    def _receive(self, pool: ThreadPoolExecutor) -> int:
        received = 0
        for binding in self._bindings:
            with self._lock:
                room = 2 * self._workers - len(self._inflight)
            if room <= 0:
                break
            client = self._storage.queue(binding.queue)
            try:
                messages = list(client.receive_messages(
                    messages_per_page=min(32, room), max_messages=min(32, room), visibility_timeout=self._visibility
                ))
            except Exception as exc:
                if is_unreachable(exc):
                    raise
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

    def _process(self, client: QueueClient, binding: QueueBinding, message: QueueMessage) -> None:
        try:
            binding.handler(message.content)
        except Exception as exc:
            if is_unreachable(exc):  # the outage line says it once; the message comes back after the outage
                self._storage_down(exc)
                return
            log.exception("handling a message from %s failed (attempt %d)", binding.queue, message.dequeue_count)
            if (message.dequeue_count or 0) >= self._max_dequeue:
                self._storage.queue(f"{binding.queue}-poison").send_message(message.content)
                client.delete_message(message)
            return
        try:
            client.delete_message(message)
        except Exception as exc:
            if not is_unreachable(exc):
                raise
            self._storage_down(exc)  # handled but not deleted: it comes back once, and its effects are idempotent

    def _guarded(self, action: Callable[[], object]) -> None:
        try:
            action()
        except Exception as exc:
            if is_unreachable(exc):
                raise
            log.exception("poll round failed")

    def _idle(self) -> bool:
        with self._lock:
            if self._inflight:
                return False
        for binding in self._bindings:
            properties = self._storage.queue(binding.queue).get_queue_properties()
            if properties.approximate_message_count:
                return False
        return not self.tracker.has_running()
