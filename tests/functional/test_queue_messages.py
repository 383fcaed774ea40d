"""The queue-message rule (``jobs.storage.queue_messages``) against the SDK's own request bodies on Azurite, and the
pointer form of an event (``jobs.outputs.results_queue.pointer_event``)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from azure.storage.queue import QueueClient

from jobs.outputs.results_queue import pointer_event
from jobs.storage.queue_messages import (
    MAX_MESSAGE_BYTES,
    MessageTooLarge,
    fit_record,
    fits,
    send_output,
    send_task,
    wire_size,
)

TEXTS = ['{"a": "b"}', "a&b<c>d", "é" * 10, "'\"\r\n\t", "&amp;" * 3, "\u2603 snow", "]]>"]


@pytest.fixture
def queue(azurite) -> QueueClient:
    client = QueueClient.from_connection_string(azurite.connection_string, "q" + uuid.uuid4().hex[:12])
    client.create_queue()
    return client


def test_wire_size_is_what_the_sdk_puts_in_the_request_body(queue):
    bodies: list[bytes] = []

    def keep(request) -> None:
        bodies.append(request.http_request.body)

    for text in ["x", *TEXTS]:
        queue.send_message(text, raw_request_hook=keep)
    envelope = len(bodies[0]) - 1  # <?xml ...?><QueueMessage><MessageText>x</MessageText></QueueMessage>
    assert [len(body) - envelope for body in bodies[1:]] == [wire_size(text) for text in TEXTS]


def test_a_message_at_the_limit_is_sent_and_never_expires_one_byte_more_is_refused_before_sending(queue):
    send_output(queue, "a" * (MAX_MESSAGE_BYTES - 5) + "&")  # 65,536 bytes on the wire
    with pytest.raises(MessageTooLarge):
        send_output(queue, "a" * (MAX_MESSAGE_BYTES - 4) + "&")
    [message] = queue.peek_messages(max_messages=32)
    assert message.expires_on == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    send_task(queue, "task", work_seconds=3600)
    [task] = [m for m in queue.peek_messages(max_messages=32) if m.content == "task"]
    life = (task.expires_on - datetime.now(UTC)).total_seconds()
    assert 3600 + 7 * 24 * 3600 - 60 < life <= 3600 + 7 * 24 * 3600 + 1  # the work's time plus 7 days, no more


def test_fit_record_keeps_the_longest_prefix_that_fits_and_says_it_was_cut():
    original = "é&<\"" * 40_000
    record = {"reason": "too big", "message": original}
    text = fit_record(record, ("message",))
    assert fits(text)
    cut = json.loads(text)
    assert cut["truncated"] is True and original.startswith(cut["message"])
    assert not fits(json.dumps({**cut, "message": original[: len(cut["message"]) + 1]}))
    small = {"reason": "fine", "message": "short"}
    assert fit_record(dict(small), ("message",)) == json.dumps(small)  # nothing cut, no flag


def test_a_pointer_event_nulls_the_job_first_then_the_next_large_fields():
    event = {"id": "e", "data": {"jobResourceId": "/x", "propertyBag": {"k": "v" * 70_000}, "tasks": [],
                                 "job": {"properties": {"k": "v" * 50_000}}}}
    whole = pointer_event(event, lambda e: True)
    assert whole is event
    pointer = pointer_event(event, lambda e: fits(json.dumps(e)))
    assert pointer["data"]["job"] is None and pointer["data"]["propertyBag"] is None
    assert pointer["data"]["tasks"] == [] and pointer["data"]["truncated"] is True
    assert pointer["data"]["jobResourceId"] == "/x" and pointer["id"] == "e"
    assert event["data"]["job"] is not None  # the event itself is left whole
