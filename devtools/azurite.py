"""Azurite, the storage emulator, started from ``node_modules``.

- ``Azurite()``: for the demo and tests, in memory on free loopback ports (``with Azurite() as a: ...``);
  ``Azurite(ports=..., location=...)`` pins the ports or keeps the data on disk, so it can be stopped and started
  again on the same ports with the same queues and table.
- ``serve()``: ``python -m jobs azurite`` (``make azurite``), in the foreground on the default ports 10000-10002,
  so ``AzureWebJobsStorage=UseDevelopmentStorage=true`` reaches it.

Both pass ``--skipApiVersionCheck``: the pinned storage SDKs send a newer API version than Azurite accepts, and a
plain ``npx azurite`` answers every call with "The API version ... is not supported".
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from jobs.config import AZURITE_ACCOUNT_KEY

__all__ = ["DEFAULT_PORTS", "Azurite", "AzuriteNotInstalled", "PortInUse", "serve"]

_LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at http://127\.0\.0\.1:(\d+)")
_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORTS = {"blob": 10000, "queue": 10001, "table": 10002}
FLAGS = ["--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry"]


class AzuriteNotInstalled(RuntimeError):
    pass


class PortInUse(RuntimeError):
    pass


class Azurite:
    """``with Azurite() as azurite: azurite.connection_string``: an Azurite on loopback.

    ``ports`` maps blob/queue/table to a port (0 or missing: a free one); ``location`` is a folder for the data
    (default: in memory, lost when it stops).
    """

    def __init__(
        self, executable: str | None = None, *, ports: dict[str, int] | None = None, location: str | None = None
    ) -> None:
        self.executable = executable or _find_executable()
        self.requested_ports = {service: (ports or {}).get(service, 0) for service in DEFAULT_PORTS}
        self.location = location
        self.ports: dict[str, int] = {}
        self._process: subprocess.Popen[str] | None = None
        self._output: list[str] = []

    def command(self) -> list[str]:
        storage = ["--location", self.location] if self.location else ["--inMemoryPersistence"]
        return [self.executable, *storage, *FLAGS,
                "--blobPort", str(self.requested_ports["blob"]), "--queuePort", str(self.requested_ports["queue"]),
                "--tablePort", str(self.requested_ports["table"])]

    def start(self, timeout: float = 30.0) -> None:
        busy = [str(port) for port in self.requested_ports.values() if port and not port_is_free(port)]
        if busy:
            raise PortInUse(
                f"port {', '.join(busy)} on 127.0.0.1 is already in use: is Azurite (or another emulator) already "
                "running? Stop it, or use it as is"
            )
        self.ports = {}
        self._output = []
        self._process = subprocess.Popen(
            self.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        ready = threading.Event()
        threading.Thread(target=self._read, args=(self._process, ready), daemon=True).start()
        while not ready.wait(0.1):
            timeout -= 0.1
            if timeout <= 0 or self._process.poll() is not None:
                exited = self._process.poll() is not None
                self.stop()
                output = "".join(self._output)
                why = "exited" if exited else "did not start within the time allowed"
                raise RuntimeError(f"Azurite {why}:\n{output}")

    def _read(self, process: subprocess.Popen[str], ready: threading.Event) -> None:
        assert process.stdout is not None
        for line in process.stdout:  # keeps draining, so the pipe never fills
            if len(self._output) < 200:
                self._output.append(line)
            if match := _LISTENING.search(line):
                self.ports[match[1].lower()] = int(match[2])
                if len(self.ports) == 3:
                    ready.set()

    @property
    def connection_string(self) -> str:
        return connection_string(self.ports)

    def wait(self) -> int:
        assert self._process is not None
        return self._process.wait()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process and process.poll() is None:
            process.terminate()
            # in memory there is nothing to flush, so do not wait long for open connections; on disk, let it save
            try:
                process.wait(10 if self.location else 1)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    def __enter__(self) -> Azurite:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def connection_string(ports: dict[str, int]) -> str:
    return (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={AZURITE_ACCOUNT_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{ports['blob']}/devstoreaccount1;"
        f"QueueEndpoint=http://127.0.0.1:{ports['queue']}/devstoreaccount1;"
        f"TableEndpoint=http://127.0.0.1:{ports['table']}/devstoreaccount1;"
    )


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a listener could bind ``port`` (connections in TIME_WAIT do not count, as for Node's listen)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def serve(
    blob_port: int = DEFAULT_PORTS["blob"],
    queue_port: int = DEFAULT_PORTS["queue"],
    table_port: int = DEFAULT_PORTS["table"],
    location: str | None = None,
) -> int:
    """``python -m jobs azurite``: Azurite in the foreground until Ctrl-C or SIGTERM; returns its exit code.

    Prints one line: where it listens and the ``AzureWebJobsStorage`` value that reaches it.
    """
    azurite = Azurite(ports={"blob": blob_port, "queue": queue_port, "table": table_port}, location=location)
    stopping = threading.Event()

    def stop(*_: object) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        azurite.start()
        ports = azurite.ports
        setting = ("UseDevelopmentStorage=true" if ports == DEFAULT_PORTS
                   else f'"{connection_string(ports)}"')
        kept = f"data in {location}" if location else "in memory: data is lost when it stops"
        print(
            f"Azurite listening on http://127.0.0.1:{ports['blob']} (blob), :{ports['queue']} (queue), "
            f":{ports['table']} (table), {kept}; set AzureWebJobsStorage={setting}. Ctrl-C to stop.",
            flush=True,
        )
        while not stopping.wait(0.5):
            if azurite._process is None or azurite._process.poll() is not None:
                output = "".join(azurite._output[-5:]).strip()
                print(f"error: Azurite exited{': ' + output if output else ''}", file=sys.stderr, flush=True)
                return 1
        return 0
    finally:
        azurite.stop()
        for sig, handler in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, handler)


def _find_executable() -> str:
    candidates = [os.environ.get("AZURITE_BIN"), str(_ROOT / "node_modules" / ".bin" / "azurite"),
                  shutil.which("azurite")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    raise AzuriteNotInstalled("Azurite is not installed: run `make setup` (npm ci installs it into node_modules)")
