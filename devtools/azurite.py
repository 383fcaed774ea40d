"""Azurite, the storage emulator, started from ``node_modules`` on free loopback ports (for the demo and tests)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

from jobs.config import AZURITE_ACCOUNT_KEY

__all__ = ["Azurite", "AzuriteNotInstalled"]

_LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at http://127\.0\.0\.1:(\d+)")
_ROOT = Path(__file__).resolve().parent.parent


class AzuriteNotInstalled(RuntimeError):
    pass


class Azurite:
    """``with Azurite() as azurite: azurite.connection_string``: an in-memory Azurite on free ports."""

    def __init__(self, executable: str | None = None) -> None:
        self.executable = executable or _find_executable()
        self.ports: dict[str, int] = {}
        self._process: subprocess.Popen[str] | None = None
        self._output: list[str] = []

    def start(self, timeout: float = 30.0) -> None:
        self._process = subprocess.Popen(
            [self.executable, "--inMemoryPersistence", "--silent", "--skipApiVersionCheck", "--loose",
             "--blobPort", "0", "--queuePort", "0", "--tablePort", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        ready = threading.Event()
        threading.Thread(target=self._read, args=(ready,), daemon=True).start()
        if not ready.wait(timeout):
            self.stop()
            output = "".join(self._output)
            raise RuntimeError(f"Azurite did not start within {timeout:.0f} s:\n{output}")

    def _read(self, ready: threading.Event) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:  # keeps draining, so the pipe never fills
            if len(self._output) < 200:
                self._output.append(line)
            if match := _LISTENING.search(line):
                self.ports[match[1].lower()] = int(match[2])
                if len(self.ports) == 3:
                    ready.set()

    @property
    def connection_string(self) -> str:
        return (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={AZURITE_ACCOUNT_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.ports['blob']}/devstoreaccount1;"
            f"QueueEndpoint=http://127.0.0.1:{self.ports['queue']}/devstoreaccount1;"
            f"TableEndpoint=http://127.0.0.1:{self.ports['table']}/devstoreaccount1;"
        )

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()  # in memory: nothing to flush, so do not wait long for open connections
            try:
                self._process.wait(1)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process = None

    def __enter__(self) -> Azurite:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _find_executable() -> str:
    candidates = [os.environ.get("AZURITE_BIN"), str(_ROOT / "node_modules" / ".bin" / "azurite"),
                  shutil.which("azurite")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    raise AzuriteNotInstalled("Azurite is not installed: run `make setup` (npm ci installs it into node_modules)")


