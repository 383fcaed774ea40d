"""The SSRF guard for per-job callback URLs: intake checks, the allow-list setting and the connect-time check."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from requests.models import PreparedRequest
from urllib3.util import parse_url

from devtools.webhook_receiver import WebhookReceiver, make_self_signed_cert
from jobs.webhooks import callback_urls
from jobs.webhooks.callback_urls import AllowedHosts, CallbackUrlRejected, check_callback_url, guarded_session

PUBLIC_V4 = "20.38.98.1"
PUBLIC_V6 = "2603:1000::1"

ALLOWED = AllowedHosts.from_setting("allowed.example, hooks.example.com:8443, *.logic.azure.com")


def fake_resolver(table: dict[str, list[str]]) -> callback_urls.Resolver:
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


PUBLIC_DNS = fake_resolver(
    {
        "allowed.example": [PUBLIC_V4],
        "hooks.example.com": [PUBLIC_V4],
        "prod-01.westeurope.logic.azure.com": [PUBLIC_V4, PUBLIC_V6],
        "a.b.logic.azure.com": [PUBLIC_V4],
    }
)


def rejected(url: str, allowed: AllowedHosts = ALLOWED, resolve: callback_urls.Resolver = PUBLIC_DNS) -> str:
    with pytest.raises(CallbackUrlRejected) as caught:
        check_callback_url(url, allowed, resolve=resolve)
    reason = caught.value.reason
    assert str(caught.value) == reason
    assert reason.startswith("callbackUrl ")
    assert "\n" not in reason and len(reason) < 400
    return reason


HOSTILE = [
    # loopback, private and metadata addresses, not listed
    "https://127.0.0.1/",
    "https://127.0.0.1:8443/hook",
    "https://localhost/",
    "https://10.0.0.1/",
    "https://172.16.0.1/",
    "https://172.31.255.254/",
    "https://192.168.1.1/",
    "https://169.254.169.254/latest/meta-data/",
    "https://100.64.0.1/",
    "https://0.0.0.0/",
    "https://[::1]/",
    "https://[::]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:7f00:1]/",
    "https://[::ffff:a9fe:a9fe]/",
    "https://[fe80::1%25eth0]/",
    "https://[fc00::1]/",
    # IPv4 in the forms inet_aton accepts
    "https://2130706433/",
    "https://0x7f000001/",
    "https://0x7f.1/",
    "https://0177.0.0.1/",
    "https://0177.1/",
    "https://127.1/",
    "https://127.0.1/",
    "https://127.000.000.001/",
    "https://0/",
    "https://0x0/",
    "https://1.2.3.4.5/",
    "https://\uff11\uff12\uff17.\uff10.\uff10.\uff11/",  # full-width digits
    # schemes
    "http://allowed.example/",
    "HTTP://allowed.example/",
    "file:///etc/passwd",
    "file://allowed.example/etc/passwd",
    "ftp://allowed.example/",
    "gopher://allowed.example/",
    "javascript:alert(1)",
    "https:allowed.example/hook",
    "https:/allowed.example/hook",
    "//allowed.example/hook",
    "allowed.example/hook",
    # userinfo, fragments, look-alike hosts
    "https://allowed.example@127.0.0.1/",
    "https://user:pass@allowed.example/",
    "https://@allowed.example/",
    "https://127.0.0.1#@allowed.example/",
    "https://allowed.example/#frag",
    "https://allowed.example.evil.com/",
    "https://evilallowed.example/",
    "https://allowed.example\u3002evil.com/",
    "https://logic.azure.com/",
    "https://evil-logic.azure.com/",
    "https://hooks.example.com/",  # listed with :8443 only
    "https://hooks.example.com:443/",
    # backslashes
    "https://allowed.example\\@127.0.0.1/",
    "https:\\\\allowed.example/",
    "https://127.0.0.1\\allowed.example/",
    "https://allowed.example\\.evil.com/",
    # percent-encoding in the host
    "https://%61llowed.example/",
    "https://allowed%2eexample/",
    "https://%31%32%37.0.0.1/",
    # empty or malformed host or port
    "",
    "https://",
    "https:///hook",
    "https://:443/hook",
    "https://allowed.example:/",
    "https://allowed.example:0/",
    "https://allowed.example:99999/",
    "https://allowed.example:https/",
    "https://[allowed.example]/",
    "https://[::1/",
    "https://.allowed.example/",
    "https://*.logic.azure.com/",
    "https://allowed..example/",
    "https://" + "a" * 64 + ".logic.azure.com/",
    # size, whitespace and control characters
    "https://allowed.example/" + "a" * 5000,
    " https://allowed.example/",
    "https://allowed.example/ ",
    "https://allowed.example/\n",
    "https://allowed.example/a\r\nX-Injected: 1",
    "https://allowed.example/\tx",
    "https://allowed.\x00example/",
    "https://allowed.example\x7f/",
    "https://allowed.example/\u200b",
    "https://allowed\u00a0.example/",
    # wildcard names that do not resolve
    "https://nowhere.logic.azure.com/",
]


@pytest.mark.parametrize("url", HOSTILE)
def test_hostile_urls_are_rejected_with_a_reason(url: str) -> None:
    rejected(url)


def test_reasons_name_the_problem() -> None:
    assert rejected("http://allowed.example/") == "callbackUrl must use https"
    assert rejected("https://evil.example/") == (
        "callbackUrl host 'evil.example' is not listed in JOBS_CALLBACK_ALLOWED_HOSTS"
    )
    private = fake_resolver({"x.logic.azure.com": ["10.0.0.5"]})
    assert rejected("https://x.logic.azure.com/", resolve=private) == (
        "callbackUrl host 'x.logic.azure.com' resolves to 10.0.0.5, a private address"
    )
    assert "does not resolve" in rejected("https://nowhere.logic.azure.com/")
    assert "user information" in rejected("https://allowed.example@127.0.0.1/")
    assert "fragment" in rejected("https://127.0.0.1#@allowed.example/")
    odd = rejected("https://0x7f.1/")
    assert "127.0.0.1" in odd and "non-standard form" in odd
    assert "is empty" in rejected("https://x/", AllowedHosts.from_setting(None))


@pytest.mark.parametrize(
    "addresses",
    [
        ["10.0.0.5"],
        ["127.0.0.1"],
        ["169.254.169.254"],
        ["172.20.1.1"],
        ["192.168.0.10"],
        ["100.64.1.1"],
        ["0.0.0.0"],
        ["224.0.0.1"],
        ["240.0.0.1"],
        ["255.255.255.255"],
        ["::1"],
        ["::"],
        ["fe80::1%eth0"],
        ["fc00::1"],
        ["fec0::1"],
        ["::ffff:10.0.0.1"],
        ["::ffff:8.8.8.8"],
        ["2002:a00:1::1"],  # 6to4 around 10.0.0.1
        ["2002:a9fe:a9fe::1"],  # 6to4 around 169.254.169.254
        ["64:ff9b::a9fe:a9fe"],  # NAT64 around 169.254.169.254
        ["64:ff9b:1::1"],
        ["2001:0:4136:e378:8000:63bf:3fff:fdd2"],  # Teredo
        ["2001:db8::1"],
        [PUBLIC_V4, "10.0.0.5"],  # one bad address is enough
        [PUBLIC_V6, "127.0.0.1"],
        ["not-an-address"],
        [],
    ],
)
def test_wildcard_name_resolving_to_a_non_public_address_is_rejected(addresses: list[str]) -> None:
    resolve = fake_resolver({"x.logic.azure.com": addresses})
    reason = rejected("https://x.logic.azure.com/callback?sig=abc", resolve=resolve)
    assert "x.logic.azure.com" in reason


def test_allowlisted_public_names_are_accepted() -> None:
    for url in [
        "https://allowed.example/",
        "https://allowed.example/hook?x=1&y=%20",
        "https://ALLOWED.Example./hook",
        "HTTPS://allowed.example:9443/",
        "https://hooks.example.com:8443/hook",
        "https://prod-01.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sp=%2F&sig=x",
        "https://a.b.logic.azure.com/",
    ]:
        assert check_callback_url(url, ALLOWED, resolve=PUBLIC_DNS) == url


def test_exact_entries_need_no_resolution_and_may_be_any_address() -> None:
    def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError("an exact entry must not be resolved")

    allowed = AllowedHosts.from_setting("127.0.0.1, [::1], localhost:7071, internal.example")
    for url in ["https://127.0.0.1/", "https://127.0.0.1:8443/x", "https://[::1]/", "https://[0:0::1]:9/",
                "https://localhost:7071/", "https://internal.example/"]:  # fmt: skip
        assert check_callback_url(url, allowed, resolve=no_dns) == url
    rejected("https://localhost:7072/", allowed, no_dns)
    rejected("https://127.1/", allowed, no_dns)  # odd forms only when listed as written
    rejected("https://0x7f000001/", allowed, no_dns)


def test_odd_ipv4_forms_are_accepted_only_when_listed_as_written() -> None:
    allowed = AllowedHosts.from_setting("0x7f.1")
    assert check_callback_url("https://0x7f.1/", allowed) == "https://0x7f.1/"
    rejected("https://127.0.0.1/", allowed)
    rejected("https://127.1/", allowed)


def test_wildcards_match_subdomains_only() -> None:
    allowed = AllowedHosts.from_setting("*.test")
    resolve = fake_resolver({"a.test": [PUBLIC_V4], "b.a.test": [PUBLIC_V4], "test": [PUBLIC_V4]})
    assert check_callback_url("https://a.test/", allowed, resolve=resolve)
    assert check_callback_url("https://b.a.test/", allowed, resolve=resolve)
    rejected("https://test/", allowed, resolve)
    rejected("https://atest/", allowed, resolve)


def test_internationalised_names_are_normalised() -> None:
    allowed = AllowedHosts.from_setting("bücher.example")
    resolve = fake_resolver({})
    assert check_callback_url("https://xn--bcher-kva.example/", allowed, resolve=resolve)
    assert check_callback_url("https://BÜCHER.example/", allowed, resolve=resolve)
    rejected("https://bucher.example/", allowed, resolve)


@pytest.mark.parametrize(
    "setting",
    ["https://x.example", "x.example/path", "*", "*.", "a.*.example", "*x.example", "::1", "x.example:0",
     "x.example:http", "*.10.0.0.1", "user@x.example", "x example", "[::1", "x..example", "1.2.3.4.5"],
)  # fmt: skip
def test_malformed_setting_entries_raise_a_clear_error(setting: str) -> None:
    with pytest.raises(ValueError, match="JOBS_CALLBACK_ALLOWED_HOSTS entry"):
        AllowedHosts.from_setting(f"ok.example, {setting}")


def test_setting_parsing() -> None:
    assert not AllowedHosts.from_setting(None)
    assert not AllowedHosts.from_setting(" , ")
    allowed = AllowedHosts.from_setting(" Hooks.Example.com. ,*.Logic.Azure.com,[::1]:8443 ")
    assert [str(e) for e in allowed.entries] == ["hooks.example.com", "*.logic.azure.com", "[::1]:8443"]
    assert allowed.match("hooks.example.com") == "exact"
    assert allowed.match("x.logic.azure.com", 8443) == "wildcard"
    assert allowed.match("[::1]", 8443) == "exact"
    assert allowed.match("[::1]") is None


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789abcdefxX.", min_size=1, max_size=24))
def test_ipv4_parsing_agrees_with_inet_aton(text: str) -> None:
    """Every string the system resolver reads as an IPv4 address is read as that same address here."""
    try:
        theirs = socket.inet_aton(text)
    except OSError:
        return
    ours = callback_urls._parse_inet_aton(text)
    assert ours is not None and ours.packed == theirs


PROPERTY_ALLOWED = AllowedHosts.from_setting("allowed.example, *.logic.azure.com, 127.0.0.1")
PROPERTY_DNS = fake_resolver({"x.logic.azure.com": [PUBLIC_V4], "y.logic.azure.com": ["10.1.2.3"]})
_PIECES = st.sampled_from(
    ["https://", "http://", "https:", "//", "allowed.example", "x.logic.azure.com", "y.logic.azure.com",
     "logic.azure.com", "127.0.0.1", "127.1", "0x7f.1", "[::1]", "@", ":", ":443", ":0", "#", "?", "/", "\\",
     "%2e", "%40", ".", "..", " ", "\t", "\n", "\x00", "\uff41", "\u3002", "evil.com", "user:pw@", "[", "]", "*."]
)  # fmt: skip


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=80), st.lists(_PIECES, max_size=10).map("".join)))
def test_any_text_is_either_a_safe_url_or_rejected(text: str) -> None:
    try:
        result = check_callback_url(text, PROPERTY_ALLOWED, resolve=PROPERTY_DNS)
    except CallbackUrlRejected as exc:
        assert exc.reason.startswith("callbackUrl ")
        return
    assert result == text
    # Where would requests really connect? Prepare the URL as requests does and read the host urllib3 uses.
    prepared = PreparedRequest()
    prepared.prepare_url(result, None)
    parsed = parse_url(prepared.url or "")
    assert parsed.scheme == "https"
    assert parsed.auth is None
    assert parsed.host is not None
    assert PROPERTY_ALLOWED.match(parsed.host, parsed.port) is not None
    assert parsed.host.rstrip(".") in {"allowed.example", "x.logic.azure.com", "127.0.0.1"}


# ------------------------------------------------------------------------------------------------------------
# Connect-time checks with real sockets


class CountingListener:
    """A TCP listener on 127.0.0.1 that counts accepted connections (and closes them)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self.accepted = 0
        self.cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.close()
            with self.cond:
                self.accepted += 1
                self.cond.notify_all()

    def wait_for_connections(self, count: int, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.accepted >= count, timeout)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[CountingListener]:
    server = CountingListener()
    try:
        yield server
    finally:
        server.close()


def test_dns_rebinding_is_refused_at_connect_time_before_any_connection(listener: CountingListener) -> None:
    allowed = AllowedHosts.from_setting("*.test")
    url = f"https://rebind.test:{listener.port}/hook"
    # At intake the name looks public ...
    assert check_callback_url(url, allowed, resolve=fake_resolver({"rebind.test": [PUBLIC_V4]})) == url
    # ... and when the event is sent it resolves to loopback.
    session = guarded_session(allowed, resolve=fake_resolver({"rebind.test": ["127.0.0.1"]}))
    with pytest.raises(CallbackUrlRejected) as caught:
        session.post(url, data=b'{"secret": "event"}', timeout=2)
    assert caught.value.reason == "callbackUrl host 'rebind.test' resolves to 127.0.0.1, a loopback address"
    assert not listener.wait_for_connections(1, timeout=0.3)
    assert listener.accepted == 0
    # Control: the listener does count a real connection, so the zero above means something.
    socket.create_connection(("127.0.0.1", listener.port), timeout=2).close()
    assert listener.wait_for_connections(1, timeout=5)


def test_module_default_resolver_is_used_at_connect_time(
    listener: CountingListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(callback_urls, "default_resolve", fake_resolver({"rebind.test": [PUBLIC_V4, "127.0.0.1"]}))
    session = guarded_session(AllowedHosts.from_setting("*.test"))
    with pytest.raises(CallbackUrlRejected, match=r"127\.0\.0\.1, a loopback address"):
        session.post(f"https://rebind.test:{listener.port}/", data=b"x", timeout=2)
    assert not listener.wait_for_connections(1, timeout=0.2)


def test_guarded_session_refuses_unlisted_and_plain_http_urls(listener: CountingListener) -> None:
    session = guarded_session(AllowedHosts.from_setting("127.0.0.1"))
    with pytest.raises(CallbackUrlRejected, match="must use https"):
        session.post(f"http://127.0.0.1:{listener.port}/", data=b"x", timeout=2)
    with pytest.raises(CallbackUrlRejected, match="non-standard form"):
        session.post(f"https://0x7f.1:{listener.port}/", data=b"x", timeout=2)
    with pytest.raises(CallbackUrlRejected, match="not listed"):
        session.post(f"https://localhost:{listener.port}/", data=b"x", timeout=2)
    assert not listener.wait_for_connections(1, timeout=0.2)


def test_peer_address_is_verified_after_connect(listener: CountingListener, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the socket ends up connected elsewhere than the checked address, nothing is sent on it."""
    real_create_connection = callback_urls.urllib3_connection.create_connection

    def misrouted(address: tuple[str, int], *args: object, **kwargs: object) -> socket.socket:
        return real_create_connection(("127.0.0.1", listener.port), *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(callback_urls.urllib3_connection, "create_connection", misrouted)
    session = guarded_session(AllowedHosts.from_setting("*.test"), resolve=fake_resolver({"public.test": [PUBLIC_V4]}))
    with pytest.raises(CallbackUrlRejected, match=r"connected to 127\.0\.0\.1"):
        session.post(f"https://public.test:{listener.port}/", data=b"x", timeout=2)


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[tuple[WebhookReceiver, str]]:
    certfile, keyfile = make_self_signed_cert(tmp_path, ["localhost"])
    with WebhookReceiver(tls=(certfile, keyfile)) as receiver:
        yield receiver, certfile


def test_guarded_session_delivers_to_an_exact_listed_loopback_receiver(
    tls_receiver: tuple[WebhookReceiver, str],
) -> None:
    receiver, certfile = tls_receiver
    session = guarded_session(AllowedHosts.from_setting("127.0.0.1"))
    response = session.post(receiver.url, json={"ok": True}, timeout=5, verify=certfile)
    assert response.status_code == 200
    assert receiver.delivered()[0].json() == {"ok": True}


def test_guarded_session_keeps_the_name_for_sni_and_certificate_checks(
    tls_receiver: tuple[WebhookReceiver, str],
) -> None:
    receiver, certfile = tls_receiver
    resolve = fake_resolver({"localhost": ["127.0.0.1"]})
    session = guarded_session(AllowedHosts.from_setting(f"localhost:{receiver.port}"), resolve=resolve)
    response = session.post(f"https://localhost:{receiver.port}/cb", data=b"{}", timeout=5, verify=certfile)
    assert response.status_code == 200
    assert receiver.requests[0].headers["host"] == f"localhost:{receiver.port}"
    # A name the certificate does not cover fails certificate verification, although it resolves to the same place.
    other = guarded_session(
        AllowedHosts.from_setting("other.test"), resolve=fake_resolver({"other.test": ["127.0.0.1"]})
    )
    with pytest.raises(requests.exceptions.SSLError):
        other.post(f"https://other.test:{receiver.port}/cb", data=b"{}", timeout=5, verify=certfile)


def test_guarded_session_does_not_follow_redirects(tls_receiver: tuple[WebhookReceiver, str]) -> None:
    receiver, certfile = tls_receiver
    # The trap is an allowed host too (127.0.0.1, any port): only the refusal to follow keeps the request off it.
    with WebhookReceiver(tls=(certfile, certfile.replace("-cert.pem", "-key.pem"))) as trap:
        receiver.respond_with(307, 308, headers={"Location": f"{trap.url}/stolen"})
        session = guarded_session(AllowedHosts.from_setting("127.0.0.1"))
        for expected in (307, 308):
            response = session.post(receiver.url, data=b"{}", timeout=5, verify=certfile)  # redirects allowed
            assert response.status_code == expected
            assert response.headers["Location"] == f"{trap.url}/stolen"
        assert len(receiver.requests) == 2
        assert trap.connections == 0 and trap.requests == []


def test_rejection_is_fast(listener: CountingListener) -> None:
    started = time.monotonic()
    session = guarded_session(AllowedHosts.from_setting("*.test"), resolve=fake_resolver({"r.test": ["10.0.0.1"]}))
    with pytest.raises(CallbackUrlRejected):
        session.get(f"https://r.test:{listener.port}/", timeout=2)
    assert time.monotonic() - started < 1.5


# -- Exact reasons, the resolver and address edge cases: every refusal names its cause in full ---------------------


def test_the_default_resolver_asks_for_tcp_and_keeps_each_address_once_in_resolver_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[tuple[Any, ...]] = []

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        asked.append((host, port, args, kwargs))
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2001:db8::1", port, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("203.0.113.7", port)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2001:db8::1", port, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("198.51.100.2", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    assert callback_urls.default_resolve("hooks.example.com", 8443) == ["2001:db8::1", "203.0.113.7", "198.51.100.2"]
    assert asked == [("hooks.example.com", 8443, (), {"type": socket.SOCK_STREAM})]


def test_the_default_resolver_lets_a_resolver_error_through(monkeypatch: pytest.MonkeyPatch) -> None:
    def getaddrinfo(*_: Any, **__: Any) -> list[tuple[Any, ...]]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(socket.gaierror):
        callback_urls.default_resolve("nowhere.invalid", 443)


def test_a_host_listed_with_port_443_matches_a_url_without_a_port() -> None:
    allowed = callback_urls.AllowedHosts.from_setting("hooks.example.com:443")
    assert allowed.match("hooks.example.com") == "exact"
    assert allowed.match("hooks.example.com", 8443) is None


def wildcard_check(address: str) -> str:
    allowed = callback_urls.AllowedHosts.from_setting("*.example.com")
    return callback_urls.check_callback_url("https://hooks.example.com/x", allowed, resolve=lambda _h, _p: [address])


def test_the_well_known_nat64_prefix_is_judged_by_the_ipv4_address_it_carries() -> None:
    assert wildcard_check("64:ff9b::808:808") == "https://hooks.example.com/x"  # 8.8.8.8 behind DNS64
    with pytest.raises(callback_urls.CallbackUrlRejected) as info:
        wildcard_check("64:ff9b::7f00:1")
    assert "a loopback address (127.0.0.1) embedded in an IPv6 address" in str(info.value)


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("::ffff:8.8.8.8", "an IPv4-mapped IPv6 address"),
        ("64:ff9b:1::808:808", "a local-use NAT64 address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("127.0.0.1", "a loopback address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("fec0::1", "a site-local address"),
        ("240.0.0.1", "a reserved address"),
        ("10.0.0.1", "a private address"),
        ("fd00::1", "a private address"),
        ("64:ff9b::a00:1", "a private address (10.0.0.1) embedded in an IPv6 address"),
        ("2002:7f00:1::", "a loopback address (127.0.0.1) embedded in an IPv6 address"),
        ("8.8.8.8", None),
        ("2620:4f:8000::1", None),
    ],
)
def test_each_address_problem_is_named(address: str, problem: str | None) -> None:
    assert callback_urls.address_problem(ipaddress.ip_address(address)) == problem


def resolving(outcome: BaseException | list[str]) -> tuple[str, str, list[tuple[str, int]]]:
    """How check_callback_url judges a wildcard-matched URL on port 8443 when resolving it gives ``outcome``."""
    asked: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    allowed = callback_urls.AllowedHosts.from_setting("*.example.com")
    try:
        checked = callback_urls.check_callback_url("https://hooks.example.com:8443/x", allowed, resolve=resolve)
        return "ok", checked, asked
    except (callback_urls.CallbackUrlRejected, callback_urls.CallbackUrlUnverified) as exc:
        return type(exc).__name__, str(exc), asked


HOST = "callbackUrl host 'hooks.example.com'"


def test_resolution_outcomes_are_verdicts_or_retries_each_with_its_reason() -> None:
    assert resolving(socket.gaierror(socket.EAI_NONAME, "Name or service not known")) == (
        "CallbackUrlRejected", f"{HOST} does not resolve ([Errno -2] Name or service not known)",
        [("hooks.example.com", 8443)],
    )
    assert resolving(socket.gaierror(socket.EAI_AGAIN, "Temporary failure"))[:2] == (
        "CallbackUrlUnverified", f"{HOST} could not be resolved just now ([Errno -3] Temporary failure)",
    )
    assert resolving(UnicodeError("label too long"))[:2] == (
        "CallbackUrlRejected", f"{HOST} does not resolve (label too long)",
    )
    assert resolving(TimeoutError("timed out"))[:2] == (
        "CallbackUrlUnverified", f"{HOST} could not be resolved just now (timed out)",
    )
    assert resolving([])[:2] == ("CallbackUrlRejected", f"{HOST} does not resolve")
    assert resolving(["8.8.8.8"])[:2] == ("ok", "https://hooks.example.com:8443/x")


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("0x7f.0.0.1", "127.0.0.1"),
        ("0x.1", "0.0.0.1"), ("0x", "0.0.0.0"), ("00", "0.0.0.0"), ("0", "0.0.0.0"), ("8", "0.0.0.8"),
        ("0.0.0.0377", "0.0.0.255"), ("1.2.3.04", "1.2.3.4"), ("1.2.3", "1.2.0.3"), ("1.2.0xffff", "1.2.255.255"),
        ("1.0xffffff", "1.255.255.255"), ("255.1", "255.0.0.1"), ("4294967295", "255.255.255.255"),
        ("1.2.3.0xff", "1.2.3.255"), ("255.255.255.255", "255.255.255.255"),
        ("1.2.3.4.5", None), ("08.1.1.1", None), ("09", None), ("256.1", None), ("1.256.0.1", None),
        ("1.2.65536", None), ("1.16777216", None), ("4294967296", None), ("1.2.3.256", None), ("1.2.3.0x100", None),
        ("1..2", None),
    ],
)
def test_inet_aton_spellings_are_read_as_the_c_library_reads_them(text: str, address: str | None) -> None:
    parsed = callback_urls._parse_inet_aton(text)
    assert (None if parsed is None else str(parsed)) == address


def test_a_scoped_ipv6_address_is_read_without_its_zone() -> None:
    assert str(callback_urls._parse_address("fe80::1%eth0")) == "fe80::1"
    assert str(callback_urls._parse_address("fe80::1%25eth0%x")) == "fe80::1"


NOT_A_HOST = "is not valid: give a host name or IP literal, optionally with :port (no scheme or path)"


BAD_WILDCARD = "is not valid: a wildcard must be a leading '*.' followed by a domain, as in *.logic.azure.com"


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("https://x.example", NOT_A_HOST), ("x.example/path", NOT_A_HOST), ("a b", NOT_A_HOST),
        ("x.example?q", NOT_A_HOST), ("x.example#f", NOT_A_HOST), ("u@x.example", NOT_A_HOST),
        ("x\\y", NOT_A_HOST), ("x\x00y", NOT_A_HOST),
        ("*x.example", BAD_WILDCARD), ("x.*.example", BAD_WILDCARD),
        ("::1", "is not valid: write IPv6 addresses in brackets, as in [::1]"),
        ("[::1", "is not valid: the host has unbalanced brackets"),
        ("[::1]x", "is not valid: the host has text after the IPv6 address"),
        ("[zz]", "is not valid: the host is not a valid IPv6 address"),
        ("[::1%eth0]", "is not valid: the host is percent-encoded or carries an IPv6 zone"),
        ("x%41.example", "is not valid: the host is percent-encoded or carries an IPv6 zone"),
        ("*.127.0.0.1", "is not valid: a wildcard must name a domain, not an IP address"),
        ("x.example:0", "is not valid: the host has an invalid port '0'"),
        ("x.example:65536", "is not valid: the host has an invalid port '65536'"),
        ("x.example:123456", "is not valid: the host has an invalid port '123456'"),
        ("x.example:abc", "is not valid: the host has an invalid port 'abc'"),
        ("[::1]:99999", "is not valid: the host has an invalid port '99999'"),
        ("-bad-.example", "is not valid: the host is not a valid host name"),
        ("x..example", "is not valid: the host is not a valid host name"),
        ("a" * 254, "is not valid: the host is longer than 253 characters"),
    ],
)
def test_each_wrong_allowed_host_gets_its_whole_line(entry: str, problem: str) -> None:
    with pytest.raises(ValueError) as info:
        callback_urls.AllowedHosts.from_setting(entry)
    assert str(info.value) == f"JOBS_CALLBACK_ALLOWED_HOSTS entry {entry!r} {problem}"


LONGEST = "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 61  # 253 characters


@pytest.mark.parametrize(
    ("entry", "shown"),
    [("x.example:65535", "x.example:65535"), ("x.example:1", "x.example:1"), ("é.example", "xn--9ca.example"),
     ("[::1]", "[::1]"), ("[0:0::1]:8443", "[::1]:8443"), (LONGEST, LONGEST)],
)
def test_valid_allowed_hosts_are_kept_normalised(entry: str, shown: str) -> None:
    assert [str(e) for e in callback_urls.AllowedHosts.from_setting(entry).entries] == [shown]


LISTED_HOSTS_SETTING = "*.example.com,hooks.example.com,[::1],127.0.0.1"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.1/x",
         "callbackUrl host '127.1' is the IP address 127.0.0.1 written in a non-standard form and is not listed in "
         "JOBS_CALLBACK_ALLOWED_HOSTS as written"),
        ("https://hooks.example.com/" + "x" * 2048, "callbackUrl is longer than 2048 characters"),
        ("https://hooks.example.com\\@evil/x", "callbackUrl contains a backslash"),
        ("https://[::1/x", "callbackUrl is not a valid URL (Invalid IPv6 URL)"),
        ("https://[::1]x/x", "callbackUrl host '[::1]x' has text after the IPv6 address"),
        ("https://hooks.example.com:0/x", "callbackUrl host 'hooks.example.com:0' has an invalid port '0'"),
        ("http://hooks.example.com/x", "callbackUrl must use https"),
        ("https://nope.other/x", "callbackUrl host 'nope.other' is not listed in JOBS_CALLBACK_ALLOWED_HOSTS"),
        ("https://nope.other:8443/x",
         "callbackUrl host 'nope.other' with port 8443 is not listed in JOBS_CALLBACK_ALLOWED_HOSTS"),
        ("https:///x", "callbackUrl has no host"),
        ("https://%68ooks.example.com/x",
         "callbackUrl host '%68ooks.example.com' is percent-encoded or carries an IPv6 zone"),
    ],
)
def test_each_refused_callback_url_gets_its_whole_reason(url: str, reason: str) -> None:
    allowed = callback_urls.AllowedHosts.from_setting(LISTED_HOSTS_SETTING)
    with pytest.raises(callback_urls.CallbackUrlRejected) as info:
        callback_urls.check_callback_url(url, allowed, resolve=lambda _h, _p: ["8.8.8.8"])
    assert str(info.value) == reason == info.value.reason


def test_listed_callback_urls_pass_as_written() -> None:
    allowed = callback_urls.AllowedHosts.from_setting(LISTED_HOSTS_SETTING)
    for url in ("https://HOOKS.example.com/x", "https://[::1]/x", "https://[0:0::1]/x", "https://a.example.com:443/x",
                "https://hooks.example.com/" + "x" * (2048 - len("https://hooks.example.com/"))):
        assert callback_urls.check_callback_url(url, allowed, resolve=lambda _h, _p: ["8.8.8.8"]) == url
