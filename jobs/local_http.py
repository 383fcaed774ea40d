"""The HTTP API on this machine: ``python -m jobs run --http-port N`` serves ``jobs.http_api`` on loopback.

A standard-library ``ThreadingHTTPServer`` on 127.0.0.1 turns each request into an ``ApiRequest`` and writes the
``ApiResponse`` back: the same handlers the Functions HTTP triggers call, under the same ``/api`` prefix, so a
local user, a test or a Logic App pointed at a tunnel calls it as it would call the Function App. There are no
function keys on this machine (as with ``func start``): it only listens on loopback.

Access log lines show the method, the path without its query (a status URL's ``sig`` and a ``callbackUrl`` are
secrets) and the status.

What the standard library leaves to us, answered as the Functions host (Kestrel) would: a request line it cannot
parse is a ``400`` problem+json and the connection is closed; a body sent ``Transfer-Encoding: chunked`` is read
(a client that works against the Function App, such as an HttpClient streaming its content, works here too), within
the same 256 KiB as a ``Content-Length`` body; a malformed chunk, or ``Content-Length`` beside
``Transfer-Encoding`` (the request-smuggling pair), is a ``400``, any other transfer coding a ``501``. Each of these
closes the connection, so nothing left of the body is read as a request.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qsl, urlsplit

from jobs.http_api import PROBLEM_BASE, ApiRequest, ApiResponse, HttpApi

__all__ = ["MAX_BODY_BYTES", "LocalHttpServer"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024


class _BadBody(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


_REFUSALS = {413: ("too-large", "Content too large"), 500: ("internal", "Internal error"),
             501: ("not-implemented", "Not implemented")}


def _problem(status: int, detail: str) -> ApiResponse:
    kind, title = _REFUSALS.get(status, ("bad-request", "Bad request"))
    body = {"type": PROBLEM_BASE + kind, "title": title, "status": status, "detail": detail}
    return ApiResponse(status, {"Content-Type": "application/problem+json"}, json.dumps(body).encode("utf-8"))


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
        try:
            body = self._body()
        except _BadBody as bad:
            self._write(_problem(bad.status, bad.detail), close=True)
            return
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
            response = _problem(500, "the tracker failed on this request; the log has the details")
        self._write(response)

    def _body(self) -> bytes:
        """The request's body: ``Content-Length`` bytes, or its chunks; ``_BadBody`` for one that cannot be read."""
        coding = self.headers.get("Transfer-Encoding")
        length = self.headers.get("Content-Length")
        if coding is not None:
            if length is not None:
                raise _BadBody(400, "a request may not carry both Content-Length and Transfer-Encoding")
            if coding.strip().lower() != "chunked":
                raise _BadBody(501, f"Transfer-Encoding {coding.strip()!r} is not supported: send chunked, or a "
                                    "Content-Length")
            return self._chunks()
        size = 0 if length is None else int(length) if length.strip().isdigit() else -1
        if size < 0:
            raise _BadBody(400, f"Content-Length {length!r} is not a number of bytes")
        if size > MAX_BODY_BYTES:
            raise _BadBody(413, f"the body must be at most {MAX_BODY_BYTES} bytes")
        return self.rfile.read(size) if size else b""

    def _chunks(self) -> bytes:
        """A chunked body (RFC 9112, section 7.1), extensions and trailers read and ignored."""
        body = bytearray()
        while True:
            line = self.rfile.readline(1024)
            size_text = line.split(b";", 1)[0].strip()
            if not line.endswith(b"\n") or not size_text or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
                raise _BadBody(400, "the chunked body is malformed (a chunk size line)")
            size = int(size_text, 16)
            if len(body) + size > MAX_BODY_BYTES:
                raise _BadBody(413, f"the body must be at most {MAX_BODY_BYTES} bytes")
            if size == 0:
                break
            chunk = self.rfile.read(size)
            if len(chunk) != size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise _BadBody(400, "the chunked body is malformed (a chunk's data)")
            body += chunk
        for _ in range(100):  # trailer fields, up to the empty line
            trailer = self.rfile.readline(8192)
            if trailer in (b"\r\n", b"\n"):
                return bytes(body)
            if not trailer.endswith(b"\n"):
                break
        raise _BadBody(400, "the chunked body is malformed (its trailer)")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The server's own refusals (a request line or headers it cannot parse): problem+json, then close."""
        if self.request_version == "HTTP/0.9":  # a line it could not parse: answer as HTTP/1.1 all the same
            self.request_version = self.protocol_version
        self._write(_problem(code, message or "the request cannot be parsed"), close=True)

    def _write(self, response: ApiResponse, close: bool = False) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if getattr(self, "command", None) != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        command, path = getattr(self, "command", None), getattr(self, "path", None)
        if command is None or path is None:  # a request line that could not be parsed: nothing of it is logged
            log.info("(a request that could not be parsed) %s", code)
            return
        log.info("%s %s %s", command, urlsplit(path).path, code)

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
