"""The simulator served in this process (``BackupSimulator.in_process``, through the ARM transport's seam) answers
as it does over HTTP, on the clock it is given, faults included: one model of Azure for the tests, the drill and
the benchmark."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from devtools.simulator import BackupSimulator, FaultConfig, JobScript
from jobs.arm import ArmClient, ArmNotFound, ArmThrottled, ArmUnavailable, StaticToken
from jobs.arm.transport import HttpRequest

SUB = "11111111-2222-3333-4444-555555555555"
VAULT_ID = f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.RecoveryServices/vaults/vault-one"
JOB = "33333333-3333-4333-8333-333333333333"
LATER = "44444444-4444-4444-8444-444444444444"
API = {"api-version": "2025-08-01"}
WALL0 = datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)


class Clock:
    """A manual clock: ``now`` seconds; ``sleep`` moves it on (and remembers each wait)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _simulator(clock: Clock) -> BackupSimulator:
    sim = BackupSimulator(clock=clock, wall_clock=lambda: WALL0, sleep=clock.sleep, seed=7)
    sim.add_job(VAULT_ID, JobScript(final_status="Failed", duration=60, not_found_for=5, job_id=JOB))
    sim.add_job(VAULT_ID, JobScript(duration=30, job_id=LATER), starts_at=clock.now + 100)
    return sim


def _answers(send: Any, base: str, clock: Clock) -> list[tuple[int, Any]]:
    """Status and JSON body of the same requests at the same moments (request ids aside)."""
    out = []
    job = f"{base}{VAULT_ID}/backupJobs/{JOB}?api-version=2025-08-01"
    for at, url in ((1002, job), (1010, job), (1070, job), (1080, f"{base}{VAULT_ID}/backupJobs/{LATER}?api-version"
                    "=2025-08-01"), (1120, f"{base}{VAULT_ID}/backupJobs?api-version=2025-08-01")):
        clock.now = at
        status, body = send(url)
        payload = json.loads(body) if body else None
        if isinstance(payload, dict):
            payload.pop("nextLink", None)
        out.append((status, payload))
    return out


def test_in_process_answers_are_the_http_answers() -> None:
    http_clock, local_clock = Clock(), Clock()
    over_http, in_process = _simulator(http_clock), _simulator(local_clock)
    with over_http, requests.Session() as session:
        session.trust_env = False

        def over_the_wire(url: str) -> tuple[int, bytes]:
            answer = session.get(url, headers={"Authorization": "Bearer sim-token"}, timeout=10)
            return answer.status_code, answer.content

        by_http = _answers(over_the_wire, over_http.base_url, http_clock)
    transport = in_process.in_process()

    def in_this_process(url: str) -> tuple[int, bytes]:
        answer = transport.send(HttpRequest("GET", url, {"Authorization": "Bearer sim-token"}))
        return answer.status, answer.body

    by_handler = _answers(in_this_process, "http://127.0.0.1", local_clock)
    assert by_handler == by_http
    assert [status for status, _ in by_handler] == [404, 200, 200, 404, 200]
    assert by_handler[1][1]["properties"]["status"] == "InProgress"
    assert by_handler[2][1]["properties"]["status"] == "Failed"
    assert [item["name"] for item in by_handler[4][1]["value"]] == [LATER, JOB]  # the later job has started
    assert in_process.stats()["by_kind"] == over_http.stats()["by_kind"]


def _client(sim: BackupSimulator, clock: Clock) -> ArmClient:
    return ArmClient("http://127.0.0.1", StaticToken("sim-token"), http=sim.in_process(), clock=clock,
                     sleep=clock.sleep, backoff_seconds=0.5)


def test_faults_in_process_reach_the_client_as_over_http() -> None:
    clock = Clock()
    sim = _simulator(clock)
    client = _client(sim, clock)
    path = f"{VAULT_ID}/backupJobs/{JOB}"
    with pytest.raises(ArmNotFound):
        client.get_json(path, API, SUB)
    clock.now = 1010
    sim.set_faults(FaultConfig(rate_reset=1.0, only_on_cue=3))  # three resets: the client gives up
    with pytest.raises(ArmUnavailable) as reset:
        client.get_json(path, API, SUB)
    assert reset.value.code == "ConnectionError" and sim.stats()["faults"]["reset"] == 3
    sim.set_faults(FaultConfig(rate_truncated=1.0, rate_slow=1.0, slow_seconds=2.5, only_on_cue=1))
    before = len(clock.slept)
    assert client.get_json(path, API, SUB)["name"] == JOB  # a cut body is retried; the slow answer waited
    assert clock.slept[before] == 2.5 and sim.stats()["faults"] == {**sim.stats()["faults"], "truncated": 1}
    sim.set_faults(FaultConfig(throttle=True, bucket_size=2, refill_per_second=0.5))
    url = f"http://127.0.0.1{path}?api-version=2025-08-01"
    answers = [client.transport.get(url) for _ in range(3)]  # below the client's pacing: the bare transport
    assert [type(answer).__name__ for answer in answers] == ["dict", "dict", "Throttle"]
    assert answers[2].retry_after == 2  # the bucket is dry: ARM's 429 with the wait for one read
    with pytest.raises(ArmThrottled):  # and the client, hearing only one read left, holds its next one back
        client.get_json(path, API, SUB)
    assert client.requests_sent == sim.stats()["arm_requests"] == 9  # the one held back was never sent


def test_a_nextlink_names_the_in_process_endpoint() -> None:
    clock = Clock()
    sim = _simulator(clock)
    sim.page_size = 1
    clock.now = 1120
    client = _client(sim, clock)
    names = [item["name"] for item in client.iter_pages(f"{VAULT_ID}/backupJobs", API, SUB)]
    assert names == [LATER, JOB] and sim.stats()["list_pages"] == 2
