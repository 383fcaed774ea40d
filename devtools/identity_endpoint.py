"""A managed identity endpoint on loopback, speaking App Service's protocol, for tests and the fault drill.

On App Service and Functions, the platform sets ``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER``; ``azure-identity``'s
``ManagedIdentityCredential`` (and so ``DefaultAzureCredential``) then asks that URL for a token:
``GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=<resource>[&client_id=<AZURE_CLIENT_ID>]`` with the
header ``X-IDENTITY-HEADER: <IDENTITY_HEADER>``, and reads ``{"access_token", "expires_on", "resource",
"token_type"}`` (Microsoft Learn, "How to use managed identities for App Service and Azure Functions", REST
protocol). With both variables set the credential never falls back to the instance metadata address
(169.254.169.254): ``env()`` gives them, pointing here.

The endpoint can refuse (``refuse(status)``: an error answer, as when the identity is not assigned or the platform
endpoint fails) and answer again (``answer()``); ``client_ids`` limits which user-assigned identities it knows (a
wrong ``AZURE_CLIENT_ID`` is answered 400, as App Service does). Every request is recorded (``requests``).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["IdentityEndpoint", "TokenRequest"]

API_VERSION = "2019-08-01"


@dataclass(frozen=True)
class TokenRequest:
    """One token request as the endpoint read it, and the status it answered."""

    path: str
    query: dict[str, str]
    identity_header: str | None
    client: str  # the peer address
    answered: int


class IdentityEndpoint:
    """A real HTTP server on 127.0.0.1 that hands out ``token`` (valid ``lifetime`` seconds) unless refusing."""

    def __init__(self, token: str = "sim-token", *, lifetime: float = 3600.0,
                 client_ids: frozenset[str] | None = None) -> None:
        self.token = token
        self.lifetime = lifetime
        self.client_ids = client_ids
        self.header = secrets.token_hex(16)
        self._lock = threading.Lock()
        self._refusing: int | None = None
        self._requests: list[TokenRequest] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- running ---------------------------------------------------------------------------------------------------
    def start(self) -> IdentityEndpoint:
        self._thread = threading.Thread(target=self._server.serve_forever, name="identity-endpoint", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> IdentityEndpoint:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/msi/token"

    def env(self) -> dict[str, str]:
        """The variables App Service sets: with them, azure-identity asks this endpoint and nothing else."""
        return {"IDENTITY_ENDPOINT": self.url, "IDENTITY_HEADER": self.header}

    # -- behaviour -------------------------------------------------------------------------------------------------
    def refuse(self, status: int = 500) -> None:
        """Every token request is answered ``status`` with an error body, until ``answer()``."""
        with self._lock:
            self._refusing = status

    def answer(self) -> None:
        """Token requests are answered again."""
        with self._lock:
            self._refusing = None

    @property
    def requests(self) -> list[TokenRequest]:
        with self._lock:
            return list(self._requests)

    def _respond(self, path: str, query: dict[str, str], header: str | None, client: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            refusing = self._refusing
        status, body = 200, {}
        client_id = query.get("client_id")
        if header != self.header:
            status, body = 401, _error("invalid_request", "the X-IDENTITY-HEADER header is missing or wrong")
        elif query.get("api-version") != API_VERSION or not query.get("resource"):
            status, body = 400, _error("invalid_request", "api-version 2019-08-01 and resource are required")
        elif refusing is not None:
            status, body = refusing, _error("unavailable", f"the identity endpoint is refusing ({refusing})")
        elif client_id and self.client_ids is not None and client_id not in self.client_ids:
            status, body = 400, _error("invalid_request",
                                       f"Unable to load the proper Managed Identity: no identity {client_id}")
        else:
            body = {"access_token": self.token, "expires_on": str(int(time.time() + self.lifetime)),
                    "resource": query["resource"], "token_type": "Bearer", "client_id": client_id or "system"}
        with self._lock:
            self._requests.append(TokenRequest(path, query, header, client, status))
        return status, body


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": code, "error_description": message, "statusCode": 0, "message": message}


def _handler(endpoint: IdentityEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
            status, body = endpoint._respond(parts.path, query, self.headers.get("X-IDENTITY-HEADER"),
                                             self.client_address[0])
            data = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
