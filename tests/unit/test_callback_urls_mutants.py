"""Callback URL guard: what mutation testing (`make mutation`) showed no test pinned down."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from jobs.webhooks import callback_urls


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


ALLOWED = "*.example.com,hooks.example.com,[::1],127.0.0.1"


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
    allowed = callback_urls.AllowedHosts.from_setting(ALLOWED)
    with pytest.raises(callback_urls.CallbackUrlRejected) as info:
        callback_urls.check_callback_url(url, allowed, resolve=lambda _h, _p: ["8.8.8.8"])
    assert str(info.value) == reason == info.value.reason


def test_listed_callback_urls_pass_as_written() -> None:
    allowed = callback_urls.AllowedHosts.from_setting(ALLOWED)
    for url in ("https://HOOKS.example.com/x", "https://[::1]/x", "https://[0:0::1]/x", "https://a.example.com:443/x",
                "https://hooks.example.com/" + "x" * (2048 - len("https://hooks.example.com/"))):
        assert callback_urls.check_callback_url(url, allowed, resolve=lambda _h, _p: ["8.8.8.8"]) == url
