"""Hostile callbackUrls and operationUrls, end to end: refused at intake, refused again at connect time.

A trap listens on loopback (a real TLS server that counts accepted TCP connections) and every hostile URL aims at
it; whatever happens, it must see zero connections. Names are resolved through a fake resolver
(``jobs.webhooks.callback_urls.default_resolve`` patched), so the DNS-rebinding case is exact: the name resolves to a
public address at intake and to 127.0.0.1 at delivery.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

import jobs.webhooks.callback_urls
from devtools.simulator import JobScript
from devtools.webhook_receiver import WebhookReceiver
from tests.conftest import SECRET, VAULT, drain, results
from tests.e2e.test_bad_input import arm_target_problem, record_arm_requests

PUBLIC = "93.184.216.34"  # a public address nothing here ever connects to (resolution is faked)


class FakeDns:
    """Stands in for getaddrinfo: names map to address lists; ``rebind`` switches some names to new answers."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, host: str, port: int) -> list[str]:
        with self._lock:
            self.asked.append(host.lower())
            answer = self.answers.get(host.lower().rstrip("."))
        if answer is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(answer)

    def rebind(self, **answers: list[str]) -> None:
        with self._lock:
            self.answers.update({name.replace("_", "."): value for name, value in answers.items()})


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns({
        "loopback.test": ["127.0.0.1"],
        "metadata.test": ["169.254.169.254"],
        "private.test": ["10.1.2.3"],
        "cgnat.test": ["100.64.0.7"],
        "mixed.test": [PUBLIC, "127.0.0.1"],
        "v6loop.test": ["::1"],
        "mapped.test": ["::ffff:127.0.0.1"],
        "sixtofour.test": ["2002:7f00:1::1"],
        "rebind.test": [PUBLIC],
        "rebind-mixed.test": [PUBLIC],
        "localhost": ["127.0.0.1"],
    })
    monkeypatch.setattr(jobs.webhooks.callback_urls, "default_resolve", fake)
    return fake


@pytest.fixture
def trap(tls_files: tuple[str, str]) -> Iterator[WebhookReceiver]:
    """A TLS listener on 127.0.0.1 that counts accepted connections; hostile URLs point at its port."""
    with WebhookReceiver(tls=tls_files) as listener:
        yield listener


@pytest.fixture
def trap6(tls_files: tuple[str, str], trap: WebhookReceiver) -> Iterator[WebhookReceiver | None]:
    """The same on [::1] and the same port, when this machine has IPv6 loopback."""
    try:
        listener = WebhookReceiver(tls=tls_files, host="::1", port=trap.port)
        listener.start()
    except OSError:
        yield None
        return
    try:
        yield listener
    finally:
        listener.stop()


def hostile_callback_urls(port: int) -> list[str]:
    p = port
    return [
        # loopback, in every spelling getaddrinfo accepts
        f"https://127.0.0.1:{p}/hook", f"https://localhost:{p}/hook", f"https://[::1]:{p}/hook",
        f"https://2130706433:{p}/hook", f"https://0x7f000001:{p}/hook", f"https://0x7f.0.0.1:{p}/hook",
        f"https://0177.0.0.1:{p}/hook", f"https://017700000001:{p}/hook", f"https://127.1:{p}/hook",
        f"https://127.0.0.1.:{p}/hook", f"https://[::ffff:127.0.0.1]:{p}/hook", f"https://[0:0:0:0:0:0:0:1]:{p}/hook",
        f"https://0.0.0.0:{p}/hook", f"https://0:{p}/hook",
        # private, shared, link-local and cloud metadata
        "https://10.0.0.1/hook", "https://172.16.5.4/hook", "https://192.168.0.10/hook", "https://100.64.0.1/hook",
        "https://169.254.169.254/metadata/instance?api-version=2021-02-01", "https://2852039166/latest/meta-data",
        "https://[fd00::1]/hook", "https://[fe80::1]/hook", "https://[fe80::1%25eth0]/hook",
        # other schemes, and http to an allowed host
        "http://hooks.example.com/hook", f"http://127.0.0.1:{p}/hook", "file:///etc/passwd",
        f"gopher://127.0.0.1:{p}/_hello", "ftp://hooks.example.com/hook", f"//127.0.0.1:{p}/hook",
        "javascript:alert(1)", f"HTTPS:/127.0.0.1:{p}/hook",
        # userinfo, fragments, backslashes, encodings: parser differentials
        f"https://hooks.example.com@127.0.0.1:{p}/hook", "https://user:pass@hooks.example.com/hook",
        f"https://hooks.example.com:443@127.0.0.1:{p}/hook", f"https://127.0.0.1:{p}\\@hooks.example.com/hook",
        f"https://hooks.example.com#@127.0.0.1:{p}/hook", f"https://127.0.0.1:{p}#@hooks.example.com/hook",
        f"https://hooks.example.com%2F@127.0.0.1:{p}/hook", f"https://%31%32%37.0.0.1:{p}/hook",
        f"https://hooks.example.com%00.127.0.0.1:{p}/hook", f"https://hooks.example.com\t@127.0.0.1:{p}/hook",
        f"https://\u24db\u24de\u24d2\u24d0\u24db\u24d7\u24de\u24e2\u24e3:{p}/hook",  # ⓛⓞⓒⓐⓛⓗⓞⓢⓣ -> localhost
        f"https://hooks.example.com.127.0.0.1.nip.io:{p}/hook",
        # names under the allowed wildcard that resolve to what is refused
        f"https://loopback.test:{p}/hook", "https://metadata.test/latest", "https://private.test/hook",
        "https://cgnat.test/hook", f"https://mixed.test:{p}/hook", f"https://v6loop.test:{p}/hook",
        f"https://mapped.test:{p}/hook", f"https://sixtofour.test:{p}/hook", "https://nowhere.test/hook",
        "https://test/hook",
    ]


def _track_message(job_id: str, callback_url: object) -> str:
    return json.dumps({"jobId": job_id, "vaultId": VAULT, "callbackUrl": callback_url})


def test_hostile_callback_urls_are_refused_at_intake_and_nothing_connects(
    simulator, make_tracker, dns, trap, trap6, run_host
):
    tracker = make_tracker(JOBS_CALLBACK_ALLOWED_HOSTS="hooks.example.com,*.test")
    job = simulator.add_job(VAULT, JobScript(duration=0.3))
    intake = tracker._storage.queue(tracker.settings.intake_queue)
    hostile = hostile_callback_urls(trap.port)

    reasons = {}
    for url in hostile:
        acceptance = tracker.accept_message(_track_message(job, url))
        assert acceptance.rejected is not None, f"accepted {url!r}"
        assert "callbackUrl" in acceptance.rejected, (url, acceptance.rejected)
        reasons[url] = acceptance.rejected
    # A few reasons say what was wrong, not only that something was.
    assert "https" in reasons["file:///etc/passwd"]
    assert "user information" in reasons[f"https://hooks.example.com@127.0.0.1:{trap.port}/hook"]
    assert "loopback" in reasons[f"https://loopback.test:{trap.port}/hook"]
    assert "169.254.169.254" in reasons["https://metadata.test/latest"]
    assert "does not resolve" in reasons["https://nowhere.test/hook"]
    assert set(dns.asked) >= {"loopback.test", "metadata.test", "mixed.test"}  # the wildcard names were looked up

    # The same messages through the queue and the runner, beside a good job: all rejected, the job still ends.
    for url in hostile:
        intake.send_message(_track_message(job, url))
    intake.send_message(json.dumps({"jobId": job, "vaultId": VAULT}))
    assert run_host(until_idle=True, timeout=60, for_tracker=tracker).join() == 0

    rejected = [json.loads(t) for t in drain(tracker._storage.queue(tracker.settings.rejected_queue))]
    assert len(rejected) == 2 * len(hostile)
    assert all("callbackUrl" in r["reason"] for r in rejected)
    assert [e["data"]["jobId"] for e in results(tracker)] == [job]
    subscribers = [s for item in tracker._store.list_items() for s in tracker._store.list_subscribers(item.tracking_id)]
    assert subscribers and all(s.subscriber.callback_url is None for s in subscribers)  # no hostile one was stored
    assert trap.connections == 0 and trap.requests == []
    assert trap6 is None or trap6.connections == 0


def test_a_name_rebound_to_loopback_after_intake_is_refused_before_connecting(
    simulator, make_tracker, dns, trap, run_host
):
    tracker = make_tracker(JOBS_CALLBACK_ALLOWED_HOSTS="*.test")
    job = simulator.add_job(VAULT, JobScript(duration=0.3))
    urls = {
        "rebind": f"https://rebind.test:{trap.port}/hook?sig=SECRETSIG-rebind&sv=2024",
        "rebind-mixed": f"https://rebind-mixed.test:{trap.port}/hook",
    }
    tracking = {}
    for name, url in urls.items():
        acceptance = tracker.accept_message(json.dumps({"jobId": job, "vaultId": VAULT, "callbackUrl": url,
                                                        "correlationId": name}))
        assert acceptance.rejected is None, acceptance.rejected  # public at intake: accepted
        tracking[name] = acceptance.tracking_ids[0]
    asked_at_intake = len(dns.asked)
    dns.rebind(rebind_test=["127.0.0.1"], **{"rebind-mixed_test": [PUBLIC, "127.0.0.1"]})

    assert run_host(until_idle=True, timeout=60, for_tracker=tracker).join() == 0

    assert {"rebind.test", "rebind-mixed.test"} <= set(dns.asked[asked_at_intake:])  # checked again at delivery
    records = [json.loads(t) for t in drain(tracker._storage.queue(tracker.settings.deadletter_queue))]
    ours = [r for r in records if r["trackingId"] in tracking.values()]
    by_correlation = {r["event"]["data"]["correlationId"]: r for r in ours}
    assert set(by_correlation) == set(urls), ours
    for name, record in by_correlation.items():
        assert "127.0.0.1" in record["reason"] and "loopback" in record["reason"], record
        assert record["target"].startswith(f"https://{name}.test:{trap.port}/…#")
        assert record["attempts"] == 1  # refused for good, not retried
    assert "SECRETSIG" not in by_correlation["rebind"]["target"]
    assert "?" not in by_correlation["rebind"]["target"]
    # The results queue and the operator's webhook still got both events.
    assert sorted(e["data"]["correlationId"] for e in results(tracker)) == sorted(urls)
    assert trap.connections == 0 and trap.requests == []


def test_an_allowlisted_https_callback_is_delivered(simulator, make_tracker, https_receiver, dns, trap, run_host):
    tracker = make_tracker(JOBS_CALLBACK_ALLOWED_HOSTS=f"127.0.0.1:{https_receiver.port},localhost")
    job = simulator.add_job(VAULT, JobScript(duration=0.3))
    by_ip = https_receiver.url + "?sig=ok-1"
    by_name = https_receiver.url.replace("127.0.0.1", "localhost") + "?n=2"
    for correlation, url in (("by-ip", by_ip), ("by-name", by_name)):
        acceptance = tracker.accept_message(json.dumps({"jobId": job, "vaultId": VAULT, "callbackUrl": url,
                                                        "correlationId": correlation}))
        assert acceptance.rejected is None, acceptance.rejected
    # 127.0.0.1 is listed for the receiver's port only: the trap's port on the same address is refused.
    refused = tracker.accept_message(_track_message(job, f"https://127.0.0.1:{trap.port}/hook"))
    assert refused.rejected and "callbackUrl" in refused.rejected and str(trap.port) in refused.rejected

    assert run_host(until_idle=True, timeout=60, for_tracker=tracker).join() == 0

    delivered = https_receiver.delivered()
    assert sorted(r.json()["data"]["correlationId"] for r in delivered) == ["by-ip", "by-name"]
    assert all(r.verified for r in delivered)  # signed with the tracker's secret (SECRET)
    assert sorted(r.path for r in delivered) == ["/hooks?n=2", "/hooks?sig=ok-1"]
    assert "localhost" in dns.asked  # the listed name went through the guarded resolver
    assert trap.connections == 0
    # Signed with the tracker's secret: each body and its headers verify against SECRET itself, and not against
    # another secret (so ``verified`` above means the tracker signed with SECRET).
    assert tracker.settings.webhook_secret == SECRET == https_receiver.secret
    for request in delivered:
        Webhook(SECRET).verify(request.body, request.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook("whsec_" + base64.b64encode(b"another secret, 32 bytes long!!!").decode()).verify(
                request.body, request.headers)


def test_operation_urls_off_arm_endpoint_are_refused_and_the_token_goes_nowhere(
    simulator, make_tracker, trap, run_host
):
    tracker = make_tracker()
    arm_requests = record_arm_requests(simulator)
    operation = simulator.trigger_backup(VAULT, JobScript(duration=0.3), operation_delay=0.3)
    good = operation.azure_async_operation
    parts = urlsplit(good)
    path = parts.path
    sim_port = parts.port
    vault_ops = f"{VAULT}/backupOperations/{operation.operation_id}"
    p = trap.port
    hostile = [
        f"http://127.0.0.1:{p}{path}",                                   # another port on loopback: the trap
        f"https://127.0.0.1:{p}{path}",
        f"http://localhost:{sim_port}{path}",                            # same port, another host name
        f"http://[::1]:{sim_port}{path}",
        f"http://2130706433:{sim_port}{path}",
        f"https://127.0.0.1:{sim_port}{path}",                           # another scheme
        f"https://management.azure.com{path}",
        f"https://evil.example{path}",
        f"http://user@127.0.0.1:{sim_port}{path}",                       # userinfo
        f"http://127.0.0.1:{sim_port}@127.0.0.1:{p}{path}",
        f"http://127.0.0.1:{sim_port}.evil.example{path}",
        f"//127.0.0.1:{p}{path}",
        f"file://{path}",
        f"http://127.0.0.1:{sim_port}{vault_ops}/../../../../../../subscriptions",  # relative segments
        f"http://127.0.0.1:{sim_port}{vault_ops.replace('/vaults/', '/vaults/x%2F..%2F')}",
        f"http://127.0.0.1:{sim_port}{VAULT}/backupJobs/{operation.job_id}",  # not an operation
        f"http://127.0.0.1:{sim_port}{VAULT}/backupOperations/not-a-guid",
        f"http://127.0.0.1:{sim_port}{VAULT.replace('backup-rg', 'rg?x=')}/backupOperations/{operation.operation_id}",
        f"http://127.0.0.1:{sim_port}/subscriptions/{operation.operation_id}",
    ]
    for url in hostile:
        acceptance = tracker.accept_message(json.dumps({"operationUrl": url}))
        assert acceptance.rejected is not None, f"accepted {url!r}"
        assert "operationUrl" in acceptance.rejected, (url, acceptance.rejected)
    off_endpoint = tracker.accept_message(json.dumps({"operationUrl": hostile[0]})).rejected
    assert off_endpoint is not None and "ARM_ENDPOINT" in off_endpoint

    accepted = tracker.accept_message(json.dumps({"operationUrl": good, "correlationId": "followed"}))
    assert accepted.rejected is None
    assert run_host(until_idle=True, timeout=60, for_tracker=tracker).join() == 0

    events = results(tracker)
    assert [(e["data"]["jobId"], e["data"]["correlationId"]) for e in events] == [(operation.job_id, "followed")]
    assert trap.connections == 0 and trap.requests == []
    assert arm_requests, "the operation was never followed"
    api = tracker.settings.api_versions["JOBS_ARM_API_VERSION"]
    problems = [(m, t, why) for m, t in arm_requests if (why := arm_target_problem(m, t, api))]
    assert problems == []
    stats = simulator.stats()
    assert stats["unauthorized"] == 0 and stats["by_kind"]["other"] == 0, stats
