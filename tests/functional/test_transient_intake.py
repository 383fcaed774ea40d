"""A transient failure is never a permanent verdict: a DNS server that cannot answer now, or a table that cannot be
reached now, leaves the intake message on its queue to be tried again; only wrong input is rejected."""

from __future__ import annotations

import json
import re
import socket
import threading
from pathlib import Path

import pytest

from jobs.config import Settings
from jobs.local_host import LocalHost
from jobs.tracker import Tracker
from jobs.webhooks import callback_urls
from jobs.webhooks.callback_urls import CallbackUrlUnverified
from tests.conftest import VAULT, drain, free_ports, wait_until

ROOT = Path(__file__).resolve().parents[2]
JOB = "41f3e94b-ae6b-4a20-b422-65abfcaf03e5"
CALLBACK = "https://hooks.example.test/backup-done"


class FlakyDns:
    """Answers EAI_AGAIN ("temporary failure in name resolution") for the first ``failures`` lookups."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        if self.calls <= self.failures:
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return ["20.38.98.1"]


def _message() -> str:
    return json.dumps({"jobId": JOB, "vaultId": VAULT, "callbackUrl": CALLBACK})


def test_a_dns_server_that_cannot_answer_now_is_retried_not_rejected(make_tracker, monkeypatch) -> None:
    tracker = make_tracker(JOBS_CALLBACK_ALLOWED_HOSTS="*.example.test")
    dns = FlakyDns(failures=2)
    monkeypatch.setattr(callback_urls, "default_resolve", dns)
    tracker._storage.queue(tracker.settings.intake_queue).send_message(_message())
    host = LocalHost(tracker, visibility_seconds=1, idle_sleep=0.05)
    thread = threading.Thread(target=host.run, kwargs={"until_idle": True, "timeout": 60}, daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: any(True for _ in tracker._store.list_items()), 30)
    finally:
        host.stop_event.set()
        thread.join(30)
    assert dns.calls >= 3  # two failed lookups, then the one that let it in
    assert drain(tracker._storage.queue(tracker.settings.rejected_queue)) == []
    [item] = list(tracker._store.list_items())
    assert item.job_id == JOB
    [record] = tracker._store.list_subscribers(item.tracking_id)
    assert record.subscriber.callback_url == CALLBACK


def test_a_name_that_does_not_exist_is_still_rejected(make_tracker, monkeypatch) -> None:
    tracker = make_tracker(JOBS_CALLBACK_ALLOWED_HOSTS="*.example.test")

    def nxdomain(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(callback_urls, "default_resolve", nxdomain)
    assert tracker.accept_message(_message()).rejected is not None
    [record] = [json.loads(m) for m in drain(tracker._storage.queue(tracker.settings.rejected_queue))]
    assert "does not resolve" in record["reason"]


def test_a_dns_timeout_raises_so_the_queue_retries(make_tracker, monkeypatch) -> None:
    tracker = make_tracker(JOBS_CALLBACK_ALLOWED_HOSTS="*.example.test")

    def timeout(host: str, port: int) -> list[str]:
        raise TimeoutError("timed out")

    monkeypatch.setattr(callback_urls, "default_resolve", timeout)
    with pytest.raises(CallbackUrlUnverified):
        tracker.accept_message(_message())
    assert drain(tracker._storage.queue(tracker.settings.rejected_queue)) == []


def test_a_table_that_cannot_be_reached_leaves_the_message_to_be_retried(env: dict[str, str], azurite) -> None:
    table_port = free_ports(1)[0]  # nothing listens there: the table service is down, the queues are up
    account = re.search(r"AccountName=([^;]+)", azurite.connection_string)[1]
    key = re.search(r"AccountKey=([^;]+)", azurite.connection_string)[1]
    queue_endpoint = re.search(r"QueueEndpoint=([^;]+)", azurite.connection_string)[1]
    connection = (
        f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};QueueEndpoint={queue_endpoint};"
        f"TableEndpoint=http://127.0.0.1:{table_port}/{account};"
    )
    tracker = Tracker(Settings.from_env({**env, "AzureWebJobsStorage": connection}))
    for name in tracker.settings.all_queues():
        tracker._storage.queue(name).create_queue()
    with pytest.raises(Exception) as raised:
        tracker.accept_message(json.dumps({"jobId": JOB, "vaultId": VAULT}))
    assert not isinstance(raised.value, ValueError)  # not a verdict on the message
    assert drain(tracker._storage.queue(tracker.settings.rejected_queue)) == []


def test_the_queue_retries_span_minutes_not_seconds() -> None:
    """host.json: five attempts, a visibility timeout between them that rides out a few minutes of outage."""
    queues = json.loads((ROOT / "host.json").read_text())["extensions"]["queues"]
    hours, minutes, seconds = (int(part) for part in queues["visibilityTimeout"].split(":"))
    gap = hours * 3600 + minutes * 60 + seconds
    assert gap * (queues["maxDequeueCount"] - 1) >= 5 * 60
