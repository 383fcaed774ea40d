"""The results queue output: each event on ``JOBS_RESULTS_QUEUE``, whole or, when larger than a queue message holds,
as a pointer (``pointer_event``: ``data.job`` null, ``data.truncated`` true; the reader fetches the job from
``data.jobResourceId``; if that is not enough, the next large fields of ``TRUNCATED_FIELDS`` are null too, in
order). It never expires there. The pointer is a function of the whole event, so it is the same on every attempt.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from jobs.outputs import ResultEvent
from jobs.storage import StorageAccount
from jobs.storage.queue_messages import fits, send_output

__all__ = ["TRUNCATED_FIELDS", "ResultsQueue", "pointer_event", "queue_event_text"]

log = logging.getLogger(__name__)

# Nulled in this order until the event fits: the JobResource first (everything in it can be read again from
# ``jobResourceId``), then what the provider mapped from it, then the subscriber's context (up to 16 KB).
TRUNCATED_FIELDS = ("job", "propertyBag", "tasks", "errors", "operationStatus", "context")


def pointer_event(event: dict[str, Any], fit: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """``event`` as a queue message can hold it: whole when ``fit`` accepts it, else with ``data.truncated`` true
    and ``data.job`` null, then the next of ``TRUNCATED_FIELDS`` null, until ``fit`` accepts it."""
    if fit(event):
        return event
    data = {**event["data"], "truncated": True}
    pointer = {**event, "data": data}
    for name in TRUNCATED_FIELDS:
        if name in data:
            data[name] = None
            if fit(pointer):
                break
    return pointer


def queue_event_text(body: bytes) -> str:
    """The results queue's message for an event: the event as is, or its pointer form."""
    text = body.decode("utf-8")
    if fits(text):
        return text
    return json.dumps(pointer_event(json.loads(text), lambda event: fits(json.dumps(event))))


class ResultsQueue:
    name = "results queue"

    def __init__(self, storage: StorageAccount, queue: str) -> None:
        self._storage = storage
        self._queue = queue

    def publish(self, event: ResultEvent) -> str | None:
        text = queue_event_text(event.body)
        if text.encode("utf-8") != event.body:
            log.info("the event of %s for subscriber %s is too large for a queue message: the results queue gets "
                     "it without the job (data.truncated)", event.tracking_id, event.subscriber.key)
        send_output(self._storage.queue(self._queue), text)
        return f"results queue {self._queue}"
