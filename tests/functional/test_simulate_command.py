"""``python -m jobs simulate --port 8765``, exactly as the README writes it (on a free port instead of 8765), starts
the simulator, answers, and stops on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import requests

from tests.conftest import free_ports, wait_until

ROOT = Path(__file__).resolve().parents[2]


def _health(base: str) -> bool:
    try:
        return requests.get(f"{base}/_simulator/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_simulate_with_only_a_port_serves_until_interrupted() -> None:
    (port,) = free_ports(1)
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-m", "jobs", "simulate", "--port", str(port)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(process.stdout or []), daemon=True)
    reader.start()
    try:
        assert wait_until(lambda: _health(base) or process.poll() is not None, 60)
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert requests.get(f"{base}/_simulator/stats", timeout=5).status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    reader.join(timeout=5)
    text = "".join(output)
    assert f"listening on {base}" in text and "Ctrl-C to stop." in text
    assert "backupJobs/" not in text  # no demo jobs unless asked for
    assert not _health(base)  # the port is released
