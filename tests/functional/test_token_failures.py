"""Issue 20, point 1: a token that cannot be had is a credential failure like a 401.

The tracker gets its token the way it does on Functions: ``DefaultAzureCredential`` built from the environment,
whose managed identity credential asks App Service's identity endpoint (``IDENTITY_ENDPOINT``,
``IDENTITY_HEADER``). Here that endpoint is a real HTTP server on loopback (``devtools.identity_endpoint``) that
refuses, then answers. With ``IDENTITY_ENDPOINT`` set, azure-identity never asks the instance metadata address;
every connection a test opens is recorded and must be a loopback one. The rounds run on a clock the test moves.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.identity_endpoint import IdentityEndpoint
from devtools.simulator import JobScript
from jobs.http_api import ApiRequest, HttpApi
from jobs.tracker import Tracker
from tests.conftest import ROOT, VAULT, ManualClock, poll_once, results, tracker_with_clock

SUBSCRIPTION = VAULT.split("/")[2]
GRACE = 30
# Variables that would steer DefaultAzureCredential elsewhere than the endpoint under test.
_OTHER_IDENTITY_VARIABLES = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE",
                             "AZURE_USERNAME", "MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT",
                             "IMDS_ENDPOINT", "AZURE_POD_IDENTITY_AUTHORITY_HOST", "AZURE_TOKEN_CREDENTIALS")

_connections: list[Any] | None = None  # addresses of socket.connect while a test records them


def _record_connect(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect" and _connections is not None:
        _connections.append(args[1])


sys.addaudithook(_record_connect)


def _loopback(address: Any) -> bool:
    if not isinstance(address, tuple):  # a Unix socket
        return True
    host = str(address[0])
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture
def identity(monkeypatch: pytest.MonkeyPatch) -> Iterator[IdentityEndpoint]:
    """App Service's identity endpoint on loopback, in the environment as the platform sets it; every connection
    made meanwhile is checked to be a loopback one (never 169.254.169.254)."""
    global _connections
    for name in _OTHER_IDENTITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with IdentityEndpoint(token="sim-token") as endpoint:
        for name, value in endpoint.env().items():
            monkeypatch.setenv(name, value)
        _connections = []
        try:
            yield endpoint
            outside = [address for address in _connections if not _loopback(address)]
            assert outside == [], f"connections outside loopback: {outside}"
            assert _connections, "the audit hook saw no connection at all"
        finally:
            _connections = None
    assert endpoint.requests and all(r.client == "127.0.0.1" for r in endpoint.requests)


def _tracker(env: dict[str, str], clock: ManualClock, **overrides: str) -> Tracker:
    """The tracker as deployed: no JOBS_ARM_TOKEN, so its token comes from DefaultAzureCredential."""
    without_token = {name: value for name, value in env.items() if name != "JOBS_ARM_TOKEN"}
    return tracker_with_clock(without_token, clock, JOBS_NOT_FOUND_GRACE_SECONDS=str(GRACE), **overrides)


def _track_job_and_operation(tracker: Tracker, simulator: Any) -> tuple[str, str]:
    job_id = simulator.add_job(VAULT, JobScript(duration=1, final_status="CompletedWithWarnings"))
    triggered = simulator.trigger_backup(VAULT, JobScript(duration=1, final_status="Failed"), operation_delay=0.2)
    [job] = tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT, "correlationId": "job"}))\
        .tracking_ids
    [operation] = tracker.accept_message(json.dumps({"operationUrl": triggered.azure_async_operation,
                                                     "correlationId": "operation"})).tracking_ids
    return job, operation


def _health(tracker: Tracker) -> tuple[int, dict[str, Any]]:
    response = HttpApi(lambda: tracker).handle(ApiRequest("GET", "/api/health", "http://127.0.0.1/api/health"))
    return response.status, response.json()


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


def _outage_then_recovery(tracker: Tracker, identity: IdentityEndpoint, clock: ManualClock,
                          tracked: tuple[str, ...], rounds: Any, outage_rounds: int = 8) -> list[dict[str, Any]]:
    """Rounds well past the grace period while the endpoint refuses: nothing ends, nothing raises. Then it
    answers: the rounds go on until every item ended; returns the results."""
    for _ in range(outage_rounds):
        clock.advance(GRACE)
        rounds(tracker)  # raises today: the timer round (Resource Graph) or the poll message (list)
    for tracking_id in tracked:
        item = tracker._store.get(tracking_id)
        assert item is not None and not item.ended, item and item.result_status
        assert item.last_error is not None and item.last_error["code"] == "TokenUnavailable"
    assert results(tracker) == []
    assert "TokenUnavailable" in tracker.failing_subscriptions()[SUBSCRIPTION]

    identity.answer()
    events: list[dict[str, Any]] = []
    for _ in range(12):  # the backoff reached minutes: each step moves the clock past it
        clock.advance(400)
        rounds(tracker)
        events += results(tracker)
        if len(events) == 2:
            break
    assert tracker.failing_subscriptions() == {}
    return events


def test_point1_token_unavailable_with_resource_graph_on_the_timer_round_never_raises_and_nothing_ends(
    simulator, identity, env, clock, caplog
):
    """Resource Graph on, rounds inline in the timer: the detector's query and the vault's list both need a token."""
    identity.refuse(400)
    tracker = _tracker(env, clock, JOBS_RESOURCE_GRAPH="on", JOBS_INLINE_POLL_MAX="100")
    job, operation = _track_job_and_operation(tracker, simulator)
    caplog.set_level(logging.WARNING)

    events = _outage_then_recovery(tracker, identity, clock, (job, operation), lambda t: t.run_poll_round())

    assert sorted(e["type"] for e in events) == ["BackupJob.CompletedWithWarnings", "BackupJob.Failed"]
    assert {e["data"]["correlationId"]: e["type"] for e in events} == {
        "job": "BackupJob.CompletedWithWarnings", "operation": "BackupJob.Failed"}
    assert len([m for m in _errors(caplog) if SUBSCRIPTION in m]) == 1  # the outage lasted under 5 minutes


def test_point1_token_unavailable_with_resource_graph_off_an_operation_and_a_per_job_item_never_end_and_log_one_error_per_5_minutes(  # noqa: E501
    simulator, identity, env, clock, caplog
):
    """Resource Graph off and a GET per job (the job strategy), through the poll queue: the job's GET and the
    operation's read. The outage lasts 12 minutes of the tracker's clock: one ERROR per 5 minutes."""
    identity.refuse(400)
    tracker = _tracker(env, clock, JOBS_POLL_STRATEGY="job")
    job, operation = _track_job_and_operation(tracker, simulator)
    caplog.set_level(logging.WARNING)
    start = clock.now
    logged_at = []
    for _ in range(12):
        clock.advance(60)
        seen = len(_errors(caplog))
        poll_once(tracker)
        logged_at += [(clock.now - start).total_seconds()] * (len(_errors(caplog)) - seen)
    assert all("could not get a token" in m and SUBSCRIPTION in m for m in _errors(caplog))
    assert len(logged_at) >= 2  # repeated while it lasts, never silenced
    assert all(b - a >= 300 for a, b in itertools.pairwise(logged_at)), logged_at

    events = _outage_then_recovery(tracker, identity, clock, (job, operation), poll_once, outage_rounds=0)
    assert {e["data"]["correlationId"]: e["type"] for e in events} == {
        "job": "BackupJob.CompletedWithWarnings", "operation": "BackupJob.Failed"}


def test_point1_token_unavailable_shows_failing_in_health_heartbeat_and_status_naming_the_identity(
    simulator, identity, env, clock, monkeypatch
):
    """A wrong AZURE_CLIENT_ID: the endpoint knows another identity. /api/health answers 503 naming the identity
    and the setting to check; the heartbeat and `status` show the subscription failing; the right id mends it."""
    identity.client_ids = frozenset({"right-client-id"})
    monkeypatch.setenv("AZURE_CLIENT_ID", "wrong-client-id")
    tracker = _tracker(env, clock)
    status, body = _health(tracker)  # before any poll: the health check asks for a token itself
    assert status == 503 and body["checks"]["arm"].startswith("token: 401 TokenUnavailable")
    assert "AZURE_CLIENT_ID=wrong-client-id" in body["detail"]
    job_id = simulator.add_job(VAULT, JobScript(duration=3600))
    [tracking_id] = tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT})).tracking_ids
    clock.advance(1)
    assert poll_once(tracker) == 1

    status, body = _health(tracker)
    assert status == 503
    assert f"{SUBSCRIPTION}: 401 TokenUnavailable" in body["checks"]["arm"]  # and the subscription its reads failed
    for text in (body["detail"], body["checks"]["arm"]):
        assert "AZURE_CLIENT_ID=wrong-client-id" in text and "Check that AZURE_CLIENT_ID" in text
    assert "TokenUnavailable" in tracker.heartbeat().failing[SUBSCRIPTION]
    status_line = subprocess.run(  # `python -m jobs status <jobId>` reads the table only
        [sys.executable, "-m", "jobs", "status", job_id], cwd=ROOT, capture_output=True, text=True, timeout=90,
        env={**os.environ, **{k: v for k, v in env.items() if k != "JOBS_ARM_TOKEN"}})
    assert status_line.returncode == 0, status_line.stderr
    assert "running" in status_line.stdout and "TokenUnavailable" in status_line.stdout
    assert identity.requests[-1].query["client_id"] == "wrong-client-id"

    monkeypatch.setenv("AZURE_CLIENT_ID", "right-client-id")
    mended = _tracker(env, clock)  # restarted with the setting fixed, on the same storage
    clock.advance(600)
    assert poll_once(mended) == 1
    item = mended._store.get(tracking_id)
    assert item is not None and item.status == "InProgress" and item.last_error is None
    status, body = _health(mended)
    assert status == 200 and body["checks"]["arm"] == "ok"
