"""Settings: environment variables, which are the Function App's application settings.

``Settings.from_env()`` validates everything at start-up; a wrong value raises ``ConfigError`` whose message is one
line naming the setting and what is wrong with it.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from jobs.providers.recovery_services import DEFAULT_API_VERSION as DEFAULT_ARM_API_VERSION
from jobs.webhooks.callback_urls import AllowedHosts

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
DEADLETTER_QUEUE = "backup-job-results-deadletter"

_QUEUE_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")
_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")


class ConfigError(ValueError):
    """A setting with a wrong value. The message names the setting."""


@dataclass(frozen=True)
class StorageSettings:
    """``AzureWebJobsStorage`` as the Functions host reads it: a connection string or identity-based URIs."""

    connection_string: str | None = field(default=None, repr=False)
    queue_service_uri: str | None = None
    table_service_uri: str | None = None
    credential: str | None = None  # "managedidentity" or None (DefaultAzureCredential)
    client_id: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str], name: str = "AzureWebJobsStorage") -> StorageSettings:
        value = env.get(name, "").strip()
        if value:
            if value.lower().replace(" ", "") == "usedevelopmentstorage=true":
                return cls(connection_string=AZURITE_CONNECTION_STRING)
            if "=" not in value:
                raise ConfigError(f"{name} is not a storage connection string (expected Key=Value;... pairs)")
            return cls(connection_string=value)
        account = env.get(f"{name}__accountName", "").strip()
        queue_uri = env.get(f"{name}__queueServiceUri", "").strip()
        table_uri = env.get(f"{name}__tableServiceUri", "").strip()
        if account:
            if not re.match(r"^[a-z0-9]{3,24}$", account):
                raise ConfigError(f"{name}__accountName {account!r} is not a storage account name")
            queue_uri = queue_uri or f"https://{account}.queue.core.windows.net"
            table_uri = table_uri or f"https://{account}.table.core.windows.net"
        if not queue_uri or not table_uri:
            raise ConfigError(
                f"{name} is required: a connection string, UseDevelopmentStorage=true, {name}__accountName, "
                f"or {name}__queueServiceUri and {name}__tableServiceUri"
            )
        for setting, uri in ((f"{name}__queueServiceUri", queue_uri), (f"{name}__tableServiceUri", table_uri)):
            if urlsplit(uri).scheme not in ("https", "http") or not urlsplit(uri).hostname:
                raise ConfigError(f"{setting} {uri!r} is not an absolute URL")
        credential = env.get(f"{name}__credential", "").strip().lower() or None
        if credential not in (None, "managedidentity"):
            raise ConfigError(f"{name}__credential must be 'managedidentity' or unset, got {credential!r}")
        return cls(
            queue_service_uri=queue_uri.rstrip("/"),
            table_service_uri=table_uri.rstrip("/"),
            credential=credential,
            client_id=env.get(f"{name}__clientId", "").strip() or None,
        )


@dataclass(frozen=True)
class Settings:
    storage: StorageSettings
    intake_queue: str = "backup-jobs"
    results_queue: str | None = "backup-job-results"
    table: str = "backupjobs"
    webhook_urls: tuple[str, ...] = field(default=(), repr=False)  # may carry keys or SAS signatures
    webhook_secret: str | None = field(default=None, repr=False)
    callback_allowed_hosts: AllowedHosts = field(default_factory=AllowedHosts)
    poll_seconds: int = 30
    max_tracking_hours: float = 72.0
    arm_endpoint: str = DEFAULT_ARM_ENDPOINT
    arm_api_version: str = DEFAULT_ARM_API_VERSION
    arm_token: str | None = field(default=None, repr=False)
    # Tunables beyond the contract (documented in the README).
    not_found_grace_seconds: float = 900.0
    max_poll_interval_seconds: float = 300.0
    list_threshold: int = 3
    delivery_retry_hours: float = 24.0
    delivery_first_retry_seconds: float = 10.0
    webhook_timeout_seconds: float = 15.0

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

    @property
    def deadletter_queue(self) -> str:
        return DEADLETTER_QUEUE

    def all_queues(self) -> list[str]:
        names = [self.intake_queue, self.rejected_queue, self.poll_queue, self.deliver_queue, DEADLETTER_QUEUE]
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
            else (_queue_name("JOBS_RESULTS_QUEUE", results_raw.strip()) if results_raw.strip() else None)
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
        secret = get("JOBS_WEBHOOK_SECRET")
        if secret is not None:
            _check_webhook_secret(secret)
        try:
            allowed = AllowedHosts.from_setting(get("JOBS_CALLBACK_ALLOWED_HOSTS"))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return cls(
            storage=StorageSettings.from_env(env),
            intake_queue=intake,
            results_queue=results,
            table=table,
            webhook_urls=_webhook_urls(get("JOBS_WEBHOOK_URLS")),
            webhook_secret=secret,
            callback_allowed_hosts=allowed,
            poll_seconds=int(_number("JOBS_POLL_SECONDS", get("JOBS_POLL_SECONDS"), 30, whole=True, minimum=1)),
            max_tracking_hours=_number("JOBS_MAX_TRACKING_HOURS", get("JOBS_MAX_TRACKING_HOURS"), 72, minimum=0.0001),
            arm_endpoint=arm_endpoint,
            arm_api_version=api_version,
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
            delivery_retry_hours=_number(
                "JOBS_DELIVERY_RETRY_HOURS", get("JOBS_DELIVERY_RETRY_HOURS"), 24, minimum=0.0001
            ),
            delivery_first_retry_seconds=_number(
                "JOBS_DELIVERY_FIRST_RETRY_SECONDS", get("JOBS_DELIVERY_FIRST_RETRY_SECONDS"), 10, minimum=0.05
            ),
            webhook_timeout_seconds=_number(
                "JOBS_WEBHOOK_TIMEOUT_SECONDS", get("JOBS_WEBHOOK_TIMEOUT_SECONDS"), 15, minimum=0.1
            ),
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
    for item in raw.split(","):
        url = item.strip()
        if not url:
            continue
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ConfigError(f"JOBS_WEBHOOK_URLS entry {_redacted(url)!r} is not an absolute http(s) URL")
        urls.append(url)
    return tuple(urls)


def _redacted(url: str) -> str:
    return url.split("?", 1)[0]


def _check_webhook_secret(secret: str) -> None:
    from standardwebhooks.webhooks import Webhook

    if not secret.startswith("whsec_"):
        raise ConfigError("JOBS_WEBHOOK_SECRET must be a Standard Webhooks secret: 'whsec_' followed by base64")
    try:
        Webhook(secret)
    except Exception:
        raise ConfigError("JOBS_WEBHOOK_SECRET is not valid base64 after 'whsec_'") from None
