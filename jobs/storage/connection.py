"""``AzureWebJobsStorage`` as the Functions host reads it: a connection string (Azurite's
``UseDevelopmentStorage=true`` included) or identity-based service URIs, checked once at start-up so that the
app's own queue and table clients (``jobs.storage.account``) reach the same account as its triggers.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from jobs.setting import ConfigError

__all__ = ["AZURITE_ACCOUNT_KEY", "AZURITE_CONNECTION_STRING", "StorageSettings"]

AZURITE_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
AZURITE_CONNECTION_STRING = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    f"AccountKey={AZURITE_ACCOUNT_KEY};"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)


@dataclass(frozen=True)
class StorageSettings:
    """``AzureWebJobsStorage`` as the Functions host reads it: a connection string or identity-based URIs.

    Setting names are case-insensitive, as app settings are (``AzureWebJobsStorage__accountname`` works). A
    connection string is checked key by key, the way the host and the storage SDKs parse it: known keys only
    (in any case), each once and with a value, a base64 ``AccountKey``, and a way to reach both the queue and the
    table service with a key or a SAS. Identity-based settings need ``__accountName``, or both
    ``__queueServiceUri`` and ``__tableServiceUri``.
    """

    connection_string: str | None = field(default=None, repr=False)
    queue_service_uri: str | None = None
    table_service_uri: str | None = None
    credential: str | None = None  # "managedidentity" or None (DefaultAzureCredential)
    client_id: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str], name: str = "AzureWebJobsStorage") -> StorageSettings:
        value, parts = _storage_settings(env, name)
        if value:
            return cls(connection_string=_connection_string(name, value))
        if not parts:
            raise ConfigError(
                f"{name} is required: a connection string, UseDevelopmentStorage=true, {name}__accountName, "
                f"or {name}__queueServiceUri and {name}__tableServiceUri"
            )

        def part(key: str) -> tuple[str, str]:
            return parts.get(key.lower(), (f"{name}__{key}", ""))

        (account_setting, account), (queue_setting, queue_uri), (table_setting, table_uri) = (
            part("accountName"), part("queueServiceUri"), part("tableServiceUri")
        )
        if account:
            if not _ACCOUNT_NAME.match(account):
                raise ConfigError(f"{account_setting} {account!r} is not a storage account name "
                                  "(3-24 lower-case letters and digits)")
            queue_uri = queue_uri or f"https://{account}.queue.core.windows.net"
            table_uri = table_uri or f"https://{account}.table.core.windows.net"
        elif queue_uri and not table_uri:
            raise ConfigError(f"{queue_setting} is set but {table_setting} is not: set both, or {name}__accountName")
        elif table_uri and not queue_uri:
            raise ConfigError(f"{table_setting} is set but {queue_setting} is not: set both, or {name}__accountName")
        elif not queue_uri:
            given = ", ".join(setting for setting, _ in parts.values())
            raise ConfigError(
                f"{given} alone cannot reach the queues and the table: {name} needs {name}__accountName, "
                f"or {name}__queueServiceUri and {name}__tableServiceUri"
            )
        for setting, uri in ((queue_setting, queue_uri), (table_setting, table_uri)):
            if not _is_url(uri):
                raise ConfigError(f"{setting} {uri!r} is not an absolute URL")
        for key in ("blobServiceUri", "serviceUri"):
            setting, uri = part(key)
            if uri and not _is_url(uri):
                raise ConfigError(f"{setting} {uri!r} is not an absolute URL")
        credential_setting, credential_raw = part("credential")
        credential = credential_raw.lower() or None
        if credential not in (None, "managedidentity"):
            raise ConfigError(f"{credential_setting} must be 'managedidentity' or unset, got {credential_raw!r}")
        client_setting, client_id = part("clientId")
        if client_id and not _GUID.match(client_id):
            raise ConfigError(f"{client_setting} {client_id!r} is not a client id (a GUID)")
        return cls(
            queue_service_uri=queue_uri.rstrip("/"),
            table_service_uri=table_uri.rstrip("/"),
            credential=credential,
            client_id=client_id or None,
        )


# Identity-based AzureWebJobsStorage__* keys the tracker reads, as the Functions host spells them.
_IDENTITY_KEYS = {
    key.lower(): key
    for key in ("accountName", "blobServiceUri", "queueServiceUri", "tableServiceUri", "serviceUri", "credential",
                "clientId")
}
# Keys the host knows but the tracker's own queue and table clients cannot follow: they would reach storage as
# another identity than the triggers do.
_UNSUPPORTED_IDENTITY_KEYS = {
    key.lower(): key for key in ("managedIdentityResourceId", "tenantId", "clientSecret", "certificate")
}
# Connection string keys the Functions host accepts (key names are case-insensitive in Azure's parser).
_CONNECTION_KEYS = {
    key.lower(): key
    for key in ("DefaultEndpointsProtocol", "AccountName", "AccountKey", "EndpointSuffix", "BlobEndpoint",
                "QueueEndpoint", "TableEndpoint", "FileEndpoint", "SharedAccessSignature", "UseDevelopmentStorage",
                "DevelopmentStorageProxyUri")
}
_ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_ENDPOINT_SUFFIX = re.compile(rf"^{_DNS_LABEL}(?:\.{_DNS_LABEL})+$")
_KEY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


def _storage_settings(env: Mapping[str, str], name: str) -> tuple[str, dict[str, tuple[str, str]]]:
    """The connection string, and the identity-based keys by lower-case key: (setting as spelled, value).

    App settings are case-insensitive: any spelling of the name is found; two spellings with different values are
    a ``ConfigError`` naming both.
    """
    prefix = name.lower() + "__"
    values: dict[str, tuple[str, str]] = {}
    for setting, raw in env.items():
        lower = setting.lower()
        if lower != name.lower() and not lower.startswith(prefix):
            continue
        text = (raw or "").strip()
        if not text:
            continue
        if lower in values and values[lower][1] != text:
            raise ConfigError(f"{values[lower][0]} and {setting} are the same setting (names are case-insensitive) "
                              "with different values: keep one")
        values.setdefault(lower, (setting, text))
    connection = values.pop(name.lower(), None)
    if connection is not None:
        return connection[1], {}  # the host too reads a connection string when there is one
    parts: dict[str, tuple[str, str]] = {}
    for lower, (setting, text) in values.items():
        key = lower[len(prefix):]
        if key in _UNSUPPORTED_IDENTITY_KEYS:
            raise ConfigError(
                f"{setting} is not supported by the tracker: its own queue and table clients use "
                f"{name}__credential=managedidentity with {name}__clientId (or the default credential chain)"
            )
        if key not in _IDENTITY_KEYS:
            hint = _did_you_mean(key, _IDENTITY_KEYS.values(), f"{name}__")
            raise ConfigError(
                f"{setting} is not a setting of an identity-based connection{hint} (known: "
                + ", ".join(f"__{k}" for k in _IDENTITY_KEYS.values()) + ")"
            )
        parts[key] = (setting, text)
    return "", parts


def _connection_string(name: str, value: str) -> str:
    """The connection string, checked key by key; returned with blank parts and spaces around keys removed."""
    if value[0] in "\"'" or value[-1] in "\"'":
        raise ConfigError(f"{name} is in quotes: give the connection string without them")
    pairs: dict[str, str] = {}
    spelled: list[tuple[str, str]] = []
    for index, segment in enumerate(value.split(";"), start=1):
        if not segment.strip():
            continue
        key, eq, text = segment.partition("=")
        key, text = key.strip(), text.strip()
        if not eq:
            raise ConfigError(f"{name} is not a storage connection string: part {index} has no '=' "
                              "(expected Key=Value;... pairs)")
        canonical = _CONNECTION_KEYS.get(key.lower())
        if canonical is None:
            shown = repr(key) if _KEY_NAME.match(key) else f"in part {index}"
            hint = _did_you_mean(key, _CONNECTION_KEYS.values())
            raise ConfigError(f"{name} has an unknown connection string key {shown}{hint} (known: "
                              + ", ".join(_CONNECTION_KEYS.values()) + ")")
        if canonical in pairs:
            raise ConfigError(f"{name} gives {canonical} twice")
        if not text:
            raise ConfigError(f"{name} has an empty {canonical}")
        pairs[canonical] = text
        spelled.append((key, text))

    if "UseDevelopmentStorage" in pairs:
        if pairs["UseDevelopmentStorage"].lower() != "true":
            shown = pairs["UseDevelopmentStorage"][:20]
            raise ConfigError(f"{name} UseDevelopmentStorage must be 'true', got {shown!r}")
        others = sorted(set(pairs) - {"UseDevelopmentStorage", "DevelopmentStorageProxyUri"})
        if others:
            raise ConfigError(f"{name} UseDevelopmentStorage=true cannot be combined with {', '.join(others)}")
        return _development_storage(name, pairs.get("DevelopmentStorageProxyUri"))
    if "DevelopmentStorageProxyUri" in pairs:
        raise ConfigError(f"{name} has DevelopmentStorageProxyUri without UseDevelopmentStorage=true")

    protocol = pairs.get("DefaultEndpointsProtocol", "https")
    if protocol.lower() not in ("http", "https"):
        raise ConfigError(f"{name} DefaultEndpointsProtocol must be 'https' or 'http', got {protocol[:20]!r}")
    for key in ("BlobEndpoint", "QueueEndpoint", "TableEndpoint", "FileEndpoint"):
        if key in pairs and not _is_url(pairs[key]):
            raise ConfigError(f"{name} {key} {pairs[key].split('?', 1)[0][:200]!r} is not an absolute http(s) URL")
    suffix = pairs.get("EndpointSuffix")
    if suffix is not None and not _ENDPOINT_SUFFIX.match(suffix):
        raise ConfigError(f"{name} EndpointSuffix {suffix[:100]!r} is not a DNS suffix such as core.windows.net")

    account, key, sas = pairs.get("AccountName"), pairs.get("AccountKey"), pairs.get("SharedAccessSignature")
    if key is not None and sas is not None:
        raise ConfigError(f"{name} has both AccountKey and SharedAccessSignature: give one")
    if key is not None:
        if account is None:
            raise ConfigError(f"{name} has an AccountKey but no AccountName")
        try:
            base64.b64decode(key, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"{name} AccountKey is not base64 (cut short, quoted or mistyped?)") from None
    elif sas is not None:
        query = dict(part.partition("=")[::2] for part in sas.lstrip("?").split("&"))
        if not query.get("sig"):
            raise ConfigError(f"{name} SharedAccessSignature is not a SAS token (it has no sig=)")
        services = query.get("ss")
        if services is not None and not {"q", "t"} <= set(services):
            raise ConfigError(f"{name} SharedAccessSignature is an account SAS without queue and table access "
                              "(ss must include q and t)")
    else:
        raise ConfigError(f"{name} has no AccountKey or SharedAccessSignature: the tracker's queue and table "
                          f"clients need one (or use identity-based {name}__accountName)")
    for service, endpoint in (("queue", "QueueEndpoint"), ("table", "TableEndpoint")):
        if endpoint in pairs:
            continue
        if account is None:
            raise ConfigError(f"{name} cannot reach the {service} service: it has neither {endpoint} nor "
                              "AccountName (with EndpointSuffix outside Azure's public cloud)")
        if not _ACCOUNT_NAME.match(account):
            raise ConfigError(f"{name} AccountName {account[:30]!r} is not a storage account name "
                              f"(3-24 lower-case letters and digits), so it cannot name the {service} endpoint")
    # The SDKs split on ';' and '=' as they are: no spaces around keys, no empty parts.
    return ";".join(f"{k}={v}" for k, v in spelled) + (";" if value.rstrip().endswith(";") else "")


def _development_storage(name: str, proxy: str | None) -> str:
    """``UseDevelopmentStorage=true``: Azurite's well-known account, on loopback or behind
    ``DevelopmentStorageProxyUri`` (its scheme and host, the emulator's ports), as the Azure storage libraries
    expand it."""
    if proxy is None:
        return AZURITE_CONNECTION_STRING
    parts = urlsplit(proxy)
    if not _is_url(proxy):
        raise ConfigError(f"{name} DevelopmentStorageProxyUri {proxy[:200]!r} is not an absolute http(s) URL")
    host = f"[{parts.hostname}]" if ":" in str(parts.hostname) else parts.hostname
    base = f"{parts.scheme}://{host}"
    return (
        f"DefaultEndpointsProtocol={parts.scheme};AccountName=devstoreaccount1;AccountKey={AZURITE_ACCOUNT_KEY};"
        f"BlobEndpoint={base}:10000/devstoreaccount1;QueueEndpoint={base}:10001/devstoreaccount1;"
        f"TableEndpoint={base}:10002/devstoreaccount1;"
    )


def _did_you_mean(key: str, known: Iterable[str], prefix: str = "") -> str:
    if not _KEY_NAME.match(key):
        return ""
    lowered = {k.lower(): k for k in known}
    close = difflib.get_close_matches(key.lower(), list(lowered), n=1, cutoff=0.75)
    return f" (did you mean {prefix}{lowered[close[0]]}?)" if close else ""


def _is_url(value: str) -> bool:
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number from 0 to 65535
    except ValueError:
        return False
    return parts.scheme in ("https", "http") and bool(parts.hostname)

