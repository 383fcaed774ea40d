"""The HTTP API on this machine: ``python -m jobs run --http-port N`` serves ``jobs.http_api`` on loopback.

A standard-library ``ThreadingHTTPServer`` on 127.0.0.1 turns each request into an ``ApiRequest`` and writes the
``ApiResponse`` back: the same handlers the Functions HTTP triggers call, under the same ``/api`` prefix, so a
local user, a test or a Logic App pointed at a tunnel calls it as it would call the Function App. There are no
function keys on this machine (as with ``func start``): it only listens on loopback.

Access log lines show the method, the path without its query (a status URL's ``sig`` and a ``callbackUrl`` are
secrets) and the status.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qsl, urlsplit

from jobs.http_api import ApiRequest, ApiResponse, HttpApi

__all__ = ["MAX_BODY_BYTES", "LocalHttpServer"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, address: tuple[str, int], api: HttpApi) -> None:
        super().__init__(address, _Handler)
        self.api = api


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 30

    def _serve(self) -> None:
        length = self.headers.get("Content-Length")
        try:
            size = int(length) if length else 0
        except ValueError:
            size = -1
        if size < 0 or size > MAX_BODY_BYTES:
            self._write(ApiResponse(413 if size > 0 else 400, {"Content-Type": "text/plain"},
                                    b"the body must have a Content-Length of at most 262144 bytes\n"), close=True)
            return
        body = self.rfile.read(size) if size else b""
        parts = urlsplit(self.path)
        host = self.headers.get("Host") or f"{self.server.server_address[0]}:{self.server.server_address[1]}"
        request = ApiRequest(
            method=self.command,
            path=parts.path,
            url=f"http://{host}{self.path}",
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        try:
            response = self.server.api.handle(request)
        except Exception:
            log.exception("%s %s failed", self.command, parts.path)
            response = ApiResponse(500, {"Content-Type": "application/problem+json"},
                                   b'{"type":"about:blank","title":"Internal Server Error","status":500}')
        self._write(response)

    def _write(self, response: ApiResponse, close: bool = False) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.info("%s %s %s", self.command, urlsplit(self.path).path, code)

    def log_message(self, format: str, *args: object) -> None:  # errors of the server itself, without the URL
        log.debug("http server: %s", format % args if "%" in format else format)


class LocalHttpServer:
    """Serves ``api`` on ``host:port`` (loopback) in a background thread until ``stop``."""

    def __init__(self, api: HttpApi, port: int = 0, host: str = "127.0.0.1") -> None:
        self._server = _Server((host, port), api)  # raises OSError when the port is taken
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the API is under ``/api``."""
        return f"http://{self._server.server_address[0]}:{self.port}"

    def start(self) -> LocalHttpServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="jobs-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> LocalHttpServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
