"""The local host's poison path: a message whose handler fails 5 times moves to ``<queue>-poison`` and leaves its
queue, as under the Functions host (``maxDequeueCount`` 5); a message that succeeds is never poisoned."""

from __future__ import annotations

import threading

from jobs.local_host import LocalHost
from tests.conftest import drain, wait_until


def test_a_message_that_fails_five_times_lands_on_the_poison_queue_and_leaves_its_queue(tracker, caplog):
    poll_queue = tracker._storage.queue(tracker.settings.poll_queue)
    poison = tracker._storage.queue(f"{tracker.settings.poll_queue}-poison")
    poll_queue.send_message("{this is no poll message")  # the poll handler fails on it every time
    host = LocalHost(tracker, visibility_seconds=1, idle_sleep=0.05)
    thread = threading.Thread(target=host.run, daemon=True)
    thread.start()
    try:
        def poisoned() -> bool:
            return bool(poison.peek_messages(max_messages=1))

        assert wait_until(poisoned, 20)
    finally:
        host.stop_event.set()
        thread.join(30)
    failures = [r for r in caplog.records if r.getMessage().startswith(f"handling a message from "
                                                                        f"{tracker.settings.poll_queue} failed")]
    assert [r.getMessage().rsplit(" ", 2)[-2:] for r in failures] == [["(attempt", f"{n})"] for n in range(1, 6)]
    assert drain(poison) == ["{this is no poll message"]
    assert poll_queue.get_queue_properties().approximate_message_count == 0  # deleted from its queue
    assert list(poll_queue.receive_messages(visibility_timeout=1)) == []
