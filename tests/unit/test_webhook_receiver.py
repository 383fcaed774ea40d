"""The local webhook receiver: signature checks, scripted answers, outages, TLS, hangs and waiting."""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from standardwebhooks import Webhook

from devtools.webhook_receiver import ReceivedRequest, WebhookReceiver, make_self_signed_cert

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef01234567").decode()


def signed_headers(body: str, *, secret: str = SECRET, msg_id: str = "evt-1") -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "Content-Type": "application/cloudevents+json; charset=utf-8",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
    }


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(secret=SECRET) as server:
        yield server


def test_signed_request_verifies_and_tampered_body_does_not(receiver: WebhookReceiver) -> None:
    body = json.dumps({"specversion": "1.0", "id": "evt-1", "data": {"status": "Completed"}})
    headers = signed_headers(body)
    assert requests.post(receiver.url, data=body.encode(), headers=headers, timeout=5).status_code == 200
    tampered = body.replace("Completed", "Failed")
    assert requests.post(receiver.url, data=tampered.encode(), headers=headers, timeout=5).status_code == 200
    unsigned = {k: v for k, v in headers.items() if k != "webhook-signature"}
    requests.post(receiver.url, data=body.encode(), headers=unsigned, timeout=5)
    requests.post(receiver.url, data=b"\xff\xfe not utf-8", headers=headers, timeout=5)

    assert receiver.wait_for(lambda rs: len(rs) == 4, timeout=5)
    good, bad, missing, binary = receiver.requests
    assert good.verified is True
    assert good.json()["data"] == {"status": "Completed"}
    assert good.method == "POST" and good.path == "/hooks"
    assert good.headers["webhook-id"] == "evt-1"
    assert good.headers["content-type"].startswith("application/cloudevents+json")
    assert good.answered == 200 and good.received_at <= time.time()
    assert bad.verified is False
    assert missing.verified is False
    assert binary.verified is False


def test_signature_with_another_secret_does_not_verify(receiver: WebhookReceiver) -> None:
    other = "whsec_" + base64.b64encode(b"another-secret-of-24-byte").decode()
    requests.post(receiver.url, data=b"{}", headers=signed_headers("{}", secret=other), timeout=5)
    assert receiver.requests[0].verified is False


def test_without_a_secret_verified_is_none() -> None:
    with WebhookReceiver() as receiver:
        requests.put(f"{receiver.url}/any/path?x=1", data=b"[1]", headers=signed_headers("[1]"), timeout=5)
        (request,) = receiver.requests
    assert request.verified is None
    assert request.method == "PUT" and request.path == "/hooks/any/path?x=1"
    assert request.json() == [1]


def test_scripted_statuses_then_200(receiver: WebhookReceiver) -> None:
    receiver.respond_with(503, 503, retry_after=7)
    answers = [requests.post(receiver.url, data=b"{}", timeout=5) for _ in range(4)]
    assert [a.status_code for a in answers] == [503, 503, 200, 200]
    assert [a.headers.get("Retry-After") for a in answers] == ["7", "7", None, None]
    assert [r.answered for r in receiver.requests] == [503, 503, 200, 200]
    assert len(receiver.delivered()) == 2
    receiver.respond_with(410)
    assert requests.post(receiver.url, data=b"{}", timeout=5).status_code == 410
    assert len(receiver.delivered()) == 2
    with pytest.raises(ValueError):
        receiver.respond_with(99)


def test_set_down_refuses_connections_then_comes_back_on_the_same_port(receiver: WebhookReceiver) -> None:
    port, url = receiver.port, receiver.url
    assert requests.post(url, data=b"{}", timeout=5).status_code == 200
    receiver.set_down(True)
    with pytest.raises(requests.ConnectionError):
        requests.post(url, data=b"{}", timeout=5)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    receiver.set_down(False)
    assert receiver.port == port and receiver.url == url
    assert requests.post(url, data=b"{}", timeout=5).status_code == 200
    assert [r.answered for r in receiver.requests] == [200, 200]
    assert receiver.connections == 2


def test_connections_are_counted_at_accept_time(receiver: WebhookReceiver) -> None:
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=2):
        assert receiver.wait_for_connections(1, timeout=5)
    assert receiver.requests == []


def test_https_with_a_self_signed_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    certfile, keyfile = make_self_signed_cert(tmp_path, ["localhost"])
    assert oct(os.stat(keyfile).st_mode & 0o777) == "0o600"
    with WebhookReceiver(secret=SECRET, tls=(certfile, keyfile)) as receiver:
        assert receiver.url.startswith("https://127.0.0.1:")
        body = '{"id": "evt-tls"}'
        response = requests.post(receiver.url, data=body, headers=signed_headers(body), timeout=5, verify=certfile)
        assert response.status_code == 200
        by_name = f"https://localhost:{receiver.port}/hooks"
        assert requests.post(by_name, data=b"{}", timeout=5, verify=certfile).status_code == 200
        with pytest.raises(requests.exceptions.SSLError):
            requests.post(receiver.url, data=b"{}", timeout=5)  # not trusted by default
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", certfile)
        assert requests.post(receiver.url, data=b"{}", timeout=5).status_code == 200
        # Strict X.509 checking (the default from Python 3.13) accepts the certificate too.
        context = ssl.create_default_context(cafile=certfile)
        context.verify_flags |= ssl.VERIFY_X509_STRICT
        with (
            socket.create_connection(("127.0.0.1", receiver.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="localhost"),
        ):
            pass
        assert receiver.wait_for(lambda rs: len(rs) == 3, timeout=5)
        assert receiver.requests[0].verified is True
    with pytest.raises(requests.ConnectionError):
        requests.post(receiver.url, data=b"{}", timeout=2, verify=certfile)


def test_a_client_that_never_finishes_the_tls_handshake_does_not_block_others(tmp_path: Path) -> None:
    certfile, keyfile = make_self_signed_cert(tmp_path, ["localhost"])
    with (
        WebhookReceiver(tls=(certfile, keyfile)) as receiver,
        socket.create_connection(("127.0.0.1", receiver.port), timeout=5),
    ):
        assert requests.post(receiver.url, data=b"{}", timeout=5, verify=certfile).status_code == 200


def test_hang_makes_a_short_timeout_client_time_out_and_stop_releases_it() -> None:
    receiver = WebhookReceiver()
    receiver.start()
    try:
        receiver.set_hang(30)
        started = time.monotonic()
        with pytest.raises(requests.Timeout):
            requests.post(receiver.url, data=b"{}", timeout=0.5)
        assert time.monotonic() - started < 5
        assert receiver.wait_for_connections(1, timeout=5)
    finally:
        started = time.monotonic()
        receiver.stop()
        assert time.monotonic() - started < 5
    assert [r.answered for r in receiver.requests] == [0]
    assert receiver.delivered() == []
    with pytest.raises(ValueError):
        receiver.set_hang(-1)


def test_a_short_hang_still_answers(receiver: WebhookReceiver) -> None:
    receiver.set_hang(0.2)
    started = time.monotonic()
    assert requests.post(receiver.url, data=b"{}", timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.2
    receiver.set_hang(0)


def test_wait_for_returns_false_at_the_deadline_when_nothing_comes(receiver: WebhookReceiver) -> None:
    started = time.monotonic()
    assert receiver.wait_for(lambda rs: len(rs) > 0, timeout=0.3) is False
    assert 0.25 <= time.monotonic() - started < 2


def test_wait_for_wakes_up_when_a_request_arrives(receiver: WebhookReceiver) -> None:
    sender = threading.Thread(target=lambda: requests.post(receiver.url, data=b'{"n": 1}', timeout=5))
    sender.start()
    try:
        assert receiver.wait_for(lambda rs: any(r.json() == {"n": 1} for r in rs), timeout=10)
    finally:
        sender.join(timeout=10)


def test_on_request_is_called_and_its_errors_do_not_break_the_receiver() -> None:
    seen: list[ReceivedRequest] = []
    done = threading.Event()

    def on_request(request: ReceivedRequest) -> None:
        seen.append(request)
        done.set()
        raise RuntimeError("a broken callback")

    with WebhookReceiver(on_request=on_request) as receiver:
        assert requests.post(receiver.url, data=b"{}", timeout=5).status_code == 200
        assert done.wait(5)
        assert requests.post(receiver.url, data=b"{}", timeout=5).status_code == 200
    assert seen[0].body == b"{}"


def test_chunked_bodies_are_read(receiver: WebhookReceiver) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"a": '
        yield b"1}"

    assert requests.post(receiver.url, data=chunks(), timeout=5).status_code == 200
    assert receiver.requests[0].json() == {"a": 1}


def test_the_receiver_is_quiet(receiver: WebhookReceiver, capfd: pytest.CaptureFixture[str]) -> None:
    requests.post(receiver.url, data=b"{}", timeout=5)
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=5) as raw:
        raw.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        raw.recv(1024)
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=5) as raw:
        raw.sendall(b"POST / HTTP/1.1\r\nContent-Length: nope\r\n\r\n")
    assert receiver.wait_for_connections(3, timeout=5)
    receiver.stop()
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


def test_url_needs_a_started_receiver() -> None:
    with pytest.raises(RuntimeError):
        _ = WebhookReceiver().url
