"""One setting: its declaration (``Setting``), the parsers that check a value, and ``ConfigError``.

A parser turns a setting's text (stripped, never blank) into its value or raises ``ConfigError`` with one line
naming the setting; its ``accepts`` says in a few words what it takes (its bounds), for the README table.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = ["ApiVersion", "Choice", "ConfigError", "Custom", "Number", "OrOff", "Parser", "QueueName", "Setting",
           "Switch", "TableName", "Text", "bare_url", "is_loopback"]


class ConfigError(ValueError):
    """A setting with a wrong value. The message names the setting."""


class Parser:
    """Reads one setting: its text when it is set and not blank, else its default, else ``unset``."""

    accepts = ""
    unset: Any = None

    def __call__(self, name: str, text: str) -> Any:
        raise NotImplementedError

    def read(self, setting: Setting, env: Mapping[str, str]) -> Any:
        text = (env.get(setting.name) or "").strip()
        if text:
            return self(setting.name, text)
        return self.unset if setting.default is None else self(setting.name, setting.default)


@dataclass(frozen=True)
class Setting:
    """One application setting, declared once: the README table, ``--help`` and ``Settings`` come from it."""

    name: str
    attribute: str | None  # the ``Settings`` attribute it fills; None: a provider's api-version, or read elsewhere
    parse: Parser
    default: str | None  # as an operator writes it, parsed like any value; None: ``parse.unset``
    doc: str  # one line, Markdown
    shown: str | None = None  # the default as the tables show it when it is not a value (required, derived)

    def read(self, env: Mapping[str, str]) -> Any:
        return self.parse.read(self, env)

    @property
    def default_text(self) -> str:
        """The default for a table: the value in backticks, ``shown``, or ``none``."""
        return f"`{self.default}`" if self.default is not None else self.shown or "none"


@dataclass(frozen=True)
class Number(Parser):
    """A number within ``minimum`` and ``maximum``; ``why`` says what sets the maximum. Every numeric setting has
    both (tests/unit/test_config.py checks it): a value the code cannot use (hours that overflow a date, a delay
    longer than a queue can hide a message) is refused at start-up, naming the setting, the value and the range."""

    minimum: float
    whole: bool = False
    maximum: float | None = None
    why: str = ""  # why the maximum

    @property
    def accepts(self) -> str:
        kind = "whole number" if self.whole else "number"
        return f"{kind}, {self.minimum:g} to {self.maximum:g}" if self.maximum is not None else \
            f"{kind} from {self.minimum:g}"

    @property
    def _range(self) -> str:
        if self.maximum is None:
            return f"at least {self.minimum:g}"
        return f"at least {self.minimum:g} and at most {self.maximum:g}" + (f" ({self.why})" if self.why else "")

    def __call__(self, name: str, text: str) -> int | float:
        try:
            value = int(text) if self.whole else float(text)
        except ValueError:
            kind = "a whole number" if self.whole else "a number"
            upto = f" to {self.maximum:g}" if self.maximum is not None else ""
            raise ConfigError(f"{name} must be {kind} from {self.minimum:g}{upto}, got {text!r}") from None
        if value != value or value < self.minimum or value == float("inf") or (
            self.maximum is not None and value > self.maximum
        ):
            raise ConfigError(f"{name} must be {self._range}, got {text!r}")
        return value


@dataclass(frozen=True)
class Choice(Parser):
    """One of a few words, in any case; the word as declared."""

    choices: tuple[str, ...]

    @property
    def accepts(self) -> str:
        return ", ".join(f"`{choice}`" for choice in self.choices)

    def __call__(self, name: str, text: str) -> str:
        value = next((choice for choice in self.choices if choice.lower() == text.lower()), None)
        if value is None:
            raise ConfigError(f"{name} must be one of {', '.join(self.choices)}, got {text!r}")
        return value


class Switch(Choice):
    """``on`` or ``off``, as a bool."""

    def __init__(self) -> None:
        super().__init__(("on", "off"))

    def __call__(self, name: str, text: str) -> bool:
        return super().__call__(name, text) == "on"


_QUEUE_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")
_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")


@dataclass(frozen=True)
class QueueName(Parser):
    suffix_room: int = 0  # room left for the longest name derived from it

    @property
    def accepts(self) -> str:
        return f"queue name, 3-{63 - self.suffix_room} characters"

    def __call__(self, name: str, text: str) -> str:
        if not _QUEUE_NAME.match(text) or len(text) > 63 - self.suffix_room:
            raise ConfigError(f"{name} {text!r} is not a queue name (3-{63 - self.suffix_room} lower-case letters, "
                              "digits and single hyphens)")
        return text


@dataclass(frozen=True)
class OrOff(Parser):
    """Set but blank: off (None); unset: the default."""

    inner: Parser

    @property
    def accepts(self) -> str:
        return f"{self.inner.accepts}; empty: off"

    def __call__(self, name: str, text: str) -> Any:
        return self.inner(name, text)

    def read(self, setting: Setting, env: Mapping[str, str]) -> Any:
        raw = env.get(setting.name)
        return None if raw is not None and not raw.strip() else super().read(setting, env)


class TableName(Parser):
    accepts = "table name, 3-63 characters"

    def __call__(self, name: str, text: str) -> str:
        if not _TABLE_NAME.match(text):
            raise ConfigError(f"{name} {text!r} is not a table name (3-63 letters and digits, starting with a letter)")
        return text


class ApiVersion(Parser):
    accepts = "`YYYY-MM-DD`, `-preview` allowed"

    def __call__(self, name: str, text: str) -> str:
        if not _API_VERSION.match(text):
            raise ConfigError(f"{name} {text!r} is not an api-version (YYYY-MM-DD)")
        return text


class Text(Parser):
    accepts = "text"

    def __call__(self, name: str, text: str) -> str:
        return text


@dataclass(frozen=True)
class Custom(Parser):
    """A parser of one setting's own: ``check(name, text)`` returns the value or raises ``ConfigError``."""

    check: Callable[[str, str], Any]
    accepts: str = ""
    unset: Any = None

    def __call__(self, name: str, text: str) -> Any:
        return self.check(name, text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bare_url(name: str, text: str, example: str) -> str:
    """``text`` as a bare https URL (no path, query or user), http only for a loopback host."""
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number from 0 to 65535
    except ValueError:
        raise ConfigError(f"{name} {text!r} has an invalid port") from None
    if (
        parts.scheme not in ("https", "http") or not parts.hostname or parts.path.strip("/") or parts.query
        or parts.fragment or "#" in text or parts.username is not None or parts.password is not None
    ):
        raise ConfigError(f"{name} {text!r} must be a bare https URL such as {example}")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(f"{name} {text!r} may use http only for a loopback host (the simulator)")
    return text.rstrip("/")
