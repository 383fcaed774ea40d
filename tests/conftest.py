"""Shared fixtures: a real Azurite (one per session), a real simulator and real webhook receivers per test.

Each test gets its own queue and table names, so tests never see each other's messages.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.storage.queue import QueueClient

from devtools.azurite import Azurite
from devtools.simulator import BackupSimulator
from devtools.webhook_receiver import WebhookReceiver, make_self_signed_cert
from jobs.config import Settings
from jobs.local_host import LocalHost
from jobs.tracker import Tracker

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VAULT = (
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/backup-rg"
    "/providers/Microsoft.RecoveryServices/vaults/prod-vault"
)
ROOT = Path(__file__).resolve().parents[1]
# Real Azure payloads: the ones the simulator serves live once, in its payloads/; the others in tests/fixtures.
FIXTURE_FOLDERS = (ROOT / "devtools" / "simulator" / "payloads", ROOT / "tests" / "fixtures")


def fixture_json(name: str) -> Any:
    """A real Azure payload by its file name (an ``azure-rest-api-specs/`` prefix is accepted), from the repo only."""
    name = name.removeprefix("azure-rest-api-specs/")
    for folder in FIXTURE_FOLDERS:
        path = folder / name
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))
    raise FileNotFoundError(f"{name}: not in {', '.join(str(f.relative_to(ROOT)) for f in FIXTURE_FOLDERS)}")


def _refuse_reads_beside_the_repo(event: str, args: tuple[Any, ...]) -> None:
    """A user's clone has nothing beside it: a test that opens a sibling folder of the repository fails loudly."""
    if event != "open" or not isinstance(args[0], str | Path):
        return
    path = os.path.abspath(args[0])
    if path.startswith(_OUTSIDE) and not path.startswith(_INSIDE):
        raise RuntimeError(f"a test read {path}, outside the repository: copy what it needs into the repo")


# Telemetry goes to a test's own collector on loopback only: nothing inherited from the shell exports anywhere.
for _name in ("APPLICATIONINSIGHTS_CONNECTION_STRING", "OTEL_EXPORTER_OTLP_ENDPOINT",
              "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
    os.environ.pop(_name, None)
os.environ["APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL"] = "true"
_INSIDE = str(ROOT) + os.sep
_OUTSIDE = str(ROOT.parent / "shared")
sys.addaudithook(_refuse_reads_beside_the_repo)


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    with Azurite() as instance:
        yield instance


@pytest.fixture
def simulator() -> Iterator[BackupSimulator]:
    with BackupSimulator(token="sim-token") as sim:
        sim.add_vault(VAULT)
        yield sim


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(secret=SECRET) as hook:
        yield hook


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return make_self_signed_cert(tmp_path_factory.mktemp("tls"), ["localhost", "127.0.0.1"])


@pytest.fixture
def https_receiver(tls_files: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_files[0])
    with WebhookReceiver(secret=SECRET, tls=tls_files) as hook:
        yield hook


@pytest.fixture
def env(azurite: Azurite, simulator: BackupSimulator, receiver: WebhookReceiver) -> dict[str, str]:
    """Settings for one test: unique queues and table, the simulator as ARM, the receiver as webhook."""
    prefix = "t" + uuid.uuid4().hex[:10]
    return {
        "AzureWebJobsStorage": azurite.connection_string,
        "JOBS_INTAKE_QUEUE": f"{prefix}-jobs",
        "JOBS_RESULTS_QUEUE": f"{prefix}-results",
        "JOBS_TABLE": prefix,
        "JOBS_WEBHOOK_URLS": receiver.url,
        "JOBS_WEBHOOK_SECRET": SECRET,
        "JOBS_CALLBACK_ALLOWED_HOSTS": "127.0.0.1",
        "JOBS_POLL_SECONDS": "1",
        "ARM_ENDPOINT": simulator.base_url,
        "JOBS_ARM_TOKEN": "sim-token",
        "JOBS_NOT_FOUND_GRACE_SECONDS": "30",
        "JOBS_DELIVERY_FIRST_RETRY_SECONDS": "0.5",
        # Rounds through the poll queue and no Resource Graph: what most tests examine (messages, leases, each
        # read of a job). Inline rounds and Resource Graph have tests of their own (test_vault_rounds.py).
        "JOBS_INLINE_POLL_MAX": "0",
        "JOBS_RESOURCE_GRAPH": "off",
    }


@pytest.fixture
def make_tracker(env: dict[str, str]) -> Callable[..., Tracker]:
    def make(**overrides: str) -> Tracker:
        tracker = Tracker(Settings.from_env({**env, **overrides}))
        tracker.setup()
        return tracker

    return make


@pytest.fixture
def tracker(make_tracker: Callable[..., Tracker]) -> Tracker:
    return make_tracker()


class ManualClock:
    """A clock the test moves: the tracker's ``clock`` for decisions that take minutes (grace, backoff, leases)."""

    # It starts a few seconds ahead of the wall clock: the simulator dates its jobs by the wall clock, and a list's
    # window ends at the tracker's "now" in whole seconds, so a job created just after the clock (within the same
    # second) would otherwise be missing from the first round's list.
    AHEAD_SECONDS = 5

    def __init__(self) -> None:
        self.now = datetime.now(UTC) + timedelta(seconds=self.AHEAD_SECONDS)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def tracker_with_clock(env: dict[str, str], clock: ManualClock, **overrides: str) -> Tracker:
    tracker = Tracker(Settings.from_env({**env, **overrides}), clock=clock)
    tracker.setup()
    return tracker


def poll_once(tracker: Tracker) -> int:
    """One timer round and every poll message it sent, handled as the poll-queue trigger would; returns how many."""
    tracker.run_poll_round()
    messages = drain(tracker._storage.queue(tracker.settings.poll_queue))
    for message in messages:
        tracker.handle_poll_message(message)
    return len(messages)


class Host:
    """A LocalHost running in a thread for the test's duration."""

    def __init__(self, tracker: Tracker) -> None:
        self.host = LocalHost(tracker, idle_sleep=0.05)
        self.result: int | None = None
        self._thread: threading.Thread | None = None

    def start(self, until_idle: bool = False, timeout: float = 90) -> Host:
        def target() -> None:
            self.result = self.host.run(until_idle=until_idle, timeout=timeout)

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()
        return self

    def join(self, timeout: float = 120) -> int | None:
        assert self._thread is not None
        self._thread.join(timeout)
        return self.result

    def stop(self) -> None:
        self.host.stop_event.set()
        if self._thread:
            self._thread.join(30)


@pytest.fixture
def run_host(tracker: Tracker) -> Iterator[Callable[..., Host]]:
    hosts: list[Host] = []

    def start(until_idle: bool = False, timeout: float = 90, for_tracker: Tracker | None = None) -> Host:
        host = Host(for_tracker or tracker).start(until_idle=until_idle, timeout=timeout)
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        host.stop()


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def drain(queue: QueueClient) -> list[str]:
    """Every message on a queue (read and deleted)."""
    out = []
    while True:
        batch = list(queue.receive_messages(max_messages=32, messages_per_page=32))
        if not batch:
            return out
        for message in batch:
            out.append(message.content)
            queue.delete_message(message)


def results(tracker: Tracker) -> list[dict[str, Any]]:
    assert tracker.settings.results_queue
    return [json.loads(text) for text in drain(tracker._storage.queue(tracker.settings.results_queue))]


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Waits on a condition with a deadline (no sleep-and-hope); returns whether it came true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


@pytest.fixture
def wait() -> Callable[..., bool]:
    return wait_until
