"""``JOBS_WEBHOOK_TIMEOUT_SECONDS`` bounds the whole webhook request (issue 20, point 8), against a real receiver on
loopback that answers slowly: its body streamed over many seconds, or its headers dribbled one line at a time, each
well within the timeout of a single read. The delivery must end within the timeout (plus a generous margin, far
below the receiver's stream), and read almost none of what the receiver streams."""

from __future__ import annotations

import time

from devtools.webhook_receiver import WebhookReceiver
from jobs.webhooks.callback_urls import AllowedHosts
from jobs.webhooks.sender import WebhookSender

TIMEOUT = 1.0
STREAM_SECONDS = 10.0
STREAMED_BYTES = 1536 * 1024  # 1.5 MiB over 10 s: 20 writes a second, each a twentieth of a second after the last


def _sender() -> WebhookSender:
    return WebhookSender(secret=None, allowed_callback_hosts=AllowedHosts.from_setting("127.0.0.1"),
                         timeout_seconds=TIMEOUT)


def _send(receiver: WebhookReceiver, *, callback: bool) -> tuple[float, object]:
    started = time.monotonic()
    outcome = _sender().send(receiver.url, "evt-1", b'{"id":"evt-1"}', callback=callback)
    return time.monotonic() - started, outcome


def test_point8_a_receiver_streaming_its_body_holds_a_delivery_no_longer_than_the_timeout():
    with WebhookReceiver() as receiver:
        receiver.set_stream(STREAMED_BYTES, STREAM_SECONDS, part="body")
        took, outcome = _send(receiver, callback=False)
        assert took < TIMEOUT + 1.0, took  # not the 10 s of the stream
        assert outcome.delivered, outcome  # the 200 decides; the body is not needed
        # The receiver learns the client left: it could hand over a small part of its 1.5 MiB at most.
        assert receiver.wait_for(lambda requests: requests and requests[0].stream_done, 5)
        streamed = receiver.requests[0].streamed
        assert streamed < 256 * 1024, streamed


def test_point8_a_receiver_dribbling_its_headers_is_cut_off_at_the_timeout_for_callbacks_too(https_receiver):
    # 40 header lines, one every 0.2 s: each read comes well within the timeout, the whole answer takes 8 s.
    with WebhookReceiver() as receiver:
        for hook, callback in ((receiver, False), (https_receiver, True)):  # the plain session and the SSRF guard's
            hook.set_stream(40 * 1024, 8.0, part="headers")
            took, outcome = _send(hook, callback=callback)
            assert took < TIMEOUT + 1.0, (callback, took)
            assert not outcome.delivered and outcome.retry_in == 0.0, outcome
            assert f"no answer within {TIMEOUT:g} s" in outcome.reason
