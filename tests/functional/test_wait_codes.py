"""``jobs.wait`` against the real HTTP API on loopback (``LocalHttpServer`` over a tracker run by ``LocalHost``, the
simulator as Azure): each outcome's own exit code, ``Retry-After`` honoured, the wait's own timeout, a refused body
and an unreachable API. ``tests/e2e/test_wait.py`` runs the command itself."""

from __future__ import annotations

import io
import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devtools.simulator import JobScript
from jobs.cli import main
from jobs.http_api import HttpApi
from jobs.local_http import LocalHttpServer
from jobs.wait import (
    API_UNREACHABLE,
    BAD_REQUEST,
    EXIT_CODES,
    WAIT_TIMEOUT,
    Waiter,
    WaitOutcome,
    api_base,
    exit_code,
    intake_body,
)
from tests.conftest import VAULT, free_ports

SUBSCRIPTION = VAULT.split("/")[2]


@pytest.fixture
def api(make_tracker, run_host) -> Iterator[str]:
    tracker = make_tracker(JOBS_NOT_FOUND_GRACE_SECONDS="0")
    run_host(for_tracker=tracker)
    with LocalHttpServer(HttpApi(lambda: tracker)) as server:
        yield server.url + "/api"


class Recorder:
    """A session that keeps each answer's Retry-After, and a sleep that keeps what it was asked: the wait must
    sleep exactly what the API said."""

    def __init__(self) -> None:
        self.session = requests.Session()
        self.retry_after: list[float] = []
        self.slept: list[float] = []
        self.elapsed = 0.0
        self.session.hooks["response"].append(self._answered)

    def _answered(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        if "Retry-After" in response.headers:
            self.retry_after.append(float(response.headers["Retry-After"]))

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        time.sleep(seconds)


def _wait_all(api: str, bodies: dict[str, dict[str, object]],
              timeouts: dict[str, float]) -> dict[str, tuple[WaitOutcome, Recorder]]:
    """Every wait at once, each in its own thread (the jobs run side by side)."""
    out: dict[str, tuple[WaitOutcome, Recorder]] = {}

    def one(name: str, body: dict[str, object]) -> None:
        recorder = Recorder()
        waiter = Waiter(api, None, session=recorder.session, sleep=recorder.sleep, timeout=timeouts.get(name, 60))
        started = time.monotonic()
        outcome = waiter.wait(body)
        recorder.elapsed = time.monotonic() - started
        out[name] = (outcome, recorder)

    threads = [threading.Thread(target=one, args=item) for item in bodies.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    return out


def test_each_outcome_has_its_own_exit_code_and_retry_after_is_honoured(simulator, api):
    def job(status: str, duration: float = 1) -> dict[str, object]:
        return {"vaultId": VAULT, "jobId": simulator.add_job(VAULT, JobScript(final_status=status, duration=duration))}

    operation = simulator.trigger_backup(VAULT, operation_delay=0.5, operation_outcome="Failed")
    bodies = {
        "warnings": job("CompletedWithWarnings"),
        "cancelled": job("Cancelled"),
        "not found": {"vaultId": VAULT, "jobId": "0f6b7e35-5a4c-4a53-9e8e-3c1f1b6a2d11"},  # Azure never shows it
        "refused operation": {"operationUrl": operation.azure_async_operation},
        "bad body": {"vaultId": VAULT, "jobId": "not-a-guid"},
        "own timeout": job("Completed", duration=120),
    }
    results = _wait_all(api, bodies, {"own timeout": 4})
    codes = {name: outcome.code for name, (outcome, _) in results.items()}
    assert codes == {"warnings": 3, "cancelled": 4, "not found": 6, "refused operation": 7, "bad body": BAD_REQUEST,
                     "own timeout": WAIT_TIMEOUT}, {n: (o.line, r.slept) for n, (o, r) in results.items()}
    for name, kind in (("warnings", "BackupJob.CompletedWithWarnings"), ("cancelled", "BackupJob.Cancelled"),
                       ("not found", "BackupJob.NotFound"), ("refused operation", "BackupJob.OperationFailed")):
        outcome, recorder = results[name]
        assert outcome.events["type"] == kind and outcome.line.startswith(f"{kind}: ")
        # Each sleep is the Retry-After of the answer before it (POST's, then each 202's).
        assert recorder.slept and recorder.slept == recorder.retry_after[:len(recorder.slept)], name
    assert results["bad body"][0].events is None and "jobId" in results["bad body"][0].line
    timed_out, recorder = results["own timeout"]
    assert timed_out.events is None and "still running after --timeout 4 s" in timed_out.line
    assert 4 <= recorder.elapsed <= 6  # waited its whole timeout, hardly more
    assert recorder.slept[-1] <= recorder.retry_after[len(recorder.slept) - 1]  # never past a Retry-After


def test_an_unreachable_api_exits_9_after_retry_seconds():
    [port] = free_ports(1)
    recorder = Recorder()
    waiter = Waiter(f"http://127.0.0.1:{port}", "key", retry_seconds=1.5, session=recorder.session,
                    sleep=recorder.sleep)
    started = time.monotonic()
    outcome = waiter.wait({"jobResourceId": f"{VAULT}/backupJobs/x"})
    assert outcome.code == API_UNREACHABLE and outcome.line.startswith("the API is unreachable: cannot reach")
    assert 1.5 <= time.monotonic() - started < 10 and len(recorder.slept) >= 1  # retried, then gave up


def test_exit_codes_are_distinct_and_the_worst_of_several_events_wins():
    assert len(set(EXIT_CODES.values()) | {BAD_REQUEST, WAIT_TIMEOUT, API_UNREACHABLE}) == len(EXIT_CODES) + 3
    assert EXIT_CODES["BackupJob.Completed"] == 0 and 0 not in {BAD_REQUEST, WAIT_TIMEOUT, API_UNREACHABLE}
    assert exit_code({"type": "BackupJob.TimedOut"}) == 5
    assert exit_code({"type": "BackupJob.TrackingFailed"}) == 10
    assert exit_code([{"type": "BackupJob.Completed"}, {"type": "BackupJob.Failed"}]) == 1
    assert exit_code([{"type": "BackupJob.Completed"}, {"type": "BackupJob.CompletedWithWarnings"}]) == 3
    assert exit_code({"not": "an event"}) == API_UNREACHABLE


def test_the_targets_and_the_api_url():
    assert intake_body("https://management.azure.com/x/operationResults/1", None, None) == {
        "operationUrl": "https://management.azure.com/x/operationResults/1"}
    assert intake_body(f"{VAULT}/backupJobs/1", None, None, "c") == {"jobResourceId": f"{VAULT}/backupJobs/1",
                                                                      "correlationId": "c"}
    assert intake_body(None, VAULT, "1") == {"vaultId": VAULT, "jobId": "1"}
    assert api_base("https://app.azurewebsites.net/") == "https://app.azurewebsites.net/api"
    assert api_base("https://app.azurewebsites.net/api") == "https://app.azurewebsites.net/api"
    assert api_base("http://127.0.0.1:7071/api") == "http://127.0.0.1:7071/api"
    for wrong in ("http://app.azurewebsites.net/api", "app.azurewebsites.net", "https://x/api?code=1"):
        with pytest.raises(Exception, match="--api"):
            api_base(wrong)
    with pytest.raises(Exception, match="--vault-id and --job-id"):
        intake_body(f"{VAULT}/backupJobs/1", VAULT, None)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_sees_one_progress_line_rewritten_in_place(simulator, api, monkeypatch, capsys):
    job = simulator.add_job(VAULT, JobScript(final_status="Completed", duration=1.5))
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["wait", "--api", api, "--vault-id", VAULT, "--job-id", job, "--timeout", "60"]) == 0
    shown = terminal.getvalue()
    assert "\r\x1b[Kwaiting for " in shown  # rewritten in place
    last = shown.rsplit("\r\x1b[K", 1)[1]  # the progress line cleared, then the one line of the end
    assert last.startswith(f"BackupJob.Completed: job {job}") and last.endswith("(exit 0)\n")
    assert shown.count("\n") == 1
    assert json.loads(capsys.readouterr().out)["data"]["jobId"] == job


def test_the_documented_exit_codes_are_the_codes():
    text = (Path(__file__).resolve().parents[2] / "docs" / "reference.md").read_text(encoding="utf-8")
    table = text.split("## Waiting from a script", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| (\d+) \| (.+) \|$", table, re.M))
    for kind, code in EXIT_CODES.items():
        assert rows[str(code)].startswith(f"`{kind}`"), (kind, code)
    assert "--timeout" in rows[str(WAIT_TIMEOUT)] and "unreachable" in rows[str(API_UNREACHABLE)]
    assert "bad arguments" in rows[str(BAD_REQUEST)]
    assert sorted(map(int, rows)) == sorted({*EXIT_CODES.values(), BAD_REQUEST, WAIT_TIMEOUT, API_UNREACHABLE, 130})
