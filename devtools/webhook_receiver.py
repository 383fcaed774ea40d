"""A real local webhook receiver: the ``demo`` command prints results with it, tests use it as the subscriber.

It listens on loopback (http, or https with a certificate), accepts any method and path, records every request
with the status it answered, and checks Standard Webhooks signatures with the reference ``standardwebhooks``
library when it has the secret. It can be scripted to fail (``respond_with``), go down and come back on the same
port (``set_down``), hold requests (``set_hang``) and stream its answer slowly, the body or the headers
(``set_stream``), so delivery retries and timeouts can be tested against real sockets.
A held request whose client gave up (closed its connection) while it was held is recorded as not answered
(``answered`` 0, ``abandoned`` True): the client never saw the status, so it is no delivery.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from standardwebhooks import Webhook

__all__ = ["MAX_BODY_BYTES", "MAX_HANG_SECONDS", "ReceivedRequest", "WebhookReceiver", "make_self_signed_cert"]

MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_CONNECTIONS = 64
MAX_HANG_SECONDS = 600.0
SOCKET_TIMEOUT_SECONDS = 30.0


@dataclass
class ReceivedRequest:
    """One request the receiver read, with the status it answered (0 when it was released without an answer)."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    received_at: float
    verified: bool | None  # Standard Webhooks signature check; None when the receiver has no secret
    answered: int = 0
    abandoned: bool = False  # the client closed its connection while the request was held: no answer reached it
    streamed: int = 0  # bytes of a slow answer (set_stream) the client took before it closed, or all of them
    stream_done: bool = False  # the slow answer ended: all sent, or the client went away

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def _verify(secret: str | None, body: bytes, headers: dict[str, str]) -> bool | None:
    if secret is None:
        return None
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except Exception:  # the library raises several types for malformed input: all mean "not verified"
        return False
    return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], receiver: WebhookReceiver) -> None:
        self.receiver = receiver
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        self.receiver._accepted()
        return sock, address

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.receiver._enter():
            self.shutdown_request(request)  # over the bound: drop it
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.receiver._leave()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.receiver._leave()

    def finish_request(self, request: Any, client_address: Any) -> None:
        receiver = self.receiver
        sock: socket.socket = request
        sock.settimeout(SOCKET_TIMEOUT_SECONDS)
        if receiver._tls_context is not None:
            try:
                sock = receiver._tls_context.wrap_socket(sock, server_side=True)
            except (OSError, ssl.SSLError):
                return
        receiver._track(sock, True)
        try:
            self.RequestHandlerClass(sock, client_address, self)
        finally:
            receiver._track(sock, False)
            if sock is not request:
                with contextlib.suppress(OSError):
                    sock.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # quiet: a client that went away is not an error worth printing


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(16)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY_BYTES:
            return None
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        receiver = self.server.receiver
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        extra: dict[str, str] = {}
        if body is None:
            status, retry_after = 413, None
            body = b""
        else:
            status, retry_after, extra = receiver._next_status()
        request = ReceivedRequest(
            method=self.command,
            path=self.path,
            headers=headers,
            body=body,
            received_at=time.time(),
            verified=_verify(receiver.secret, body, headers),
        )
        held = receiver._hold()
        if held is None:
            receiver._record(request)  # released by stop(): recorded with answered = 0
            self.close_connection = True
            return
        if held and _client_gone(self.connection):
            request.abandoned = True  # the client timed out and left: what we would answer now reaches nobody
            receiver._record(request)
            self.close_connection = True
            return
        # Recorded before the answer is written, so a client that has its answer always finds its request here.
        request.answered = status
        receiver._record(request)
        stream = receiver._stream
        if stream is not None:
            self.close_connection = True
            self._stream_answer(status, request, *stream)
            receiver._notify(request)
            return
        payload = json.dumps({"status": status}).encode()
        self.close_connection = True
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if retry_after is not None and status >= 300:
                self.send_header("Retry-After", str(retry_after))
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except OSError:
            pass
        receiver._notify(request)

    def _stream_answer(self, status: int, request: ReceivedRequest, total: int, seconds: float, part: str) -> None:
        """``status``, then ``total`` bytes paced evenly over ``seconds``: the body (with its Content-Length), or
        padding header lines before an empty body. ``request.streamed`` counts what the client took."""
        steps = max(1, min(total // 1024, int(seconds * 20)))
        size = total // steps
        pause = seconds / steps
        receiver = self.server.receiver
        try:
            self.wfile.write(f"HTTP/1.1 {status} Streamed\r\nConnection: close\r\n".encode())
            if part == "body":
                self.wfile.write(f"Content-Type: text/plain\r\nContent-Length: {size * steps}\r\n\r\n".encode())
            self.wfile.flush()
            for step in range(steps):
                if receiver._released.wait(pause):
                    break
                pad = f"X-Pad-{step}: {'x' * max(1, size - 12)}\r\n"
                chunk = b"x" * size if part == "body" else pad.encode()
                self.connection.sendall(chunk)
                receiver._streamed(request, len(chunk))
            if part == "headers":
                self.connection.sendall(b"Content-Length: 0\r\n\r\n")
        except OSError:
            pass  # the client went away: what it took is counted
        receiver._streamed(request, 0, done=True)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET = do_OPTIONS = _handle


def _client_gone(sock: Any) -> bool:
    """Whether the client closed its side of the connection (it sends nothing more after its request)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    if not readable:
        return False
    if isinstance(sock, ssl.SSLSocket):
        return True  # readable after the whole request was read: a close_notify or the end of the stream
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class WebhookReceiver:
    """A local HTTP(S) server that records what webhooks send it. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        *,
        secret: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: tuple[str, str] | None = None,
        on_request: Callable[[ReceivedRequest], None] | None = None,
    ) -> None:
        self.secret = secret
        self.host = host
        self.port = port
        self.tls = tls
        self.on_request = on_request
        self.requests: list[ReceivedRequest] = []
        self.connections = 0
        self._cond = threading.Condition()
        self._script: deque[int] = deque()
        self._retry_after: int | str | None = None
        self._extra_headers: dict[str, str] = {}
        self._hang = 0.0
        self._stream: tuple[int, float, str] | None = None
        self._released = threading.Event()
        self._active = 0
        self._sockets: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._down = False
        self._tls_context: ssl.SSLContext | None = None
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls[0], tls[1])
            self._tls_context = context

    # -- life cycle ------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Bind (port 0 picks a free port, kept for the receiver's life) and serve in a daemon thread."""
        if self._server is not None:
            return
        self._released.clear()
        self._listen()

    def stop(self) -> None:
        """Stop serving, release hung handlers and close open connections."""
        self._released.set()
        self._close_listener()
        with self._cond:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + 5
        with self._cond:
            self._cond.wait_for(lambda: self._active == 0, max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> WebhookReceiver:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _listen(self) -> None:
        server = _Server((self.host, self.port), self)
        self.port = server.server_address[1]
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"webhook-receiver-{self.port}"
        )
        thread.daemon = True
        self._server, self._thread = server, thread
        thread.start()

    def _close_listener(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def url(self) -> str:
        """The URL to send webhooks to, as ``http(s)://HOST:PORT/hooks``; any path is accepted."""
        if not self.port:
            raise RuntimeError("the webhook receiver is not started")
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/hooks"

    # -- scripting -------------------------------------------------------------------------------------------

    def respond_with(self, *statuses: int, retry_after: int | str | None = None,
                     headers: dict[str, str] | None = None) -> None:
        """Answer the next requests with these statuses, in order, then 200 again (``Retry-After`` on non-2xx,
        as given: a string is sent as is, so a malformed one can be tested; ``headers`` on each scripted answer,
        such as a ``Location``)."""
        for status in statuses:
            if not 200 <= status <= 599:
                raise ValueError(f"respond_with: {status} is not an HTTP status from 200 to 599")
        for name, value in (headers or {}).items():
            if any(c in name + value for c in "\r\n"):
                raise ValueError("respond_with: a header name or value holds a line break")
        with self._cond:
            self._script.extend(statuses)
            self._retry_after = retry_after
            self._extra_headers = dict(headers or {})

    def set_down(self, down: bool) -> None:
        """Down: close the listening socket so connections are refused. Up: listen again on the same port."""
        with self._cond:
            if down == self._down:
                return
            self._down = down
        if down:
            self._close_listener()
        elif not self._released.is_set() and self.port:
            self._listen()

    def set_hang(self, seconds: float) -> None:
        """Hold each request this long before answering (0 to stop); ``stop()`` releases held requests."""
        if not 0 <= seconds <= MAX_HANG_SECONDS:
            raise ValueError(f"set_hang: seconds must be from 0 to {MAX_HANG_SECONDS:g}")
        with self._cond:
            self._hang = float(seconds)

    def set_stream(self, total_bytes: int, seconds: float, part: str = "body") -> None:
        """Answer each request slowly: its status at once, then ``total_bytes`` paced over ``seconds``, as the
        ``body`` or as padding ``headers`` lines (each under a second apart); ``total_bytes`` 0 stops it."""
        if part not in ("body", "headers"):
            raise ValueError("set_stream: part is 'body' or 'headers'")
        if not 0 <= seconds <= MAX_HANG_SECONDS or total_bytes < 0:
            raise ValueError(f"set_stream: seconds from 0 to {MAX_HANG_SECONDS:g}, bytes from 0")
        with self._cond:
            self._stream = (int(total_bytes), float(seconds), part) if total_bytes else None

    # -- observing -------------------------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[list[ReceivedRequest]], bool], timeout: float) -> bool:
        """Wait until ``predicate(requests)`` holds, at most ``timeout`` seconds; return whether it held."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(list(self.requests)), timeout)

    def wait_for_connections(self, count: int, timeout: float) -> bool:
        """Wait until at least ``count`` TCP connections were accepted, at most ``timeout`` seconds."""
        with self._cond:
            return self._cond.wait_for(lambda: self.connections >= count, timeout)

    def delivered(self) -> list[ReceivedRequest]:
        """The requests answered with a 2xx status."""
        with self._cond:
            return [r for r in self.requests if 200 <= r.answered < 300]

    # -- used by the server ----------------------------------------------------------------------------------

    def _accepted(self) -> None:
        with self._cond:
            self.connections += 1
            self._cond.notify_all()

    def _enter(self) -> bool:
        with self._cond:
            if self._active >= MAX_CONNECTIONS:
                return False
            self._active += 1
            return True

    def _leave(self) -> None:
        with self._cond:
            self._active -= 1
            self._cond.notify_all()

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._cond:
            if add:
                self._sockets.add(sock)
            else:
                self._sockets.discard(sock)

    def _next_status(self) -> tuple[int, int | str | None, dict[str, str]]:
        with self._cond:
            if self._script:
                return self._script.popleft(), self._retry_after, dict(self._extra_headers)
            return 200, None, {}

    def _hold(self) -> bool | None:
        """Hang if asked to: True when the request was held, False when not, None when stop() released it (it is
        then not answered)."""
        with self._cond:
            hang = self._hang
        if hang > 0 and self._released.wait(hang):
            return None
        if self._released.is_set():
            return None
        return hang > 0

    def _record(self, request: ReceivedRequest) -> None:
        with self._cond:
            self.requests.append(request)
            self._cond.notify_all()

    def _streamed(self, request: ReceivedRequest, count: int, done: bool = False) -> None:
        with self._cond:
            request.streamed += count
            request.stream_done = request.stream_done or done
            self._cond.notify_all()

    def _notify(self, request: ReceivedRequest) -> None:
        if self.on_request is not None:
            with contextlib.suppress(Exception):
                self.on_request(request)


def make_self_signed_cert(directory: Path, hosts: list[str]) -> tuple[str, str]:
    """Write a self-signed certificate for ``hosts`` (and 127.0.0.1) and its key; return (certfile, keyfile).

    The certificate is its own CA, so it can be trusted directly (``verify=certfile`` or ``REQUESTS_CA_BUNDLE``).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    seen: set[str] = set()
    for host in [*hosts, "127.0.0.1"]:
        text = host.strip("[]").lower()
        if not text or text in seen:
            continue
        seen.add(text)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(text)))
        except ValueError:
            names.append(x509.DNSName(text))
    common_name = next((h for h in hosts if h), "localhost")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = dt.datetime.now(dt.UTC)
    public_key = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )
    certfile = directory / "webhook-receiver-cert.pem"
    keyfile = directory / "webhook-receiver-key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.touch(mode=0o600)
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(certfile), str(keyfile)
