"""``python -m jobs wait`` against ``python -m jobs run --http-port``, both as a user starts them: a completed job
exits 0 and a failed one 1, each printing its event on stdout and one line on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import requests

from devtools.simulator import JobScript
from tests.conftest import VAULT, free_ports, wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_wait_exits_0_for_a_completed_job_and_1_for_a_failed_one_printing_each_event(simulator, env):
    [port] = free_ports(1)
    completed = simulator.add_job(VAULT, JobScript(final_status="Completed", duration=1))
    failed = simulator.add_job(VAULT, JobScript(final_status="Failed", duration=1))
    run = subprocess.Popen([sys.executable, "-m", "jobs", "run", "--http-port", str(port), "--timeout", "60"],
                           cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        api = f"http://127.0.0.1:{port}/api"

        def up() -> bool:
            try:
                return requests.get(api + "/health", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        assert wait_until(up, 20), "the HTTP API did not come up"
        # The wait needs no storage setting: only the API (here through JOBS_API_URL for one, --api for the other).
        client_env = {k: v for k, v in os.environ.items() if k != "AzureWebJobsStorage"}
        waits = {
            completed: subprocess.Popen([sys.executable, "-m", "jobs", "wait", f"{VAULT}/backupJobs/{completed}",
                                         "--timeout", "60"], cwd=ROOT, env={**client_env, "JOBS_API_URL": api},
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
            failed: subprocess.Popen([sys.executable, "-m", "jobs", "wait", "--api", api, "--vault-id", VAULT,
                                      "--job-id", failed, "--timeout", "60"], cwd=ROOT, env=client_env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
        }
        outputs = {job: process.communicate(timeout=90) for job, process in waits.items()}
    finally:
        run.terminate()
        run.communicate(timeout=30)
    codes = {job: waits[job].returncode for job in waits}
    assert codes == {completed: 0, failed: 1}, outputs
    for job, kind in ((completed, "BackupJob.Completed"), (failed, "BackupJob.Failed")):
        stdout, stderr = outputs[job]
        event = json.loads(stdout)
        assert event["type"] == kind and event["data"]["jobId"] == job
        assert stderr.count("\n") == 1 and stderr.startswith(f"{kind}: job {job}")  # one line; piped: no progress
    assert "VM Agent" in outputs[failed][1] or outputs[failed][1].rstrip().endswith("(exit 1)")
