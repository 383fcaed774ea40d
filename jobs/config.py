"""Settings: environment variables, which are the Function App's application settings.

``Settings.from_env()`` validates everything at start-up; a wrong value raises ``ConfigError`` whose message is one
line naming the setting and what is wrong with it.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from jobs.providers.cross_region_restore import DEFAULT_API_VERSION as DEFAULT_CRR_API_VERSION
from jobs.providers.recovery_services import DEFAULT_API_VERSION as DEFAULT_ARM_API_VERSION
from jobs.webhooks.callback_urls import AllowedHosts
from jobs.webhooks.sender import describe_url

__all__ = ["ConfigError", "Settings", "StorageSettings", "timer_schedule"]

AZURITE_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
AZURITE_CONNECTION_STRING = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    f"AccountKey={AZURITE_ACCOUNT_KEY};"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)
DEFAULT_ARM_ENDPOINT = "https://management.azure.com"
DEADLETTER_SUFFIX = "-deadletter"

_QUEUE_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")
_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")


POLL_STRATEGIES = ("vault", "job")


class ConfigError(ValueError):
    """A setting with a wrong value. The message names the setting."""


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


@dataclass(frozen=True)
class Settings:
    storage: StorageSettings
    intake_queue: str = "backup-jobs"
    results_queue: str | None = "backup-job-results"
    # Named after the results queue (after the intake queue when results are off), so two trackers on one account
    # never share it; JOBS_DEADLETTER_QUEUE names it outright.
    deadletter_queue: str = "backup-job-results" + DEADLETTER_SUFFIX
    table: str = "backupjobs"
    webhook_urls: tuple[str, ...] = field(default=(), repr=False)  # may carry keys or SAS signatures
    webhook_secret: str | None = field(default=None, repr=False)
    # Set when JOBS_WEBHOOK_SECRET is a Key Vault reference the platform has not resolved (then no secret): one
    # line saying so. Webhook deliveries are then retried, never sent unsigned; everything else works.
    webhook_secret_problem: str | None = None
    callback_allowed_hosts: AllowedHosts = field(default_factory=AllowedHosts)
    poll_seconds: int = 30
    max_tracking_hours: float = 72.0
    arm_endpoint: str = DEFAULT_ARM_ENDPOINT
    arm_api_version: str = DEFAULT_ARM_API_VERSION
    # The passive stamp's api-version (cross-region restore jobs): a service of its own, with its own versions.
    crr_api_version: str = DEFAULT_CRR_API_VERSION
    arm_token: str | None = field(default=None, repr=False)
    # Tunables beyond the contract (documented in the README).
    not_found_grace_seconds: float = 900.0
    max_poll_interval_seconds: float = 300.0
    list_threshold: int = 3
    # How the poll worker reads (JOBS_POLL_STRATEGY): "vault" lists each due vault once per round and keeps every
    # job of a vault on one shared schedule; "job" polls each job on its own age-based schedule.
    poll_strategy: str = "vault"
    # Azure Resource Graph as the detector of ended jobs (JOBS_RESOURCE_GRAPH), one query per round.
    resource_graph: bool = True
    resource_graph_api_version: str = "2024-04-01"
    # Due jobs a timer round polls itself rather than through the poll queue (JOBS_INLINE_POLL_MAX); 0: never.
    inline_poll_max: int = 100
    # Reads of the subscription's ARM bucket (250) the tracker leaves to other callers: jobs.arm.pacing.
    arm_read_reserve: int = 50
    delivery_retry_hours: float = 24.0
    delivery_first_retry_seconds: float = 10.0
    webhook_timeout_seconds: float = 15.0
    retention_days: float = 30.0  # ended jobs stay in the table this long, then the poll round sweeps them

    # Queues derived from the intake queue.
    @property
    def rejected_queue(self) -> str:
        return f"{self.intake_queue}-rejected"

    @property
    def poison_queue(self) -> str:
        return f"{self.intake_queue}-poison"

    @property
    def poll_queue(self) -> str:
        return f"{self.intake_queue}-poll"

    @property
    def deliver_queue(self) -> str:
        return f"{self.intake_queue}-deliver"

    def all_queues(self) -> list[str]:
        names = [self.intake_queue, self.rejected_queue, self.poll_queue, self.deliver_queue, self.deadletter_queue]
        names += [f"{name}-poison" for name in (self.intake_queue, self.poll_queue, self.deliver_queue)]
        if self.results_queue:
            names.append(self.results_queue)
        return names

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value is not None and value.strip() else None

        # Room for the longest derived name, "<intake>-deliver-poison".
        intake = _queue_name("JOBS_INTAKE_QUEUE", get("JOBS_INTAKE_QUEUE") or "backup-jobs", suffix_room=15)
        results_raw = env.get("JOBS_RESULTS_QUEUE")
        results = (
            "backup-job-results"
            if results_raw is None
            else (
                _queue_name("JOBS_RESULTS_QUEUE", results_raw.strip(), suffix_room=len(DEADLETTER_SUFFIX))
                if results_raw.strip() else None
            )
        )
        deadletter = _queue_name(
            "JOBS_DEADLETTER_QUEUE", get("JOBS_DEADLETTER_QUEUE") or f"{results or intake}{DEADLETTER_SUFFIX}"
        )
        table = get("JOBS_TABLE") or "backupjobs"
        if not _TABLE_NAME.match(table):
            raise ConfigError(
                f"JOBS_TABLE {table!r} is not a table name (3-63 letters and digits, starting with a letter)"
            )
        arm_endpoint = _arm_endpoint(get("ARM_ENDPOINT") or DEFAULT_ARM_ENDPOINT)
        api_version = get("JOBS_ARM_API_VERSION") or DEFAULT_ARM_API_VERSION
        if not _API_VERSION.match(api_version):
            raise ConfigError(f"JOBS_ARM_API_VERSION {api_version!r} is not an api-version (YYYY-MM-DD)")
        crr_api_version = get("JOBS_CRR_API_VERSION") or DEFAULT_CRR_API_VERSION
        if not _API_VERSION.match(crr_api_version):
            raise ConfigError(
                f"JOBS_CRR_API_VERSION {crr_api_version!r} is not an api-version (YYYY-MM-DD): the passive stamp's, "
                f"such as {DEFAULT_CRR_API_VERSION}"
            )
        secret = get("JOBS_WEBHOOK_SECRET")
        secret_problem = _unresolved_key_vault_reference("JOBS_WEBHOOK_SECRET", secret)
        if secret_problem is not None:
            secret = None
        elif secret is not None:
            _check_webhook_secret(secret)
        try:
            allowed = AllowedHosts.from_setting(get("JOBS_CALLBACK_ALLOWED_HOSTS"))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return cls(
            storage=StorageSettings.from_env(env),
            intake_queue=intake,
            results_queue=results,
            deadletter_queue=deadletter,
            table=table,
            webhook_urls=_webhook_urls(get("JOBS_WEBHOOK_URLS")),
            webhook_secret=secret,
            webhook_secret_problem=secret_problem,
            callback_allowed_hosts=allowed,
            poll_seconds=int(_number("JOBS_POLL_SECONDS", get("JOBS_POLL_SECONDS"), 30, whole=True, minimum=1)),
            max_tracking_hours=_number("JOBS_MAX_TRACKING_HOURS", get("JOBS_MAX_TRACKING_HOURS"), 72, minimum=0.0001),
            arm_endpoint=arm_endpoint,
            arm_api_version=api_version,
            crr_api_version=crr_api_version,
            arm_token=get("JOBS_ARM_TOKEN"),
            not_found_grace_seconds=_number(
                "JOBS_NOT_FOUND_GRACE_SECONDS", get("JOBS_NOT_FOUND_GRACE_SECONDS"), 900, minimum=0
            ),
            max_poll_interval_seconds=_number(
                "JOBS_MAX_POLL_INTERVAL_SECONDS", get("JOBS_MAX_POLL_INTERVAL_SECONDS"), 300, minimum=1
            ),
            list_threshold=int(
                _number("JOBS_LIST_THRESHOLD", get("JOBS_LIST_THRESHOLD"), 3, whole=True, minimum=1)
            ),
            poll_strategy=_choice("JOBS_POLL_STRATEGY", get("JOBS_POLL_STRATEGY"), POLL_STRATEGIES, "vault"),
            resource_graph=_choice("JOBS_RESOURCE_GRAPH", get("JOBS_RESOURCE_GRAPH"), ("on", "off"), "on") == "on",
            resource_graph_api_version=_api_version(
                "JOBS_RESOURCE_GRAPH_API_VERSION", get("JOBS_RESOURCE_GRAPH_API_VERSION") or "2024-04-01"
            ),
            inline_poll_max=int(
                _number("JOBS_INLINE_POLL_MAX", get("JOBS_INLINE_POLL_MAX"), 100, whole=True, minimum=0)
            ),
            arm_read_reserve=_read_reserve(get("JOBS_ARM_READ_RESERVE")),
            delivery_retry_hours=_number(
                "JOBS_DELIVERY_RETRY_HOURS", get("JOBS_DELIVERY_RETRY_HOURS"), 24, minimum=0.0001
            ),
            delivery_first_retry_seconds=_number(
                "JOBS_DELIVERY_FIRST_RETRY_SECONDS", get("JOBS_DELIVERY_FIRST_RETRY_SECONDS"), 10, minimum=0.05
            ),
            webhook_timeout_seconds=_number(
                "JOBS_WEBHOOK_TIMEOUT_SECONDS", get("JOBS_WEBHOOK_TIMEOUT_SECONDS"), 15, minimum=0.1
            ),
            retention_days=_retention_days(get("JOBS_RETENTION_DAYS"), get("JOBS_DELIVERY_RETRY_HOURS")),
        )


    @classmethod
    def for_indexing(cls, env: Mapping[str, str] | None = None) -> Settings:
        """When ``from_env`` fails: what the triggers bind to, from whichever of their own settings are valid.

        The Functions worker indexes the triggers at import. A wrong setting must not leave the app with no
        function at all (and nothing in the logs): the triggers are indexed on these names and every invocation
        fails with the ``ConfigError`` until the setting is fixed.
        """
        env = os.environ if env is None else env

        def raw(name: str) -> str | None:
            value = (env.get(name) or "").strip()
            return value or None

        try:
            intake = _queue_name("JOBS_INTAKE_QUEUE", raw("JOBS_INTAKE_QUEUE") or "backup-jobs", suffix_room=15)
        except ConfigError:
            intake = "backup-jobs"
        try:
            poll = int(_number("JOBS_POLL_SECONDS", raw("JOBS_POLL_SECONDS"), 30, whole=True, minimum=1))
        except ConfigError:
            poll = 30
        return cls(storage=StorageSettings(), intake_queue=intake, poll_seconds=poll)


def timer_schedule(poll_seconds: int) -> str:
    """The six-field NCRONTAB schedule of the poll round for ``JOBS_POLL_SECONDS``.

    Cron can only step by divisors of 60 (seconds, minutes) or 24 (hours), so the timer fires at the largest such
    step that is not longer than the setting; each job is still polled no more often than its own interval.
    """
    if poll_seconds < 60:
        step = max(d for d in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30) if d <= poll_seconds)
        return f"*/{step} * * * * *"
    if poll_seconds < 3600:
        minutes = poll_seconds // 60
        step = max(d for d in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30) if d <= minutes)
        return f"0 */{step} * * * *"
    hours = min(poll_seconds // 3600, 24)
    step = max(d for d in (1, 2, 3, 4, 6, 8, 12) if d <= hours) if hours < 24 else 24
    return "0 0 0 * * *" if step == 24 else f"0 0 */{step} * * *"


def _number(name: str, raw: str | None, default: float, *, whole: bool = False, minimum: float = 0) -> float:
    if raw is None:
        return float(default)
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise ConfigError(f"{name} must be {kind} from {minimum:g}, got {raw!r}") from None
    if value < minimum or value != value or value == float("inf"):
        raise ConfigError(f"{name} must be at least {minimum:g}, got {raw!r}")
    return float(value)


def _choice(name: str, raw: str | None, choices: Iterable[str], default: str) -> str:
    if raw is None:
        return default
    value = raw.lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return value


def _api_version(name: str, value: str) -> str:
    if not _API_VERSION.match(value):
        raise ConfigError(f"{name} {value!r} is not an api-version (YYYY-MM-DD)")
    return value
def _read_reserve(raw: str | None) -> int:
    """``JOBS_ARM_READ_RESERVE``: reads of ARM's bucket of 250 per subscription left to other callers; at most 200,
    so the tracker keeps a fifth of the bucket to pace in."""
    reserve = int(_number("JOBS_ARM_READ_RESERVE", raw, 50, whole=True, minimum=0))
    if reserve > 200:
        raise ConfigError(f"JOBS_ARM_READ_RESERVE must be at most 200 (ARM's bucket holds 250 reads), got {raw!r}")
    return reserve


def _retention_days(raw: str | None, retry_hours_raw: str | None) -> float:
    """``JOBS_RETENTION_DAYS``: at least as long as a webhook delivery is retried, or a job could be swept while
    its delivery still waits (the retry would then find nothing to deliver)."""
    days = _number("JOBS_RETENTION_DAYS", raw, 30, minimum=0.0001)
    retry_hours = _number("JOBS_DELIVERY_RETRY_HOURS", retry_hours_raw, 24, minimum=0.0001)
    if days * 24 < retry_hours:
        raise ConfigError(f"JOBS_RETENTION_DAYS must be at least JOBS_DELIVERY_RETRY_HOURS ({retry_hours:g} h = "
                          f"{retry_hours / 24:g} days), or an ended job may be removed while its webhook delivery "
                          f"is still retried; got {raw!r}")
    return days


def _queue_name(name: str, value: str, suffix_room: int = 0) -> str:
    if not _QUEUE_NAME.match(value) or len(value) > 63 - suffix_room:
        raise ConfigError(
            f"{name} {value!r} is not a queue name (3-{63 - suffix_room} lower-case letters, digits and single hyphens)"
        )
    return value


def _arm_endpoint(value: str) -> str:
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number from 0 to 65535
    except ValueError:
        raise ConfigError(f"ARM_ENDPOINT {value!r} has an invalid port") from None
    if (
        parts.scheme not in ("https", "http") or not parts.hostname or parts.path.strip("/") or parts.query
        or parts.fragment or "#" in value or parts.username is not None or parts.password is not None
    ):
        raise ConfigError(f"ARM_ENDPOINT {value!r} must be a bare https URL such as {DEFAULT_ARM_ENDPOINT}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(f"ARM_ENDPOINT {value!r} may use http only for a loopback host (the simulator)")
    return value.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _webhook_urls(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    urls = []
    for position, item in enumerate(raw.split(","), start=1):
        url = item.strip()
        if not url:
            continue
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises for a port that is not a number
        except ValueError:
            parts = urlsplit("")
        if parts.scheme not in ("https", "http") or not parts.hostname:
            # Slack and Teams URLs carry their secret in the path, Logic Apps in the query: show neither.
            raise ConfigError(
                f"JOBS_WEBHOOK_URLS entry {position} ({describe_url(url)}) is not an absolute http(s) URL"
            )
        urls.append(url)
    return tuple(urls)


def _check_webhook_secret(secret: str) -> None:
    from standardwebhooks.webhooks import Webhook

    if not secret.startswith("whsec_"):
        raise ConfigError("JOBS_WEBHOOK_SECRET must be a Standard Webhooks secret: 'whsec_' followed by base64")
    try:
        Webhook(secret)
    except Exception:
        raise ConfigError("JOBS_WEBHOOK_SECRET is not valid base64 after 'whsec_'") from None


_KEY_VAULT_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\((?P<body>.*)\)$", re.IGNORECASE | re.DOTALL)
_KEY_VAULT_NAME = re.compile(r"^[A-Za-z0-9-]{1,127}$")


def _unresolved_key_vault_reference(setting: str, value: str | None) -> str | None:
    """One line when ``value`` is still the literal ``@Microsoft.KeyVault(...)``, else None.

    App Service puts the secret in place of a Key Vault reference only once the app's identity may read it; until
    then (the role assignment is new, or missing) the app gets the reference text itself.
    """
    match = _KEY_VAULT_REFERENCE.match(value or "")
    if match is None:
        return None
    params = {
        key.strip().lower(): text.strip()
        for key, _, text in (part.partition("=") for part in match["body"].split(";"))
    }
    vault, secret = params.get("vaultname", ""), params.get("secretname", "")
    if params.get("secreturi"):
        uri = urlsplit(params["secreturi"])
        vault = (uri.hostname or "").split(".", 1)[0]
        segments = [segment for segment in uri.path.split("/") if segment]
        secret = segments[1] if len(segments) > 1 and segments[0].lower() == "secrets" else ""
    where = (
        f" (secret {secret} in vault {vault})"
        if _KEY_VAULT_NAME.match(vault) and _KEY_VAULT_NAME.match(secret) else ""
    )
    return (
        f"{setting} is an unresolved Key Vault reference{where}: the app's identity cannot read the secret (yet). "
        "Check that the identity has the Key Vault Secrets User role on the vault (a new role assignment can take "
        "minutes to apply), then restart the app. Until then webhook deliveries are retried, never sent unsigned"
    )
