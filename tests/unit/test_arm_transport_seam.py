"""The ARM transport's seam: a request becomes an answer either over HTTP (``RequestsTransport``) or in this process
(``HandlerTransport``), and everything above it (classification, Retry-After, retries, the token, pacing) runs the
same in both. The same scripted answers are served both ways, through a real loopback HTTP server and through a
handler, and the ARM client must come out of them with the same results, errors and requests."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest

from jobs.arm import ArmClient, ArmError, StaticToken
from jobs.arm.transport import HandlerTransport, HttpRequest, HttpResponse, HttpTransport, TransportError

SUB = "11111111-2222-3333-4444-555555555555"
PATH = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.RecoveryServices/vaults/v/backupJobs"
JSON = {"Content-Type": "application/json"}


def _json(status: int, payload: Any, **headers: str) -> HttpResponse:
    return HttpResponse(status, {**JSON, **{k.replace("_", "-"): v for k, v in headers.items()}},
                        json.dumps(payload).encode())


# What "ARM" answers, in order: a job; a 503 then the job (retried); a page with nextLink then the last page; a
# body cut short then the job (retried); a 404; a read answered as a POST; a 429 with Retry-After.
SCRIPT = [
    _json(200, {"id": "j1"}, x_ms_ratelimit_remaining_subscription_reads="249"),
    _json(503, {"error": {"code": "ServiceUnavailable", "message": "try later"}}, retry_after="1"),
    _json(200, {"id": "j2"}),
    None,  # the first page: its nextLink names the server it is served by
    _json(200, {"value": [{"id": "j4"}]}),
    HttpResponse(200, JSON, b'{"id": "j5'),
    _json(200, {"id": "j5"}),
    _json(404, {"error": {"code": "BMSUserErrorJobNotFound", "message": "no such job"}}),
    _json(200, {"id": "j7"}),
    _json(429, {"error": {"code": "SubscriptionRequestsThrottled", "message": "slow down"}}, retry_after="17"),
]


class Script:
    """The scripted ARM: answers in order and records what it was asked (method, path and query, token, body)."""

    def __init__(self, base: Callable[[], str]) -> None:
        self.answers = list(SCRIPT)
        self.base = base
        self.seen: list[tuple[str, str, str, Any]] = []

    def __call__(self, request: HttpRequest) -> HttpResponse:
        parts = urlsplit(request.url)
        body = json.loads(request.body) if request.body else None
        self.seen.append((request.method, f"{parts.path}?{parts.query}", request.headers["Authorization"], body))
        answer = self.answers.pop(0)
        if answer is None:
            return _json(200, {"value": [{"id": "j3"}], "nextLink": f"{self.base()}{PATH}?page=2"})
        return answer


def _reads(client: ArmClient) -> list[Any]:
    """The same reads, whatever the transport: each one's result or error."""
    calls: list[Callable[[], Any]] = [
        lambda: client.get_json(f"{PATH}/j1", {"api-version": "2025-08-01"}, SUB),
        lambda: client.get_json(f"{PATH}/j2", {"api-version": "2025-08-01"}, SUB),
        lambda: [item["id"] for item in client.iter_pages(PATH, {"api-version": "2025-08-01"}, SUB)],
        lambda: client.get_json(f"{PATH}/j5", {"api-version": "2025-08-01"}, SUB),
        lambda: client.get_json(f"{PATH}/j6", {"api-version": "2025-08-01"}, SUB),
        lambda: client.post_json(f"{PATH}/j7", {"api-version": "2025-08-01"}, SUB, {"jobName": "j7"}),
        lambda: client.get_json(f"{PATH}/j8", {"api-version": "2025-08-01"}, SUB),
    ]
    out: list[Any] = []
    for call in calls:
        try:
            out.append(call())
        except ArmError as exc:
            out.append((type(exc).__name__, exc.status, exc.code, getattr(exc, "retry_at", None)))
    return out


def _client(endpoint: str, http: HttpTransport | None, sleeps: list[float]) -> ArmClient:
    return ArmClient(endpoint, StaticToken("secret"), http=http, clock=lambda: 1000.0, sleep=sleeps.append,
                     backoff_seconds=0.25)


class _ScriptServer(ThreadingHTTPServer):
    daemon_threads = True
    script: Script


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ScriptServer

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        host, port = self.server.server_address[:2]
        answer = self.server.script(HttpRequest(self.command, f"http://{host}:{port}{self.path}",
                                                dict(self.headers), body))
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    do_GET = _serve
    do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def script_server() -> Iterator[_ScriptServer]:
    server = _ScriptServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_the_same_answers_give_the_same_results_over_http_and_in_process(script_server: _ScriptServer) -> None:
    host, port = script_server.server_address[:2]
    over_http = f"http://{host}:{port}"
    script_server.script = Script(lambda: over_http)
    http_sleeps: list[float] = []
    http_client = _client(over_http, None, http_sleeps)  # the default: RequestsTransport
    http_results = _reads(http_client)

    in_process = "http://127.0.0.1"
    script = Script(lambda: in_process)
    handler_sleeps: list[float] = []
    handler_client = _client(in_process, HandlerTransport(script), handler_sleeps)
    handler_results = _reads(handler_client)

    assert handler_results == http_results == [
        {"id": "j1"}, {"id": "j2"}, ["j3", "j4"], {"id": "j5"},
        ("ArmNotFound", 404, "BMSUserErrorJobNotFound", None), {"id": "j7"},
        ("ArmThrottled", 429, "SubscriptionRequestsThrottled", 1017.0),
    ]
    assert script.seen == script_server.script.seen  # the same requests, token and body
    assert script.seen[0][2] == "Bearer secret" and script.seen[8][3] == {"jobName": "j7"}
    assert len(script.seen) == len(SCRIPT) and handler_client.requests_sent == http_client.requests_sent == 10
    assert len(handler_sleeps) == len(http_sleeps) == 2  # the 503 and the cut body were retried after a pause
    assert 1.0 <= handler_sleeps[0] <= 1.25  # the 503's Retry-After, jittered
    assert handler_client.blocked_until(SUB) == http_client.blocked_until(SUB) == 1017.0


def test_no_answer_at_all_is_the_same_transient_failure_both_ways() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"

    def refuse(request: HttpRequest) -> HttpResponse:
        raise TransportError("ConnectionError")

    outcomes = []
    for endpoint, http in ((closed, None), ("http://127.0.0.1", HandlerTransport(refuse))):
        sleeps: list[float] = []
        client = _client(endpoint, http, sleeps)
        with pytest.raises(ArmError) as caught:
            client.get_json(f"{PATH}/j1", {"api-version": "2025-08-01"}, SUB)
        outcomes.append((type(caught.value).__name__, caught.value.status, caught.value.code, len(sleeps),
                         client.requests_sent))
    assert outcomes[0] == outcomes[1] == ("ArmUnavailable", 0, "ConnectionError", 2, 3)


def test_from_settings_sends_through_the_transport_it_is_given() -> None:
    seen: list[HttpRequest] = []

    def answer(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        return _json(200, {"id": "j1"}, x_ms_ratelimit_remaining_subscription_reads="3")

    settings = SimpleNamespace(arm_token="from-settings", arm_endpoint="http://127.0.0.1", arm_read_reserve=10)
    client = ArmClient.from_settings(settings, http=HandlerTransport(answer))
    assert client.get_json(f"{PATH}/j1", {"api-version": "2025-08-01"}, SUB) == {"id": "j1"}
    assert [(r.method, r.url, r.headers["Authorization"]) for r in seen] == [
        ("GET", f"http://127.0.0.1{PATH}/j1?api-version=2025-08-01", "Bearer from-settings")]
    level = client.gate.pacer.level(SUB)  # the pacer heard the answer's remaining reads (3, plus the refill since)
    assert level is not None and 3 <= level < 100
