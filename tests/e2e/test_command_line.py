"""``python -m jobs`` as a user runs it: track, run --until-idle, list, status, and a wrong setting."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from devtools.simulator import DEMO_VAULT_ID, JobScript
from tests.conftest import VAULT, results

ROOT = Path(__file__).resolve().parents[2]


def _jobs(env: dict[str, str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobs", *args], cwd=ROOT, env={**os.environ, **env}, capture_output=True,
        text=True, timeout=timeout,
    )


def test_track_run_until_idle_list_and_status(simulator, env, tracker):
    job_id = simulator.add_job(VAULT, JobScript(final_status="CompletedWithWarnings", duration=1))
    tracked = _jobs(env, "track", f"{VAULT}/backupJobs/{job_id}", "--correlation-id", "cli")
    assert tracked.returncode == 0, tracked.stderr
    tracking_id = tracked.stdout.split("tracking id:")[1].strip()

    ran = _jobs(env, "run", "--until-idle", "--timeout", "60")
    assert ran.returncode == 0, ran.stderr
    [event] = results(tracker)
    assert event["type"] == "BackupJob.CompletedWithWarnings"
    assert event["data"]["correlationId"] == "cli"

    ended = _jobs(env, "list", "--state", "ended")
    assert tracking_id in ended.stdout and "CompletedWithWarnings" in ended.stdout
    assert tracking_id not in _jobs(env, "list", "--state", "running").stdout
    status = _jobs(env, "status", job_id)
    assert status.returncode == 0, status.stderr
    assert tracking_id in status.stdout and '"type": "BackupJob.CompletedWithWarnings"' in status.stdout


def test_run_until_idle_exits_non_zero_at_its_timeout(simulator, env):
    job_id = simulator.add_job(VAULT, JobScript(duration=3600))
    assert _jobs(env, "track", "--vault-id", VAULT, "--job-id", job_id).returncode == 0
    ran = _jobs(env, "run", "--until-idle", "--timeout", "3")
    assert ran.returncode == 1


def test_a_wrong_setting_stops_start_up_with_one_line_naming_it(env):
    ran = _jobs({**env, "JOBS_POLL_SECONDS": "often"}, "run", "--until-idle", "--timeout", "5")
    assert ran.returncode == 2
    assert ran.stderr.strip().count("\n") == 0
    assert "JOBS_POLL_SECONDS" in ran.stderr


def test_track_refuses_a_bad_id_before_anything_is_queued(env):
    tracked = _jobs(env, "track", "/subscriptions/not-a-guid/resourceGroups/rg")
    assert tracked.returncode == 2
    assert "jobResourceId" in tracked.stderr


# -- a pleasant command line (issue 9, point 6) ------------------------------------------------------------------


def _one_clean_line(completed: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in completed.stderr, completed.stderr
    assert completed.stderr.strip().count("\n") == 0, completed.stderr
    return completed.stderr.strip()


def test_list_and_status_on_fresh_storage_say_there_is_nothing_yet(env):
    listed = _jobs(env, "list")
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    assert "no jobs yet" in listed.stdout
    status = _jobs(env, "status", "00000000-0000-0000-0000-000000000001")
    assert status.returncode == 1
    assert "nothing tracked yet" in _one_clean_line(status)


def test_list_says_how_many_messages_wait_for_the_runner(simulator, env):
    job_id = simulator.add_job(VAULT, JobScript(duration=60))
    for correlation in ("a", "b"):
        assert _jobs(env, "track", f"{VAULT}/backupJobs/{job_id}", "--correlation-id", correlation).returncode == 0
    listed = _jobs(env, "list")
    assert listed.returncode == 0, listed.stderr
    assert "no jobs yet" in listed.stdout
    assert f"2 messages wait on the intake queue {env['JOBS_INTAKE_QUEUE']}" in listed.stdout


def test_run_prints_a_banner_and_a_heartbeat(env):
    ran = _jobs(env, "run", "--until-idle", "--timeout", "60")
    assert ran.returncode == 0, ran.stderr
    banner = ran.stderr
    assert "Ctrl-C to stop" in banner
    assert "account devstoreaccount1" in banner and "queue http://127.0.0.1:" in banner
    assert "AccountKey" not in banner and "Eby8vdM02x" not in banner
    assert env["ARM_ENDPOINT"] in banner
    assert env["JOBS_INTAKE_QUEUE"] in banner and env["JOBS_RESULTS_QUEUE"] in banner
    assert "every 1 s" in banner
    assert "heartbeat: running jobs 0, due 0, deliveries waiting 0, failing subscriptions 0" in banner


def test_list_fits_120_columns_shows_zones_and_operations_that_named_their_job(simulator, env, tracker):
    job_id = simulator.add_job(VAULT, JobScript(final_status="Failed", duration=1))
    assert _jobs(env, "track", f"{VAULT}/backupJobs/{job_id}").returncode == 0
    operation = simulator.trigger_backup(VAULT, JobScript(duration=1), operation_delay=0.5)
    tracker._storage.queue(env["JOBS_INTAKE_QUEUE"]).send_message(
        json.dumps({"operationUrl": operation.azure_async_operation, "correlationId": "op"}))
    assert _jobs(env, "run", "--until-idle", "--timeout", "60").returncode == 0

    listed = _jobs(env, "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert max(len(line) for line in lines) <= 120, listed.stdout
    assert f"-> job {operation.job_id}" in listed.stdout
    assert re.search(r"\d\d-\d\d \d\d:\d\dZ", listed.stdout), listed.stdout
    for wanted in (operation.operation_id, operation.azure_async_operation):
        status = _jobs(env, "status", wanted)
        assert status.returncode == 0, status.stderr
        assert f"-> job {operation.job_id}" in status.stdout and "UTC" in status.stdout


def test_a_reader_that_leaves_early_gets_no_traceback(env):
    piped = subprocess.run(
        f"{shlex.quote(sys.executable)} -m jobs list --help | true; "
        f"{shlex.quote(sys.executable)} -m jobs list | true",
        shell=True, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=90,
    )
    assert "Traceback" not in piped.stderr and "BrokenPipe" not in piped.stderr, piped.stderr


def test_every_option_has_help_with_its_default_and_the_help_names_where_settings_come_from():
    from jobs.cli import _parser

    def check(parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    check(sub)
            elif not isinstance(action, argparse._HelpAction):
                assert action.help, f"{parser.prog} {action.dest} has no help"
        assert parser.formatter_class is argparse.ArgumentDefaultsHelpFormatter, parser.prog

    check(_parser())
    shown = _jobs({}, "run", "--help")
    assert "local.settings.json" in shown.stdout and "environment" in shown.stdout
    assert "(default: 8765)" in _jobs({}, "simulate", "--help").stdout


def test_a_bad_argument_is_one_line():
    wrong = _jobs({}, "list", "--state", "sideways")
    assert wrong.returncode == 2
    assert "--state" in _one_clean_line(wrong) and "usage:" not in wrong.stderr


def test_simulate_prints_what_to_paste_and_add_job_makes_a_job():
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "jobs", "simulate", "--port", str(port), "--seed-demo-jobs"], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        lines: list[str] = []

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line.strip())

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(line.startswith("Ctrl-C") for line in lines):
            time.sleep(0.1)
        text = "\n".join(lines)
        base = f"http://127.0.0.1:{port}"
        assert f"vault: {DEMO_VAULT_ID}" in text
        assert len(re.findall(rf"job {re.escape(DEMO_VAULT_ID)}/backupJobs/[0-9a-f-]{{36}} .* ends \w+", text)) == 6
        assert f"ARM_ENDPOINT={base} JOBS_ARM_TOKEN=sim-token" in text
        assert re.search(rf"python -m jobs track {re.escape(DEMO_VAULT_ID)}/backupJobs/[0-9a-f-]{{36}}$", text,
                         re.MULTILINE), text

        added = _jobs({}, "simulate", "add-job", "--url", base, "--outcome", "Failed", "--duration", "30")
        assert added.returncode == 0, added.stderr
        resource_id = added.stdout.split("python -m jobs track ")[1].strip()
        answer = requests.get(f"{base}{resource_id}?api-version=2025-08-01",
                              headers={"Authorization": "Bearer sim-token"}, timeout=10)
        assert answer.status_code == 200 and answer.json()["properties"]["status"] == "InProgress"

        taken = _jobs({}, "simulate", "--port", str(port))
        assert taken.returncode == 2 and f"port {port}" in _one_clean_line(taken)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    gone = _jobs({}, "simulate", "add-job", "--url", base)
    assert gone.returncode == 2 and "cannot reach the simulator" in _one_clean_line(gone)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
