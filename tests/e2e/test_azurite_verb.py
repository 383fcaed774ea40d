"""``python -m jobs azurite`` (``make azurite``): local storage that the pinned SDKs can use, in the foreground."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueClient

from devtools.azurite import DEFAULT_PORTS, connection_string, port_is_free
from tests.conftest import free_ports, wait_until

ROOT = Path(__file__).resolve().parents[2]




def _start(*args: str) -> tuple[subprocess.Popen[str], list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "jobs", "azurite", *args], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    return process, lines




def _stop_within(process: subprocess.Popen[str], seconds: float) -> int | None:
    process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    try:
        code = process.wait(seconds)
    except subprocess.TimeoutExpired:
        return None
    assert time.monotonic() - started <= seconds
    return code


def _serves_the_pinned_sdks(ports: dict[str, int]) -> None:
    text = connection_string(ports)
    name = "v" + uuid.uuid4().hex[:10]
    QueueClient.from_connection_string(text, name, retry_total=0).create_queue()
    QueueClient.from_connection_string(text, name, retry_total=0).send_message("hello")
    TableServiceClient.from_connection_string(text, retry_total=0).create_table_if_not_exists(name)


def test_the_azurite_verb_serves_the_pinned_sdks_and_stops_on_sigterm():
    blob, queue, table = free_ports(3)
    process, lines = _start("--blob-port", str(blob), "--queue-port", str(queue), "--table-port", str(table))
    try:
        assert wait_until(lambda: lines or process.poll() is not None, 60), "no line from python -m jobs azurite"
        line = lines[0]
        assert f"http://127.0.0.1:{queue}" in line or f":{queue} (queue)" in line, line
        assert "AzureWebJobsStorage=" in line and f"QueueEndpoint=http://127.0.0.1:{queue}" in line, line
        _serves_the_pinned_sdks({"blob": blob, "queue": queue, "table": table})
        assert _stop_within(process, 10) is not None, "still running 10 s after SIGTERM"
        assert wait_until(lambda: port_is_free(queue) and port_is_free(table), 10), "Azurite left running"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_the_azurite_verb_on_the_default_ports_says_use_development_storage():
    if not all(port_is_free(port) for port in DEFAULT_PORTS.values()):
        import pytest

        pytest.skip("ports 10000-10002 are in use on this machine")
    process, lines = _start()
    try:
        assert wait_until(lambda: lines or process.poll() is not None, 60)
        assert "AzureWebJobsStorage=UseDevelopmentStorage=true" in lines[0], lines
        _serves_the_pinned_sdks(DEFAULT_PORTS)
        assert _stop_within(process, 10) is not None, "still running 10 s after SIGTERM"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_a_port_in_use_is_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        blob, table = free_ports(2)
        ran = subprocess.run(
            [sys.executable, "-m", "jobs", "azurite", "--blob-port", str(blob), "--queue-port", str(port),
             "--table-port", str(table)], cwd=ROOT, capture_output=True, text=True, timeout=60,
        )
    assert ran.returncode == 2
    assert ran.stderr.strip().count("\n") == 0 and "Traceback" not in ran.stderr
    assert re.search(rf"port {port} .*already in use", ran.stderr), ran.stderr


def test_make_azurite_calls_the_verb():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^azurite:.*\n\t\$\(PY\) -m jobs azurite$", makefile, re.MULTILINE)
