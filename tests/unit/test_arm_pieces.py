"""The ARM pieces that only production reaches: Retry-After parsing in every form, the read budget on a fake
clock, a credential token refreshed across its expiry, and the nextLink guard that keeps the token on ARM_ENDPOINT.

Real loopback HTTP servers stand in for Resource Manager where a request is made; nothing is mocked.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from requests.structures import CaseInsensitiveDict

from devtools.webhook_receiver import WebhookReceiver
from jobs.arm import ArmClient, ArmError, ArmTransport, CredentialToken, ReadBudget, StaticToken, parse_retry_after
from tests.conftest import wait_until

SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"

# -- parse_retry_after -------------------------------------------------------------------------------------------


def _headers(**values: str) -> CaseInsensitiveDict[str]:
    return CaseInsensitiveDict({name.replace("_", "-"): value for name, value in values.items()})


def test_retry_after_in_delta_seconds() -> None:
    assert parse_retry_after(_headers(retry_after="7")) == 7.0
    assert parse_retry_after(_headers(retry_after="0")) == 0.0
    assert parse_retry_after(_headers(retry_after="-3")) == 0.0  # never negative


def test_retry_after_as_an_http_date() -> None:
    future = datetime.now(UTC) + timedelta(seconds=90)
    seconds = parse_retry_after(_headers(retry_after=format_datetime(future, usegmt=True)))
    assert seconds is not None and 85 <= seconds <= 90
    past = datetime.now(UTC) - timedelta(seconds=90)
    assert parse_retry_after(_headers(retry_after=format_datetime(past, usegmt=True))) == 0.0


def test_retry_after_in_milliseconds_wins_over_seconds() -> None:
    assert parse_retry_after(_headers(retry_after_ms="1500", retry_after="30")) == 1.5
    assert parse_retry_after(_headers(x_ms_retry_after_ms="250")) == 0.25
    assert parse_retry_after(_headers(retry_after_ms="soon", retry_after="4")) == 4.0  # bad ms: the next form


@pytest.mark.parametrize("garbage", ["soon", "tomorrow at noon", "Wed, 99 Foo 2099", "1.2.3", " "])
def test_retry_after_garbage_is_as_if_absent(garbage: str) -> None:
    assert parse_retry_after(_headers(retry_after=garbage)) is None


def test_no_retry_after_is_none() -> None:
    assert parse_retry_after(_headers()) is None


# -- ReadBudget --------------------------------------------------------------------------------------------------


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_read_budget_takes_its_capacity_then_waits_for_the_refill() -> None:
    clock = FakeMonotonic()
    budget = ReadBudget(capacity=3, refill_per_second=2, clock=clock)
    assert [budget.take("sub-a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert budget.take("sub-a") == pytest.approx(0.5)  # one token comes in 1/2 s; nothing taken
    assert budget.take("sub-b") == 0.0  # each subscription has its own bucket
    clock.now += 0.25
    assert budget.take("sub-a") == pytest.approx(0.25)  # half a token refilled
    clock.now += 0.25
    assert budget.take("sub-a") == 0.0
    assert budget.take("sub-a") == pytest.approx(0.5)


def test_read_budget_refills_only_up_to_its_capacity() -> None:
    clock = FakeMonotonic()
    budget = ReadBudget(capacity=2, refill_per_second=10, clock=clock)
    assert budget.take("s") == 0.0
    clock.now += 3600  # an hour idle: still only two
    assert [budget.take("s") for _ in range(2)] == [0.0, 0.0]
    assert budget.take("s") > 0


# -- CredentialToken ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_on: int | float


class CountingCredential:
    """An ``azure-identity``-shaped credential (get_token(scope) -> .token, .expires_on) that counts its calls.

    The first token expires in ``first_lifetime`` seconds, the later ones in an hour."""

    def __init__(self, first_lifetime: float) -> None:
        self.first_lifetime = first_lifetime
        self.calls: list[str] = []

    def get_token(self, scope: str) -> AccessToken:
        self.calls.append(scope)
        lifetime = self.first_lifetime if len(self.calls) == 1 else 3600
        return AccessToken(f"token-{len(self.calls)}", time.time() + lifetime)


def test_a_credential_token_is_refreshed_before_it_expires_and_used_on_the_wire() -> None:
    # Refreshed five minutes before expiry: a first token with 300.6 s left is good for about 0.6 s.
    credential = CountingCredential(first_lifetime=300.6)
    token = CredentialToken(credential, "https://management.azure.com/.default")
    with WebhookReceiver() as arm:  # stands in for ARM: records the Authorization header of each GET
        transport = ArmTransport(token, timeout=(2, 5))
        assert transport.get(arm.url) == {"status": 200}
        assert transport.get(arm.url) == {"status": 200}
        assert len(credential.calls) == 1  # cached while valid
        first = time.time()
        assert wait_until(lambda: time.time() - first > 0.7, 3)
        assert transport.get(arm.url) == {"status": 200}
        assert transport.get(arm.url) == {"status": 200}
        assert len(credential.calls) == 2  # refreshed once across the expiry, then cached again
        assert credential.calls == ["https://management.azure.com/.default"] * 2
        assert [r.headers["authorization"] for r in arm.requests] == [
            "Bearer token-1", "Bearer token-1", "Bearer token-2", "Bearer token-2"]


# -- the nextLink guard ------------------------------------------------------------------------------------------


class _ListPages(ThreadingHTTPServer):
    """A list endpoint whose first page's nextLink points elsewhere (``next_link``)."""

    daemon_threads = True

    def __init__(self, next_link: str) -> None:
        self.next_link = next_link
        self.authorizations: list[str] = []
        super().__init__(("127.0.0.1", 0), _PageHandler)


class _PageHandler(BaseHTTPRequestHandler):
    server: _ListPages

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.authorizations.append(self.headers.get("Authorization", ""))
        body = json.dumps({"value": [{"id": "job-1"}], "nextLink": self.server.next_link}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def trap() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


def _serve(next_link: str) -> tuple[_ListPages, threading.Thread]:
    server = _ListPages(next_link)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


@pytest.mark.parametrize("elsewhere", ["http://127.0.0.1:{trap}/next?page=2", "https://127.0.0.1:{arm}/next"])
def test_a_next_link_off_arm_endpoint_is_never_followed(trap: WebhookReceiver, elsewhere: str) -> None:
    server, thread = _serve("")
    arm_port = server.server_address[1]
    server.next_link = elsewhere.format(trap=trap.port, arm=arm_port)  # another port, or another scheme
    try:
        client = ArmClient(f"http://127.0.0.1:{arm_port}", StaticToken("secret-token"), backoff_seconds=0.01)
        pages = client.iter_pages("/subscriptions/x/jobs", {"api-version": "1"}, SUBSCRIPTION)
        assert next(pages) == {"id": "job-1"}
        with pytest.raises(ArmError) as caught:
            next(pages)
        assert caught.value.code == "UnexpectedNextLink"
        assert server.authorizations == ["Bearer secret-token"]  # the first page only
        assert trap.connections == 0  # the token never left for the other host
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_next_link_on_arm_endpoint_is_followed() -> None:
    server, thread = _serve("")
    port = server.server_address[1]
    server.next_link = f"http://127.0.0.1:{port}/next?page=2"
    try:
        client = ArmClient(f"http://127.0.0.1:{port}", StaticToken("secret-token"), backoff_seconds=0.01)
        pages = client.iter_pages("/subscriptions/x/jobs", {"api-version": "1"}, SUBSCRIPTION)
        assert [next(pages), next(pages)] == [{"id": "job-1"}] * 2
        assert len(server.authorizations) == 2
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
