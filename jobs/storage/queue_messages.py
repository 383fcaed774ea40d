"""The rule for every queue message the tracker writes: how large it may be, and how long it lives.

``wire_size`` and ``fit_record`` keep a message within 64 KiB as the service counts it (``MessageTooLarge`` when it
cannot); ``send_output`` writes what others read, never expiring; ``send_task`` writes internal work with a
finite life. In detail: docs/design.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from typing import Any

from azure.storage.queue import QueueClient

__all__ = [
    "MAX_MESSAGE_BYTES",
    "NEVER_EXPIRES",
    "TASK_SPARE_SECONDS",
    "MessageTooLarge",
    "fit_record",
    "fits",
    "send_output",
    "send_task",
    "wire_size",
]

MAX_MESSAGE_BYTES = 64 * 1024
NEVER_EXPIRES = -1
TASK_SPARE_SECONDS = 7 * 24 * 3600


class MessageTooLarge(ValueError):
    """A message text larger than a queue message holds (a caller did not make it fit)."""


def wire_size(text: str) -> int:
    """Bytes ``text`` takes in a Put Message request body: XML-escaped as the SDK sends it, in UTF-8."""
    return len(text.encode("utf-8")) + 4 * text.count("&") + 3 * (text.count("<") + text.count(">"))


def fits(text: str) -> bool:
    return wire_size(text) <= MAX_MESSAGE_BYTES


def fit_record(record: dict[str, Any], cut: Iterable[str], dumps: Callable[[Any], str] = json.dumps) -> str:
    """``dumps(record)``, with the string fields named in ``cut`` shortened, in that order, until it fits.

    A field is kept as its longest prefix that fits (emptied when none does, then the next is cut); a record that
    was cut carries ``"truncated": true``. Deterministic: the same record always gives the same text.
    """
    text = dumps(record)
    for key in cut:
        if fits(text):
            break
        value = record.get(key)
        if not isinstance(value, str) or not value:
            continue
        record["truncated"] = True
        low, high = 0, min(len(value), MAX_MESSAGE_BYTES)  # each character takes at least one byte
        while low < high:  # the longest prefix that fits
            middle = (low + high + 1) // 2
            record[key] = value[:middle]
            if fits(dumps(record)):
                low = middle
            else:
                high = middle - 1
        record[key] = value[:low]
        text = dumps(record)
    return text


def send_output(queue: QueueClient, text: str) -> None:
    """A message for someone else to read (result event, dead-letter or rejected record): it never expires."""
    _send(queue, text, NEVER_EXPIRES, None)


def send_task(queue: QueueClient, text: str, *, work_seconds: float, visibility_timeout: int | None = None) -> None:
    """Internal work (a delivery task): it lives ``work_seconds`` (at least its visibility timeout) plus
    ``TASK_SPARE_SECONDS``, then the service drops it."""
    life = math.ceil(max(work_seconds, visibility_timeout or 0)) + TASK_SPARE_SECONDS
    _send(queue, text, life, visibility_timeout)


def _send(queue: QueueClient, text: str, time_to_live: int, visibility_timeout: int | None) -> None:
    size = wire_size(text)
    if size > MAX_MESSAGE_BYTES:
        raise MessageTooLarge(
            f"a message for {queue.queue_name} is {size} bytes on the wire, more than the {MAX_MESSAGE_BYTES} a "
            "queue message holds"
        )
    queue.send_message(text, time_to_live=time_to_live, visibility_timeout=visibility_timeout)
