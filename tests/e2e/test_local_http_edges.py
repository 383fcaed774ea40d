"""Issue 20, points 14 and 15: ``python -m jobs run --http-port``'s server at the edges of HTTP/1.1, tried with raw
sockets (a client library would not send these requests), and the ``Location`` it builds from what the caller sent.
"""

from __future__ import annotations

import json
import logging
import socket
import uuid
from collections.abc import Iterator

import pytest
import requests

from jobs.http_api import HttpApi
from jobs.local_http import LocalHttpServer
from tests.conftest import VAULT, ManualClock, tracker_with_clock


@pytest.fixture
def server(env: dict[str, str], clock: ManualClock) -> Iterator[LocalHttpServer]:
    tracker = tracker_with_clock(env, clock)
    with LocalHttpServer(HttpApi(lambda: tracker)) as running:
        yield running


def exchange(server: LocalHttpServer, raw: bytes) -> bytes:
    """Sends ``raw`` on one connection and reads until the server closes it (or 5 s pass without a byte)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as connection:
        connection.sendall(raw)
        connection.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    return received


def responses(received: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Every HTTP/1.1 response in ``received``: status, headers (lower-case names), body (by Content-Length)."""
    found = []
    while received:
        head, _, rest = received.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1.1 "), received[:200]
        headers = {name.strip().lower(): value.strip()
                   for name, _, value in (line.partition(":") for line in lines[1:])}
        size = int(headers.get("content-length", "0"))
        found.append((int(lines[0].split()[1]), headers, rest[:size]))
        received = rest[size:]
    return found


def _job_body() -> bytes:
    return json.dumps({"jobId": str(uuid.uuid4()), "vaultId": VAULT}).encode()


def test_point14_a_malformed_request_line_is_a_400_problem_and_no_traceback(server, caplog):
    caplog.set_level(logging.DEBUG)
    for line in (b"GARBAGE\r\n\r\n", b"GET /api/health HTTP/1.1 extra words\r\n\r\n", b"GET / HTTP/9\r\n\r\n"):
        [(status, headers, body)] = responses(exchange(server, line))
        assert status == 400 and headers["content-type"] == "application/problem+json", (line, body)
        assert headers["connection"] == "close"
        assert json.loads(body)["status"] == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_point14_a_chunked_post_is_read_as_its_body_and_nothing_of_it_as_a_new_request(server):
    body = _job_body()
    chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:]))
    raw = (b"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
           + chunks + b"0\r\nX-Trailer: ignored\r\n\r\n"
           + b"GET /api/nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")  # the next request
    [(status, headers, answer), (then, _, _)] = responses(exchange(server, raw))
    assert status == 202, answer
    assert json.loads(answer)["trackingId"] and headers["location"].startswith("http://127.0.0.1")
    assert then == 404  # the connection went on at the request after the body, as HTTP/1.1 keeps it


@pytest.mark.parametrize(("framing", "status"), [
    (b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 400),  # the request-smuggling pair
    (b"Transfer-Encoding: gzip, chunked\r\n", 501),
    (b"Transfer-Encoding: chunked\r\n", 400),  # followed by a chunk size that is not hex
    (b"Content-Length: many\r\n", 400),
])
def test_point14_a_body_that_cannot_be_framed_is_refused_and_the_connection_closed(server, framing, status):
    raw = (b"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n" + framing + b"\r\n"
           + b"zz\r\nGET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    [(answered, headers, body)] = responses(exchange(server, raw))  # one answer: the rest is never a request
    assert answered == status and headers["connection"] == "close", body
    assert headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(("header", "value"), [
    ("X-Forwarded-Host", "evil.example/phish?x="),
    ("X-Forwarded-Host", "user@evil.example"),
    ("Host", "evil.example:99999"),
    ("Host", "evil.example/x#"),
])
def test_point15_a_host_header_that_is_not_a_host_never_reaches_location(server, header, value):
    api = server.url + "/api/jobs"
    answer = requests.post(api, data=_job_body(), headers={header: value}, timeout=10)
    assert answer.status_code == 400 and "Location" not in answer.headers, answer.text
    problem = answer.json()
    assert problem["field"] == "Host" and header in problem["detail"]
    assert "JOBS_PUBLIC_BASE_URL" in problem["detail"]


def test_point15_a_valid_forwarded_host_is_used_lower_cased(server):
    answer = requests.post(server.url + "/api/jobs", data=_job_body(),
                           headers={"X-Forwarded-Host": "Tracker.Example.com:8443"}, timeout=10)
    assert answer.status_code == 202
    assert answer.headers["Location"].startswith("https://tracker.example.com:8443/api/jobs/")


def test_point15_the_configured_public_base_url_makes_every_location_whatever_the_headers(env, clock):
    tracker = tracker_with_clock(env, clock, JOBS_PUBLIC_BASE_URL="https://tracker.example.com/backup/")
    with LocalHttpServer(HttpApi(lambda: tracker)) as running:
        spoofed = {"X-Forwarded-Host": "evil.example", "Host": "evil.example", "X-Forwarded-Proto": "http"}
        posted = requests.post(running.url + "/api/jobs", data=_job_body(), headers=spoofed, timeout=10)
        assert posted.status_code == 202, posted.text
        location = posted.headers["Location"]
        assert location.startswith("https://tracker.example.com/backup/api/jobs/")
        assert posted.json()["statusUrl"] == location
        local = location.replace("https://tracker.example.com/backup", running.url)
        status = requests.get(local, headers=spoofed, timeout=10)
        assert status.status_code == 202 and status.headers["Location"] == location
