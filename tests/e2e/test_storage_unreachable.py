"""Storage that cannot be reached: the command line says so in one line within seconds, and ``run`` rides out an
outage (one line when it starts, one when it ends), honours ``--timeout`` and SIGTERM, and loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from azure.data.tables import TableClient
from azure.storage.queue import QueueClient

from devtools.azurite import Azurite, connection_string
from devtools.simulator import JobScript
from jobs.storage import JobStore
from tests.conftest import SECRET, VAULT, free_ports, wait_until

ROOT = Path(__file__).resolve().parents[2]






class Runner:
    """``python -m jobs run`` as a subprocess, its stderr collected line by line."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jobs", "run", *args], cwd=ROOT, env={**os.environ, **env},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def count(self, text: str) -> int:
        return sum(text in line for line in list(self.lines))

    def terminate_within(self, seconds: float) -> int | None:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _exists(read: Callable[[], object]) -> bool:
    try:
        return read() is not None
    except Exception:
        return False


def _settings(storage: str, simulator, receiver) -> dict[str, str]:  # type: ignore[no-untyped-def]
    prefix = "o" + uuid.uuid4().hex[:10]
    return {
        "AzureWebJobsStorage": storage,
        "JOBS_INTAKE_QUEUE": f"{prefix}-jobs",
        "JOBS_RESULTS_QUEUE": f"{prefix}-results",
        "JOBS_TABLE": prefix,
        "JOBS_WEBHOOK_URLS": receiver.url,
        "JOBS_WEBHOOK_SECRET": SECRET,
        "JOBS_POLL_SECONDS": "1",
        "ARM_ENDPOINT": simulator.base_url,
        "JOBS_ARM_TOKEN": "sim-token",
        "JOBS_DELIVERY_FIRST_RETRY_SECONDS": "0.5",
        "JOBS_LOG_LEVEL": "INFO",
    }


def test_every_verb_fails_fast_in_one_line_naming_the_endpoint(simulator, receiver):
    queue_port, table_port = free_ports(2)  # bound and released: nothing listens there
    storage = connection_string({"blob": queue_port, "queue": queue_port, "table": table_port})
    env = {**os.environ, **_settings(storage, simulator, receiver)}
    verbs = {
        "track": ["track", f"{VAULT}/backupJobs/00000000-0000-0000-0000-000000000001"],
        "list": ["list"],
        "status": ["status", "00000000-0000-0000-0000-000000000001"],
        "run": ["run", "--timeout", "60"],
    }
    started = time.monotonic()
    processes = {
        verb: subprocess.Popen([sys.executable, "-m", "jobs", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        for verb, args in verbs.items()
    }
    try:
        for verb, process in processes.items():
            _out, err = process.communicate(timeout=40)
            elapsed = time.monotonic() - started
            assert elapsed < 20, f"{verb} took {elapsed:.0f} s"
            assert process.returncode not in (0, None), verb
            assert "Traceback" not in err, f"{verb}: {err}"
            assert err.strip().count("\n") == 0, f"{verb}: {err}"
            endpoint = f"http://127.0.0.1:{table_port}" if verb in ("list", "status") else \
                f"http://127.0.0.1:{queue_port}"
            assert "cannot reach the" in err and endpoint in err and "is Azurite running?" in err, f"{verb}: {err}"
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()


def test_run_rides_out_an_outage_and_delivers_after_it(simulator, receiver, tmp_path):
    ports = dict(zip(("blob", "queue", "table"), free_ports(3), strict=True))
    azurite = Azurite(ports=ports, location=str(tmp_path / "azurite"))
    (tmp_path / "azurite").mkdir()
    azurite.start()
    runner = None
    try:
        env = _settings(azurite.connection_string, simulator, receiver)
        job_id = simulator.add_job(VAULT, JobScript(final_status="Failed", duration=6))
        runner = Runner(env)
        tracked = subprocess.run(
            [sys.executable, "-m", "jobs", "track", f"{VAULT}/backupJobs/{job_id}", "--correlation-id", "outage"],
            cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
        )
        assert tracked.returncode == 0, tracked.stderr
        store = JobStore(TableClient.from_connection_string(azurite.connection_string, env["JOBS_TABLE"]))
        tracking_id = tracked.stdout.split("tracking id:")[1].strip()
        assert wait_until(lambda: _exists(lambda: store.get(tracking_id)), 60), runner.log  # the runner has read it

        azurite.stop()
        assert wait_until(lambda: runner.count("storage unreachable") >= 1, 30), runner.log
        down_since = time.monotonic()
        # the outage lasts 8 s and until the job has ended at Azure: the runner tries (and fails) many times
        assert wait_until(lambda: time.monotonic() - down_since > 8
                      and simulator.job_resource(VAULT, job_id)["properties"]["status"] == "Failed", 40)
        fails_seen = len(runner.lines)

        azurite.start()
        assert wait_until(lambda: runner.count("storage reachable again") >= 1, 60), runner.log
        assert wait_until(lambda: len(receiver.delivered()) >= 1, 60), runner.log
        [event] = [r.json() for r in receiver.delivered()][:1]
        assert event["type"] == "BackupJob.Failed" and event["data"]["correlationId"] == "outage"
        results = QueueClient.from_connection_string(azurite.connection_string, env["JOBS_RESULTS_QUEUE"])
        assert wait_until(lambda: (results.get_queue_properties().approximate_message_count or 0) >= 1, 30)
        [message] = list(results.receive_messages(max_messages=1))
        assert json.loads(message.content)["id"] == event["id"]

        assert runner.count("storage unreachable") == 1, runner.log
        assert "Traceback" not in runner.log, runner.log
        assert fails_seen < 40, runner.log  # a line per outage, not per failed call
        assert runner.process.poll() is None
        assert runner.terminate_within(10) == 0, runner.log
    finally:
        if runner:
            runner.kill()
        azurite.stop()


def test_sigterm_and_timeout_are_honoured_during_an_outage(simulator, receiver):
    azurite = Azurite()
    azurite.start()
    runners: list[Runner] = []
    try:
        env = _settings(azurite.connection_string, simulator, receiver)
        until_timeout = Runner(env, "--timeout", "15")
        started = time.monotonic()
        stays = Runner(env)
        runners += [until_timeout, stays]
        intake = QueueClient.from_connection_string(azurite.connection_string, env["JOBS_INTAKE_QUEUE"])
        table = TableClient.from_connection_string(azurite.connection_string, env["JOBS_TABLE"])
        # both runners are up: the queues and the table exist, and each has read its queues once
        assert wait_until(lambda: _exists(intake.get_queue_properties) and _exists(lambda: list(table.list_entities())),
                      60)
        # each runner has started its loop (set up, read its queues, sampled the heartbeat) before the outage
        assert wait_until(lambda: all(r.count("heartbeat:") for r in runners), 30), [r.log for r in runners]
        azurite.stop()
        wait_until(lambda: all(r.count("storage unreachable") for r in runners), 15)  # (asserted below)
        assert stays.terminate_within(10) is not None, f"SIGTERM ignored during an outage:\n{stays.log}"
        try:
            code = until_timeout.process.wait(max(1.0, started + 15 + 10 - time.monotonic()))
        except subprocess.TimeoutExpired:
            code = None
        assert code == 1, f"--timeout 15 not honoured during an outage:\n{until_timeout.log}"
        assert "timed out" in until_timeout.log
        for runner in runners:
            assert runner.count("storage unreachable") == 1, runner.log
            assert "Traceback" not in runner.log, runner.log
    finally:
        for runner in runners:
            runner.kill()
        azurite.stop()
