"""One read from Resource Manager with a bearer token (a GET, a POST Azure defines as a read, or a Resource Graph
query), and what its answer means.

The token comes from ``JOBS_ARM_TOKEN`` (simulators, tests) or an ``azure-identity`` credential; it is never
logged, and the session ignores proxy settings: the token goes to ARM_ENDPOINT and nowhere else.

The seam: ``ArmTransport`` builds each request (URL, headers with the token, JSON body) and classifies each answer
(a JSON object, a ``Throttle``, an ``ArmError``); in between, an ``HttpTransport`` turns one ``HttpRequest`` into
one ``HttpResponse`` and does nothing else. ``RequestsTransport`` sends it over HTTP with a ``requests.Session``
(the default); ``HandlerTransport`` hands it to a Python function in this process, as httpx's ``MockTransport``
does (the benchmark serves the simulator that way, on a virtual clock). Everything above the seam runs the same in
both.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from azure.core.exceptions import ClientAuthenticationError

from jobs.arm.errors import ArmError, ArmForbidden, ArmNotFound, ArmUnauthorized, ArmUnavailable

__all__ = [
    "ArmTransport",
    "CredentialToken",
    "HandlerTransport",
    "Headers",
    "HttpRequest",
    "HttpResponse",
    "HttpTransport",
    "RequestsTransport",
    "StaticToken",
    "TokenProvider",
    "TransportError",
    "describe_identity",
    "parse_retry_after",
    "token_unavailable",
]


class TokenProvider(Protocol):
    def get_token(self) -> str: ...


class StaticToken:
    """A fixed bearer token (``JOBS_ARM_TOKEN``): for simulators and tests only."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self) -> str:
        return self._token

    def __repr__(self) -> str:
        return "StaticToken(<redacted>)"


class CredentialToken:
    """A token from an ``azure-identity`` credential, refreshed five minutes before it expires.

    A token that cannot be had (``CredentialUnavailableError``, ``ClientAuthenticationError``: the managed identity
    endpoint refusing or down, a wrong ``AZURE_CLIENT_ID``) is a credential failure like a 401: ``ArmUnauthorized``
    with code ``TokenUnavailable``, its message naming ``identity`` and what to check. A token still valid is used
    while the credential fails to refresh it."""

    def __init__(self, credential: Any, scope: str, identity: str = "the app's identity") -> None:
        self._credential = credential
        self._scope = scope
        self._identity = identity
        self._token: Any = None
        self._lock = threading.Lock()

    def get_token(self) -> str:
        with self._lock:
            if self._token is None or self._token.expires_on - 300 < time.time():
                try:
                    self._token = self._credential.get_token(self._scope)
                except ClientAuthenticationError as exc:  # CredentialUnavailableError is one
                    if self._token is not None and self._token.expires_on - 30 > time.time():
                        return str(self._token.token)  # it still opens ARM: the refresh is tried again next read
                    raise token_unavailable(self._identity, self._scope, exc) from None
            return str(self._token.token)


def describe_identity(client_id: str | None) -> str:
    """Which identity ``DefaultAzureCredential`` asks for a token, as the log and the health check name it."""
    if client_id:
        return f"the managed identity AZURE_CLIENT_ID={client_id}"
    return "the system-assigned managed identity (AZURE_CLIENT_ID is not set)"


def token_unavailable(identity: str, scope: str, error: Exception) -> ArmUnauthorized:
    """A token ``azure-identity`` could not get, as the 401 it amounts to: what was asked, of whom, what it said
    (the managed identity's own line of ``DefaultAzureCredential``'s report, else its first), and what to check."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    said = next((line for line in lines if line.startswith("ManagedIdentityCredential")), lines[0] if lines else "")
    return ArmUnauthorized(
        401, "TokenUnavailable",
        f"no token for {scope} from {identity}: {said[:300] or type(error).__name__}. Check that AZURE_CLIENT_ID "
        "names a user-assigned identity assigned to this app (unset: the system-assigned one), or set "
        "JOBS_ARM_TOKEN for a simulator",
    )


@dataclass(frozen=True)
class Throttle:
    """A 429: Azure's code and message, and the Retry-After it asked for (seconds, when given)."""

    code: str
    message: str
    retry_after: float | None


class Headers(Mapping[str, str]):
    """HTTP headers, looked up without regard to case (``headers["retry-after"]`` finds ``Retry-After``); built once
    from name-value pairs, read-only."""

    __slots__ = ("_items",)

    def __init__(self, pairs: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        items = pairs.items() if isinstance(pairs, Mapping) else pairs
        self._items = {name.lower(): (name, value) for name, value in items}

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


@dataclass(frozen=True)
class HttpRequest:
    """One request as it goes on the wire: method, absolute URL, headers and body bytes (None: no body)."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None = None


@dataclass(frozen=True)
class HttpResponse:
    """One answer as it came off the wire: status, headers (looked up without regard to case), body bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes = b""
    reason: str = ""

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` when it is not)."""
        return json.loads(self.body)


class TransportError(Exception):
    """No answer at all (connection refused or reset, timeout): ``kind`` names what happened, e.g.
    ``ConnectionError`` or ``ReadTimeout``."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class HttpTransport(Protocol):
    """The seam: one ``HttpRequest`` in, one ``HttpResponse`` out, or ``TransportError`` when nothing came back."""

    def send(self, request: HttpRequest) -> HttpResponse: ...


class RequestsTransport:
    """Over HTTP with a ``requests.Session`` that ignores proxy settings and never follows redirects."""

    def __init__(self, session: requests.Session | None = None, timeout: tuple[float, float] = (5.0, 30.0)) -> None:
        self._session = session or requests.Session()
        self._session.trust_env = False  # the token goes to ARM_ENDPOINT and nowhere else, not through a proxy
        self._timeout = timeout

    def send(self, request: HttpRequest) -> HttpResponse:
        try:
            response = self._session.request(
                request.method, request.url, headers=dict(request.headers), data=request.body,
                timeout=self._timeout, allow_redirects=False,
            )
            body = response.content  # read in full here: a connection cut mid-body is a transport failure
        except requests.RequestException as exc:
            raise TransportError(type(exc).__name__) from None
        return HttpResponse(response.status_code, response.headers, body, response.reason or "")


class HandlerTransport:
    """In this process: each request goes to ``handler`` and its answer comes back as if from the wire (a
    ``TransportError`` it raises is a request that got no answer). ``handler`` sees what ``RequestsTransport``
    would send, token included."""

    def __init__(self, handler: Callable[[HttpRequest], HttpResponse]) -> None:
        self._handler = handler

    def send(self, request: HttpRequest) -> HttpResponse:
        response = self._handler(request)
        headers = response.headers
        if not isinstance(headers, Headers):  # looked up without regard to case, as requests' headers are
            headers = Headers(headers)
        return HttpResponse(response.status, headers, response.body, response.reason)


class ArmTransport:
    """Sends one read (a GET, or a POST that Azure defines as a read) and classifies the answer: a JSON object, a
    ``Throttle``, or an ``ArmError``.

    Transient failures (network errors, 408, 5xx, unreadable bodies) raise ``ArmUnavailable`` carrying the
    Retry-After they asked for, in ``retry_after`` (the client decides whether to retry).

    ``http`` is the seam the requests go through: ``RequestsTransport`` (the default, with ``session`` and
    ``timeout``) or any other ``HttpTransport``, e.g. a ``HandlerTransport`` in front of a simulator.

    ``on_headers(url, headers)``, when set (the ``ArmClient`` sets it), hears the headers of every answer, whatever
    its status: ARM's count of remaining reads rides on all of them.
    """

    def __init__(
        self,
        token: TokenProvider,
        *,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        http: HttpTransport | None = None,
    ) -> None:
        self._token = token
        self.http: HttpTransport = http or RequestsTransport(session, timeout)
        self.requests_sent = 0
        self.on_headers: Callable[[str, Mapping[str, str]], None] | None = None

    def get(self, url: str) -> dict[str, Any] | Throttle:
        return self.send("GET", url)

    def post(self, url: str, body: Mapping[str, Any]) -> dict[str, Any] | Throttle:
        """A read that Azure defines as a POST with a JSON body (cross-region restore jobs): answered as a GET."""
        return self.send("POST", url, body)

    def send(self, method: str, url: str, body: Mapping[str, Any] | None = None) -> dict[str, Any] | Throttle:
        return _classify(self._request(method, url, body))

    def token_problem(self) -> str | None:
        """``None`` when a token can be had now (a cached one counts), else the ``TokenUnavailable`` line saying
        which identity was asked and what to check. Sends nothing to ARM."""
        try:
            self._token.get_token()
        except ArmUnauthorized as exc:
            return f"{exc.status} {exc.code}: {exc.message}"
        return None

    def post_query(self, url: str, body: Mapping[str, Any]) -> tuple[dict[str, Any] | Throttle, Mapping[str, str]]:
        """One POST of a JSON body (Resource Graph's query): the answer as ``get`` classifies it, and the answer's
        headers (Resource Graph reports its quota in them)."""
        response = self._request("POST", url, body)
        return _classify(response), response.headers

    def _request(self, method: str, url: str, body: Mapping[str, Any] | None) -> HttpResponse:
        headers = self._headers()
        data: bytes | None = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(dict(body), allow_nan=False).encode("utf-8")  # as requests' json= encodes it
        try:
            response = self.http.send(HttpRequest(method, url, headers, data))
        except TransportError as exc:
            raise TransientFailure(ArmUnavailable(0, exc.kind, "no answer from Resource Manager")) from None
        finally:
            self.requests_sent += 1
        if self.on_headers is not None:
            self.on_headers(url, response.headers)
        return response

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token.get_token()}", "Accept": "application/json"}


class TransientFailure(Exception):
    """A failure worth retrying: ``error`` is what the caller gets when the retries run out."""

    def __init__(self, error: ArmUnavailable, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def _classify(response: HttpResponse) -> dict[str, Any] | Throttle:
    """A 200's JSON object, a ``Throttle`` for a 429, else the ``ArmError`` (``TransientFailure`` when worth
    retrying)."""
    status = response.status
    if status == 200:
        try:
            body = response.json()
        except (ValueError, json.JSONDecodeError):
            raise TransientFailure(
                ArmUnavailable(200, "UnreadableResponse", "the response body is not complete JSON")
            ) from None
        if not isinstance(body, dict):
            raise ArmError(200, "UnexpectedResponse", "the response body is not a JSON object")
        return body
    code, message = _error_of(response)
    retry_after = parse_retry_after(response.headers)
    if status == 429:
        return Throttle(code, message, retry_after)
    if status == 404:
        raise ArmNotFound(status, code, message)
    if status == 401:
        raise ArmUnauthorized(status, code, message)
    if status == 403:
        raise ArmForbidden(status, code, message)
    if status == 408 or status >= 500:
        raise TransientFailure(ArmUnavailable(status, code, message), retry_after)
    raise ArmError(status, code, message)


def _error_of(response: HttpResponse) -> tuple[str, str]:
    try:
        error = response.json().get("error") or {}
        return str(error.get("code") or response.reason or response.status), str(error.get("message") or "")
    except (ValueError, AttributeError):
        return str(response.reason or response.status), ""


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms``, ``x-ms-retry-after-ms`` or ``Retry-After`` (seconds or HTTP date)."""
    for header in ("retry-after-ms", "x-ms-retry-after-ms"):
        if value := headers.get(header):
            try:
                return max(0.0, float(value) / 1000)
            except ValueError:
                pass
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None  # neither seconds nor an HTTP date: as if absent
    if parsed.tzinfo is None:  # RFC 850 / asctime forms carry no zone: HTTP dates are GMT
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return max(0.0, parsed.timestamp() - time.time())
