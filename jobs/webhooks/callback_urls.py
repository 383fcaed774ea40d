"""SSRF guard for the per-job ``callbackUrl`` that arrives inside untrusted intake messages.

:func:`check_callback_url` checks a URL at intake (https, a host listed in ``JOBS_CALLBACK_ALLOWED_HOSTS``, no
non-public address behind a wildcard); :func:`guarded_session` checks every address again at connect time, so DNS
rebinding is refused. The rules in full: docs/reference.md ("Security") and docs/design.md.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import idna
import requests
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection as urllib3_connection
from urllib3.util import parse_url

__all__ = [
    "SETTING",
    "AllowedHost",
    "AllowedHosts",
    "CallbackUrlRejected",
    "CallbackUrlUnverified",
    "Resolver",
    "address_problem",
    "check_callback_url",
    "default_resolve",
    "guarded_session",
]

SETTING = "JOBS_CALLBACK_ALLOWED_HOSTS"
MAX_URL_LENGTH = 2048
_DEFAULT_PORT = 443

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
Match = Literal["exact", "wildcard"]

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# One part of an inet_aton() address: hex (0x..), octal (leading 0) or decimal.
_INET_PART = re.compile(r"0[xX][0-9a-fA-F]*|[0-9]+")
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


class CallbackUrlRejected(ValueError):
    """A callback URL (or a connection to it) is refused; ``reason`` is one sentence naming the problem."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class CallbackUrlUnverified(OSError):
    """The callback URL could not be checked just now (a DNS server that timed out or failed): no verdict on the
    URL, so the message is tried again later instead of being rejected for good."""


# getaddrinfo's answers that say the name has no address: a verdict. Anything else (EAI_AGAIN, EAI_FAIL, a timeout)
# says the resolver could not answer now.
_NO_SUCH_NAME = {
    getattr(socket, name) for name in ("EAI_NONAME", "EAI_NODATA", "EAI_ADDRFAMILY") if hasattr(socket, name)
}


# --------------------------------------------------------------------------------------------------------------
# Host normalisation


@dataclass(frozen=True)
class _Host:
    """A normalised host: ``key`` is what entries are compared with, ``ip`` is set for IP literals."""

    key: str
    ip: IPAddress | None
    odd: bool  # an IPv4 literal written in a non-standard form (decimal, hex, octal, short)


class _BadHost(ValueError):
    pass


def _parse_inet_aton(text: str) -> ipaddress.IPv4Address | None:
    """Parse ``text`` with the rules of inet_aton(3) (what getaddrinfo accepts); None when it is not an address."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4 or not all(_INET_PART.fullmatch(p) for p in parts):
        return None
    values: list[int] = []
    for part in parts:
        if part[:2].lower() == "0x":
            values.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            if any(c in "89" for c in part):
                return None
            values.append(int(part, 8))
        else:
            values.append(int(part))
    *head, last = values
    if any(v > 255 for v in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    number = last
    for index, value in enumerate(head):
        number |= value << (8 * (3 - index))
    return ipaddress.IPv4Address(number)


def _normalise_host(raw: str) -> _Host:
    """Normalise a host as requests/urllib3 would before connecting; raise ``_BadHost`` with a reason fragment."""
    if not raw:
        raise _BadHost("is empty")
    if "%" in raw:
        raise _BadHost("is percent-encoded or carries an IPv6 zone")
    if raw.startswith("[") or raw.endswith("]"):
        if not (raw.startswith("[") and raw.endswith("]")):
            raise _BadHost("has unbalanced brackets")
        try:
            address6 = ipaddress.IPv6Address(raw[1:-1])
        except ValueError:
            raise _BadHost("is not a valid IPv6 address") from None
        return _Host(f"[{address6.compressed}]", address6, odd=False)
    if ":" in raw:
        raise _BadHost("is an IPv6 address without brackets")
    host = raw
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            raise _BadHost("is not a valid internationalised host name") from None
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise _BadHost("is empty")
    if len(host) > 253:
        raise _BadHost("is longer than 253 characters")
    labels = host.split(".")
    if _INET_PART.fullmatch(labels[-1]):
        # A numeric last label: the resolver will read the host as an IPv4 address (inet_aton rules).
        address4 = _parse_inet_aton(host)
        if address4 is None:
            raise _BadHost("is neither a valid host name nor a valid IPv4 address")
        return _Host(host, address4, odd=str(address4) != host)
    if not all(_LABEL.fullmatch(label) for label in labels):
        raise _BadHost("is not a valid host name")
    return _Host(host, None, odd=False)


def _split_host_port(authority: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` / ``[v6][:port]``; raise ``_BadHost`` when the port is malformed."""
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise _BadHost("has unbalanced brackets")
        host, rest = authority[: end + 1], authority[end + 1 :]
        if rest and not rest.startswith(":"):
            raise _BadHost("has text after the IPv6 address")
        port_text = rest[1:] if rest else None
    elif ":" in authority:
        host, _, port_text = authority.rpartition(":")
    else:
        host, port_text = authority, None
    if port_text is None:
        return host, None
    if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5 or not 1 <= int(port_text) <= 65535:
        raise _BadHost(f"has an invalid port {port_text!r}")
    return host, int(port_text)


# --------------------------------------------------------------------------------------------------------------
# The allow-list


@dataclass(frozen=True)
class AllowedHost:
    """One entry of ``JOBS_CALLBACK_ALLOWED_HOSTS``: ``host`` is the normalised host (the domain for a wildcard)."""

    host: str
    port: int | None = None
    wildcard: bool = False

    def __str__(self) -> str:
        text = f"*.{self.host}" if self.wildcard else self.host
        return text if self.port is None else f"{text}:{self.port}"


@dataclass(frozen=True)
class AllowedHosts:
    """The parsed ``JOBS_CALLBACK_ALLOWED_HOSTS`` setting."""

    entries: tuple[AllowedHost, ...] = ()

    @classmethod
    def from_setting(cls, value: str | None) -> AllowedHosts:
        """Parse the comma-separated setting; raise ``ValueError`` naming the setting and the bad entry."""
        entries: list[AllowedHost] = []
        for item in (value or "").split(","):
            text = item.strip()
            if text:
                entries.append(_parse_entry(text))
        return cls(tuple(entries))

    def __bool__(self) -> bool:
        return bool(self.entries)

    def match(self, host: str, port: int | None = None) -> Match | None:
        """How ``host`` (as in a URL, port defaulting to 443) is allowed: ``"exact"``, ``"wildcard"`` or None."""
        try:
            normalised = _normalise_host(host)
        except _BadHost:
            return None
        return self._match(normalised, _DEFAULT_PORT if port is None else port)

    def _match(self, host: _Host, port: int) -> Match | None:
        ports_ok = [e for e in self.entries if e.port is None or e.port == port]
        if any(not e.wildcard and e.host == host.key for e in ports_ok):
            return "exact"
        if host.ip is None and any(e.wildcard and host.key.endswith("." + e.host) for e in ports_ok):
            return "wildcard"
        return None


def _parse_entry(text: str) -> AllowedHost:
    def bad(problem: str) -> ValueError:
        return ValueError(f"{SETTING} entry {text!r} {problem}")

    if "://" in text or any(c in text for c in "/?#@\\") or any(c.isspace() or not c.isprintable() for c in text):
        raise bad("is not valid: give a host name or IP literal, optionally with :port (no scheme or path)")
    wildcard = text.startswith("*.")
    body = text[2:] if wildcard else text
    if "*" in body:
        raise bad("is not valid: a wildcard must be a leading '*.' followed by a domain, as in *.logic.azure.com")
    if not body.startswith("[") and body.count(":") > 1:
        raise bad("is not valid: write IPv6 addresses in brackets, as in [::1]")
    try:
        host_text, port = _split_host_port(body)
        host = _normalise_host(host_text)
    except _BadHost as exc:
        raise bad(f"is not valid: the host {exc}") from None
    if wildcard and host.ip is not None:
        raise bad("is not valid: a wildcard must name a domain, not an IP address")
    return AllowedHost(host.key, port, wildcard)


# --------------------------------------------------------------------------------------------------------------
# Addresses


def address_problem(address: IPAddress) -> str | None:
    """Why ``address`` is not a public unicast address (as "a private address"), or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner = address_problem(embedded)
            if inner is not None:
                return f"{inner} ({embedded}) embedded in an IPv6 address"
            elif address in _NAT64:
                return None  # the well-known NAT64 prefix in front of a public IPv4 address (DNS64 networks)
        if address.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address"
        if address in _NAT64_LOCAL:
            return "a local-use NAT64 address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "a shared (carrier-grade NAT) address"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "a site-local address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "a non-public address"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _parse_address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def default_resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to for a TCP connection (``socket.getaddrinfo``), in resolver order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def _resolve_host(label: str, host: str, port: int, resolve: Resolver) -> list[str]:
    """Resolve ``host`` at intake; a name that does not resolve is refused."""
    try:
        addresses = resolve(host, port)
    except socket.gaierror as exc:
        if exc.errno in _NO_SUCH_NAME:
            raise CallbackUrlRejected(f"{label} host {host!r} does not resolve ({exc})") from None
        raise CallbackUrlUnverified(f"{label} host {host!r} could not be resolved just now ({exc})") from None
    except (UnicodeError, ValueError) as exc:
        raise CallbackUrlRejected(f"{label} host {host!r} does not resolve ({exc})") from None
    except OSError as exc:  # a timeout or a network error on the way to the DNS server
        raise CallbackUrlUnverified(f"{label} host {host!r} could not be resolved just now ({exc})") from None
    if not addresses:
        raise CallbackUrlRejected(f"{label} host {host!r} does not resolve")
    return addresses


def _check_addresses(label: str, host: str, addresses: list[str], match: Match) -> list[IPAddress]:
    """Parse resolved addresses; unless ``match`` is exact, raise ``CallbackUrlRejected`` for any non-public one."""
    checked: list[IPAddress] = []
    for text in addresses:
        address = _parse_address(text)
        if address is None:
            raise CallbackUrlRejected(f"{label} host {host!r} resolves to {text!r}, which is not an IP address")
        if match != "exact":
            problem = address_problem(address)
            if problem is not None:
                raise CallbackUrlRejected(f"{label} host {host!r} resolves to {address}, {problem}")
        checked.append(address)
    return checked


# --------------------------------------------------------------------------------------------------------------
# URL checks


@dataclass(frozen=True)
class _Target:
    host: _Host
    display: str  # the host as it should be named in reasons
    port: int
    match: Match


def _static_check(url: str, allowed: AllowedHosts, label: str) -> _Target:
    """Everything but DNS: syntax, scheme, host and port against the allow-list."""
    if not isinstance(url, str):
        raise CallbackUrlRejected(f"{label} must be a string")
    if not url:
        raise CallbackUrlRejected(f"{label} is empty")
    if len(url) > MAX_URL_LENGTH:
        raise CallbackUrlRejected(f"{label} is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or not c.isprintable() for c in url):
        raise CallbackUrlRejected(f"{label} contains whitespace or control characters")
    if "\\" in url:
        raise CallbackUrlRejected(f"{label} contains a backslash")
    if "#" in url:
        raise CallbackUrlRejected(f"{label} must not contain a fragment ('#')")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise CallbackUrlRejected(f"{label} is not a valid URL ({exc})") from None
    if parts.scheme.lower() != "https":
        raise CallbackUrlRejected(f"{label} must use https")
    if not url[len(parts.scheme) :].startswith("://"):
        raise CallbackUrlRejected(f"{label} must be an absolute https:// URL")
    authority = parts.netloc
    if "@" in authority:
        raise CallbackUrlRejected(f"{label} must not contain user information ('user@')")
    if not authority:
        raise CallbackUrlRejected(f"{label} has no host")
    try:
        host_text, port = _split_host_port(authority)
        host = _normalise_host(host_text)
    except _BadHost as exc:
        raise CallbackUrlRejected(f"{label} host {authority!r} {exc}") from None
    effective_port = _DEFAULT_PORT if port is None else port
    _cross_check(url, host, label)
    shown = host_text.lower() if host.key.startswith("[") else host.key
    if not allowed:
        raise CallbackUrlRejected(f"{label} host {shown!r} is not listed in {SETTING}, which is empty")
    match = allowed._match(host, effective_port)
    if match is None:
        if host.odd:
            raise CallbackUrlRejected(
                f"{label} host {host.key!r} is the IP address {host.ip} written in a non-standard form"
                f" and is not listed in {SETTING} as written"
            )
        where = f"{shown!r}" if port is None else f"{shown!r} with port {port}"
        raise CallbackUrlRejected(f"{label} host {where} is not listed in {SETTING}")
    return _Target(host, shown, effective_port, match)


def _cross_check(url: str, host: _Host, label: str) -> None:
    """Make sure requests/urllib3 would connect to the very host we checked (no parser differentials)."""
    try:
        prepared = PreparedRequest()
        prepared.prepare_url(url, None)
        seen = parse_url(prepared.url or "").host or ""
        theirs = _normalise_host(seen)
    except (requests.RequestException, ValueError, UnicodeError, _BadHost):
        raise CallbackUrlRejected(f"{label} is not a URL that can be sent to") from None
    if theirs.key != host.key:
        raise CallbackUrlRejected(f"{label} is ambiguous: its host can be read as {host.key!r} or {theirs.key!r}")


def check_callback_url(
    url: str,
    allowed: AllowedHosts,
    *,
    resolve: Resolver | None = None,
    label: str = "callbackUrl",
) -> str:
    """Return ``url`` unchanged if it may receive result events, else raise ``CallbackUrlRejected``.

    A name matched by an exact entry is not resolved (any address is allowed). A name matched only by a wildcard
    must resolve, and every address it resolves to must be public.
    """
    target = _static_check(url, allowed, label)
    if target.host.ip is None and target.match == "wildcard":
        addresses = _resolve_host(label, target.display, target.port, resolve or default_resolve)
        _check_addresses(label, target.display, addresses, target.match)
    return url


# --------------------------------------------------------------------------------------------------------------
# Delivery: a session that re-checks at connect time


class _GuardedConnectionMixin:
    """Replaces urllib3's ``_new_conn``: resolve, check every address, connect to a checked address, verify peer."""

    guard_allowed: AllowedHosts
    guard_resolve: Resolver | None
    _dns_host: str
    host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        label = "callbackUrl"
        try:
            host = _normalise_host(self._dns_host)
        except _BadHost as exc:
            raise CallbackUrlRejected(f"{label} host {self._dns_host!r} {exc}") from None
        match = self.guard_allowed._match(host, self.port)
        if match is None:
            raise CallbackUrlRejected(f"{label} host {host.key!r} is not listed in {SETTING}")
        if host.ip is not None:
            checked: list[IPAddress] = [host.ip]
        else:
            resolve = self.guard_resolve or default_resolve
            try:
                resolved = resolve(self._dns_host, self.port)
            except (OSError, UnicodeError) as exc:
                error = exc if isinstance(exc, socket.gaierror) else socket.gaierror(str(exc))
                raise NameResolutionError(self.host, self, error) from exc  # type: ignore[arg-type]
            checked = _check_addresses(label, host.key, resolved, match)
            if not checked:
                raise NameResolutionError(self.host, self, socket.gaierror("no addresses"))  # type: ignore[arg-type]
        last_error: OSError | None = None
        for expected in checked:
            try:
                sock = urllib3_connection.create_connection(
                    (str(expected), self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
                ) from exc
            except OSError as exc:
                last_error = exc
                continue
            peer = _parse_address(str(sock.getpeername()[0]))
            problem = None if match == "exact" or peer is None else address_problem(peer)
            if peer != expected or problem is not None:
                sock.close()
                raise CallbackUrlRejected(
                    f"{label} host {host.key!r} connected to {peer}, "
                    + (problem or f"not the checked address {expected}")
                )
            return sock
        raise NewConnectionError(self, f"Failed to establish a new connection: {last_error}")  # type: ignore[arg-type]


class _GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


def _pool_classes(allowed: AllowedHosts, resolve: Resolver | None) -> dict[str, type[HTTPConnectionPool]]:
    attrs = {"guard_allowed": allowed, "guard_resolve": staticmethod(resolve) if resolve else None}
    http_conn = type("GuardedHTTPConnection", (_GuardedHTTPConnection,), attrs)
    https_conn = type("GuardedHTTPSConnection", (_GuardedHTTPSConnection,), attrs)
    http_pool = type("GuardedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn})
    https_pool = type("GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn})
    return {"http": http_pool, "https": https_pool}


class _GuardedAdapter(HTTPAdapter):
    """Checks each request URL statically, sends it without proxies, and connects only to checked addresses."""

    def __init__(self, allowed: AllowedHosts, resolve: Resolver | None) -> None:
        self._allowed = allowed
        self._resolve = resolve
        super().__init__(max_retries=0)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self._allowed, self._resolve)

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        _static_check(request.url or "", self._allowed, "callbackUrl")
        # A proxy would make the connection go elsewhere than the checked address: callbacks go direct.
        return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies={})


class _GuardedSession(requests.Session):
    def get_redirect_target(self, resp: requests.Response) -> str | None:
        return None  # never follow a redirect: a 3xx answer is returned to the caller as is


def guarded_session(allowed: AllowedHosts, *, resolve: Resolver | None = None) -> requests.Session:
    """A session for sending to callback URLs that re-checks every connection against ``allowed``.

    Each new connection resolves the host (``resolve``, default :func:`default_resolve`), refuses it when the
    host is no longer allowed or when a wildcard-matched host resolves to any non-public address, then connects
    to the checked address itself and verifies the socket's peer before TLS starts; SNI, certificate
    verification and the ``Host`` header keep using the name. A refusal raises ``CallbackUrlRejected`` before
    any byte is sent. Redirects are never followed (3xx answers are returned), proxies are not used, and
    plain ``http`` URLs are refused.
    """
    session = _GuardedSession()
    session.max_redirects = 0
    adapter = _GuardedAdapter(allowed, resolve)
    for prefix in list(session.adapters):
        session.adapters.pop(prefix)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
