"""``python -m jobs`` as a user runs it: track, run --until-idle, list, status, and a wrong setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from devtools.simulator import JobScript
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
