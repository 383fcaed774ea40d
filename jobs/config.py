"""Settings: environment variables, which are the Function App's application settings.

Each setting is declared once in ``SETTINGS`` (name, parser with its bounds, default, one line of documentation);
``Settings.from_env()`` walks that table and then applies the few rules between settings. A wrong value raises
``ConfigError`` whose message is one line naming the setting and what is wrong with it. The README's settings
table is generated from ``SETTINGS`` (``python -m devtools.settings_table --write``).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from jobs.domain.references import InvalidReference, check_guid, check_name, show
from jobs.providers import PROVIDERS, parse_vault_id
from jobs.setting import (
    ApiVersion,
    Choice,
    ConfigError,
    Custom,
    Number,
    OrOff,
    Parser,
    QueueName,
    Setting,
    Switch,
    TableName,
    Text,
    bare_url,
    is_loopback,
)
from jobs.storage.connection import AZURITE_ACCOUNT_KEY, StorageSettings
from jobs.webhooks.callback_urls import AllowedHosts
from jobs.webhooks.sender import describe_url

__all__ = ["AZURITE_ACCOUNT_KEY", "SETTINGS", "ConfigError", "Settings", "StorageSettings", "parse_watch_scope",
           "scope_kind", "timer_schedule"]

DEFAULT_ARM_ENDPOINT = "https://management.azure.com"
DEADLETTER_SUFFIX = "-deadletter"
POLL_STRATEGIES = ("vault", "job")
END_HINTS = ("history", "estimate", "off")
STORAGE = "AzureWebJobsStorage"


def _webhook_urls(name: str, text: str) -> tuple[str, ...]:
    urls = []
    for position, item in enumerate(text.split(","), start=1):
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
            raise ConfigError(f"{name} entry {position} ({describe_url(url)}) is not an absolute http(s) URL")
        urls.append(url)
    return tuple(urls)


def _webhook_secret(name: str, text: str) -> str:
    """A Standard Webhooks secret, or a Key Vault reference (left for ``_unresolved_key_vault_reference``)."""
    from standardwebhooks.webhooks import Webhook

    if _KEY_VAULT_REFERENCE.match(text):
        return text
    if not text.startswith("whsec_"):
        raise ConfigError(f"{name} must be a Standard Webhooks secret: 'whsec_' followed by base64")
    try:
        Webhook(text)
    except Exception:
        raise ConfigError(f"{name} is not valid base64 after 'whsec_'") from None
    return text


def _eventgrid_endpoint(name: str, text: str) -> str:
    """An Event Grid topic's endpoint: an absolute https URL (a custom topic's ends in ``/api/events``, a
    namespace's is bare); http only for a loopback host (a stand-in), since the key or token goes with it."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.username or parts.password:
        raise ConfigError(f"{name} ({describe_url(text)}) is not an absolute https URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(f"{name} ({describe_url(text)}) must be https (http only for a loopback host)")
    return text


def _eventgrid_key(name: str, text: str) -> str:
    """An access key of the topic, or a Key Vault reference (left for ``_unresolved_key_vault_reference``)."""
    if not text.strip():
        raise ConfigError(f"{name} is blank")
    return text


def _namespace_topic(name: str, text: str) -> str:
    if not _NAMESPACE_TOPIC.match(text):
        raise ConfigError(f"{name} {text!r} is not a namespace topic name (3-50 letters, digits and hyphens)")
    return text


def _arm_endpoint(name: str, text: str) -> str:
    return bare_url(name, text, DEFAULT_ARM_ENDPOINT)


def _public_base_url(name: str, text: str) -> str:
    """A status URL's base: an https URL (http for a loopback host) with no query, fragment or user; a path is kept
    (a front end that serves the app under one)."""
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number from 0 to 65535
    except ValueError:
        raise ConfigError(f"{name} {text!r} has an invalid port") from None
    if (parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment or "#" in text
            or "?" in text or parts.username is not None or parts.password is not None
            or any(c in text for c in " \t\r\n\\")):
        raise ConfigError(f"{name} {text!r} must be the https URL callers reach the app at, such as "
                          "https://tracker.example.com (no query, fragment or user)")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(f"{name} {text!r} may use http only for a loopback host")
    return text.rstrip("/")


_SCOPE_SUBSCRIPTION = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/?$", re.IGNORECASE)
_SCOPE_GROUP = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/?$", re.IGNORECASE)
_GROUP_NAME = re.compile(r"^[-\w.()]{1,90}$")


def parse_watch_scope(text: object, field: str = "scope") -> str:
    """A watch's scope as the tracker keeps it: a vault id of any provider, ``/subscriptions/<guid>/resourceGroups/
    <rg>`` or ``/subscriptions/<guid>``; ``InvalidReference`` (a ``ValueError``) naming ``field`` otherwise."""
    value = text.strip() if isinstance(text, str) else text
    if isinstance(value, str) and (match := _SCOPE_SUBSCRIPTION.match(value)):
        return f"/subscriptions/{check_guid(f'{field} subscription id', match['sub'])}"
    if isinstance(value, str) and (match := _SCOPE_GROUP.match(value)):
        group = check_name(f"{field} resource group", match["rg"], _GROUP_NAME, "1-90 letters, digits, underscores, "
                           "parentheses, hyphens and periods")
        return f"/subscriptions/{check_guid(f'{field} subscription id', match['sub'])}/resourceGroups/{group}"
    if isinstance(value, str) and "/providers/" in value.lower():
        return parse_vault_id(value, field).id
    raise InvalidReference(f"{field} {show(text)} is not a vault, resource group or subscription id "
                           "(/subscriptions/<guid>[/resourceGroups/<rg>[/providers/<namespace>/<type>/<vault>]])")


def scope_kind(scope: str) -> str:
    """``subscription``, ``resourceGroup`` or ``vault``, of a scope ``parse_watch_scope`` returned."""
    if _SCOPE_SUBSCRIPTION.match(scope):
        return "subscription"
    return "resourceGroup" if _SCOPE_GROUP.match(scope) else "vault"


def _watch_scopes(name: str, text: str) -> tuple[str, ...]:
    scopes: list[str] = []
    for position, item in enumerate(text.split(","), start=1):
        if not item.strip():
            continue
        try:
            scope = parse_watch_scope(item, f"{name} entry {position}")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if scope.lower() not in (s.lower() for s in scopes):
            scopes.append(scope)
    return tuple(scopes)


def _allowed_hosts(name: str, text: str) -> AllowedHosts:
    try:
        return AllowedHosts.from_setting(text)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


class _Storage(Parser):
    """``AzureWebJobsStorage`` and its ``__`` settings, in any case: ``jobs.storage.connection``."""

    accepts = "connection string, or identity-based settings"

    def read(self, setting: Setting, env: Mapping[str, str]) -> StorageSettings:
        return StorageSettings.from_env(env, setting.name)


# The bounds of every numeric setting, each maximum with its reason (the README table shows the range).
_POLL_SECONDS = Number(1, whole=True, maximum=86400, why="the timer fires at least once a day")
_TRACKING_HOURS = Number(0.0001, maximum=2160, why="90 days, the longest timeoutMinutes")
_GRACE_SECONDS = Number(0, maximum=604800, why="7 days")
_INLINE_MAX = Number(0, whole=True, maximum=1000, why="the timer function must poll them in its time")
_POLL_INTERVAL = Number(1, maximum=86400, why="a day")
_LIST_THRESHOLD = Number(1, whole=True, maximum=1000, why="above 50, a poll message's due jobs, never lists")
_RETRY_HOURS = Number(0.0001, maximum=168, why="7 days, the longest a queue message stays hidden")
_FIRST_RETRY = Number(0.05, maximum=3600, why="an hour")
_WEBHOOK_TIMEOUT = Number(0.1, maximum=300, why="half the deliver function's 10-minute functionTimeout")
_RETENTION_DAYS = Number(0.0001, maximum=3650, why="ten years")
_WATCH_SECONDS = Number(1, maximum=86400, why="a day")
_WATCH_EXPAND_SECONDS = Number(60, maximum=604800, why="a week")

# Every setting, in the README's order. Room in queue names: "<intake>-deliver-poison", "<results>-deadletter".
SETTINGS: tuple[Setting, ...] = (
    Setting(STORAGE, "storage", _Storage(), None, (
        "storage for queues and the table: a connection string, `UseDevelopmentStorage=true`, or identity-based "
        "(`__accountName`, or both `__queueServiceUri` and `__tableServiceUri`, with `__credential=managedidentity` "
        "and `__clientId`); names are case-insensitive, as in the Functions host (`__accountname` works). A "
        "connection string is checked key by key: known keys only, a base64 `AccountKey`, and it must reach both "
        "the queue and the table service (`AccountName` with `AccountKey` or a SAS, or `QueueEndpoint` and "
        "`TableEndpoint` with a key or SAS)"), shown="required"),
    Setting("JOBS_INTAKE_QUEUE", "intake_queue", QueueName(suffix_room=15), "backup-jobs",
            "queue the tracker is fed from; `-rejected`, `-poison`, `-poll` and `-deliver` queues are named after it"),
    Setting("JOBS_RESULTS_QUEUE", "results_queue", OrOff(QueueName(suffix_room=len(DEADLETTER_SUFFIX))),
            "backup-job-results", "queue that receives every result event"),
    Setting("JOBS_DEADLETTER_QUEUE", "deadletter_queue", QueueName(), None, (
        "queue of the events that could not be delivered (`<JOBS_INTAKE_QUEUE>-deadletter` when the results queue "
        "is off), so two trackers on one storage account never share it"),
        shown="`<JOBS_RESULTS_QUEUE>-deadletter`"),
    Setting("JOBS_TABLE", "table", TableName(), "backupjobs", "table holding job state"),
    Setting("JOBS_WEBHOOK_URLS", "webhook_urls", Custom(_webhook_urls, "comma-separated http(s) URLs", unset=()), None,
            "URLs that receive every result event (operator-set, trusted)"),
    Setting("JOBS_WEBHOOK_SECRET", "webhook_secret", Custom(_webhook_secret, "`whsec_` + base64"), None, (
        "Standard Webhooks secret; when set, every webhook request is signed. It may be a Key Vault reference: one "
        "that has not resolved yet (the app started before its Key Vault Secrets User role took effect) is one ERROR "
        "in the log, not a dead app; webhook deliveries are then retried, never sent unsigned, and dead-lettered "
        "only at the end of `JOBS_DELIVERY_RETRY_HOURS`. Grant the role and restart")),
    Setting("JOBS_EVENTGRID_TOPIC_ENDPOINT", "eventgrid_endpoint",
            Custom(_eventgrid_endpoint, "https URL (http only on loopback)"), None, (
                "an Event Grid topic that receives every result event (CloudEvents 1.0, batch mode): a custom topic's "
                "endpoint (`https://<topic>.<region>-1.eventgrid.azure.net/api/events`), or a namespace's with "
                "`JOBS_EVENTGRID_NAMESPACE_TOPIC`. Sent with `JOBS_EVENTGRID_KEY`, else the app's identity (it needs "
                "the EventGrid Data Sender role); retried and dead-lettered like a webhook delivery")),
    Setting("JOBS_EVENTGRID_NAMESPACE_TOPIC", "eventgrid_namespace_topic",
            Custom(_namespace_topic, "topic name, 3-50 characters"), None,
            "the topic, when `JOBS_EVENTGRID_TOPIC_ENDPOINT` is an Event Grid namespace's endpoint"),
    Setting("JOBS_EVENTGRID_KEY", "eventgrid_key", Custom(_eventgrid_key, "text, or a Key Vault reference"), None, (
        "an access key of the topic (sent as `aeg-sas-key`; to a namespace as `Authorization: SharedAccessKey`); "
        "unset: the app's identity. It may be a Key Vault reference: one not resolved yet is one ERROR in the log, "
        "and Event Grid deliveries are retried, never sent without it")),
    Setting("JOBS_CALLBACK_ALLOWED_HOSTS", "callback_allowed_hosts",
            Custom(_allowed_hosts, "comma-separated hosts or IPs, `*.domain`", unset=AllowedHosts()), None, (
                "hosts a per-job `callbackUrl` may name: exact names or IPs, `*.domain` wildcards (a wildcard-matched "
                "name must resolve to public addresses); for Logic Apps callbacks see [the samples](samples/"
                "logic-apps/README.md#letting-the-tracker-call-your-logic-apps-back)")),
    Setting("JOBS_POLL_SECONDS", "poll_seconds", _POLL_SECONDS, "30", (
        "how often the poll round runs (the timer fires at the largest cron step not longer than this: "
        "`*/30 * * * * *`)")),
    Setting("JOBS_MAX_TRACKING_HOURS", "max_tracking_hours", _TRACKING_HOURS, "72",
            "a job still running after this is reported as `BackupJob.TimedOut`"),
    Setting("ARM_ENDPOINT", "arm_endpoint", Custom(_arm_endpoint, "https URL without a path"),
            DEFAULT_ARM_ENDPOINT, (
                "Resource Manager endpoint (sovereign clouds, the simulator); `http` only for loopback hosts")),
    *(Setting(kind.api_version_setting, None, ApiVersion(), kind.default_api_version, kind.api_version_doc)
      for kind in PROVIDERS),
    Setting("JOBS_ARM_TOKEN", "arm_token", Text(), None, (
        "a fixed bearer token for simulators and tests only; otherwise `DefaultAzureCredential` (honours "
        "`AZURE_CLIENT_ID`)")),
    Setting("JOBS_NOT_FOUND_GRACE_SECONDS", "not_found_grace_seconds", _GRACE_SECONDS, "900", (
        "how long a job may answer 404 (not yet visible) or 403 (no Backup Reader) before it ends as "
        "`BackupJob.NotFound` with Azure's error")),
    Setting("JOBS_POLL_STRATEGY", "poll_strategy", Choice(POLL_STRATEGIES), "vault", (
        "how jobs are polled: `vault` lists each due vault once per round (`BackupJobs_List`, `status eq "
        "'InProgress'`, paged) and keeps all its jobs on one shared schedule, with a GET only for a job that left "
        "the list; `job` polls each job on its own schedule (a tenth of its age), listing a vault only from "
        "`JOBS_LIST_THRESHOLD` due jobs (see Benchmark)")),
    Setting("JOBS_RESOURCE_GRAPH", "resource_graph", Switch(), "on", (
        "`on`: each round asks Azure Resource Graph which running jobs have ended; those are fetched at once. Its lag "
        "is measured on every ended job: while its p95 is within two poll periods the vaults rest up to "
        "`JOBS_MAX_POLL_INTERVAL_SECONDS`, otherwise they are listed every round. `off`: vault rounds every round. "
        "Needs no role beyond Backup Reader")),
    Setting("JOBS_END_HINTS", "end_hints", Choice(END_HINTS), "history", (
        "under vault rounds, while Resource Graph is not measured fresh: a job whose earliest end is known rests on "
        "its vault's `JOBS_MAX_POLL_INTERVAL_SECONDS` grid until the round before it, so its vault is not listed "
        "every round (see Benchmark). `history`: known from the same entity's earlier jobs of its type (and a VM "
        "job's own estimate when it was read in detail anyway); `estimate`: also one GET at a job's first sighting "
        "for Azure's estimate; `off`: every round")),
    Setting("JOBS_RESOURCE_GRAPH_API_VERSION", "resource_graph_api_version", ApiVersion(), "2024-04-01",
            "api-version of the Resource Graph query (`Microsoft.ResourceGraph/resources`)"),
    Setting("JOBS_INLINE_POLL_MAX", "inline_poll_max", _INLINE_MAX, "100", (
        "a round with at most this many due jobs is polled in the timer function itself (no poll-queue hop); a "
        "larger one fans out through the poll queue so that Functions spreads it over instances; `0`: always fan "
        "out")),
    Setting("JOBS_MAX_POLL_INTERVAL_SECONDS", "max_poll_interval_seconds", _POLL_INTERVAL, "300", (
        "with Resource Graph on and measured fresh: how long a vault may rest between lists (the fallback that finds "
        "a job Resource Graph does not show); under `JOBS_POLL_STRATEGY=job`: the longest gap between two polls of "
        "one job")),
    Setting("JOBS_LIST_THRESHOLD", "list_threshold", _LIST_THRESHOLD, "3", (
        "under `JOBS_POLL_STRATEGY=job`: from this many due jobs in one vault, one `BackupJobs_List` call replaces "
        "a GET per job")),
    Setting("JOBS_ARM_READ_RESERVE", "arm_read_reserve",
            Number(0, whole=True, maximum=200, why="ARM's bucket holds 250 reads"), "50", (
                "reads of a subscription's ARM bucket (250 per identity, refilled at 25/s) the tracker leaves to "
                "other callers: every instance slows its reads as ARM's `x-ms-ratelimit-remaining-subscription-reads` "
                "falls towards it (see Architecture)")),
    Setting("JOBS_DELIVERY_RETRY_HOURS", "delivery_retry_hours", _RETRY_HOURS, "24",
            "how long a webhook (or Event Grid) delivery is retried before it is dead-lettered"),
    Setting("JOBS_DELIVERY_FIRST_RETRY_SECONDS", "delivery_first_retry_seconds", _FIRST_RETRY, "10",
            "first retry delay; later ones follow Event Grid's schedule (x3, x6, x30 ... up to 12 h)"),
    Setting("JOBS_WEBHOOK_TIMEOUT_SECONDS", "webhook_timeout_seconds", _WEBHOOK_TIMEOUT, "15",
            "how long one webhook request may take"),
    Setting("JOBS_RETENTION_DAYS", "retention_days", _RETENTION_DAYS, "30", (
        "how long an ended job (its state, subscribers and event) stays in the table before the poll round removes "
        "it (at least `JOBS_DELIVERY_RETRY_HOURS`); `status` of a removed job says so")),
    Setting("JOBS_PUBLIC_BASE_URL", "public_base_url", Custom(_public_base_url, "https URL, a path allowed"), None, (
        "the URL callers reach the app at (a custom domain, API Management, Front Door), up to `/api`: every status "
        "URL (`Location`) starts with it. Unset: the request's own host (`Host`, or `X-Forwarded-Host` behind a front "
        "end), which must be a well-formed host name or IP address with an optional port")),
    Setting("JOBS_WATCH_SCOPES", "watch_scopes",
            Custom(_watch_scopes, "comma-separated vault, resource group or subscription ids", unset=()), None, (
                "watch these vaults (a resource group or subscription: every vault in it, listed again every "
                "`JOBS_WATCH_EXPAND_SECONDS`): every job that starts in them is tracked and reported like a "
                "handed-in one, with `data.watch` `settings` (see Watching vaults); the `watch add` command adds "
                "watches with their own subscriber")),
    Setting("JOBS_WATCH_DAILY_SUMMARY", "watch_daily_summary", Switch(), "off", (
        "`on`: the `settings` watch also sends a `BackupJobs.DailySummary` event after each UTC day (counts per "
        "status, the failed and warned jobs with their errors)")),
    Setting("JOBS_WATCH_SECONDS", "watch_seconds", _WATCH_SECONDS, "60", (
        "how often each watched vault is listed for jobs that started since its last listing (on its vault's "
        "round grid, never more often than `JOBS_POLL_SECONDS`): one ARM read per vault each time")),
    Setting("JOBS_WATCH_EXPAND_SECONDS", "watch_expand_seconds", _WATCH_EXPAND_SECONDS, "900", (
        "how often a watched resource group or subscription is listed again for its vaults (one ARM read per "
        "scope), so that a new vault is watched")),
    Setting("JOBS_LOG_LEVEL", None, Choice(("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")), None,
            "level of the `jobs` loggers (the tooling verbs log only errors by default)",
            shown="`INFO` (`run`, `track`, `list`, `status`)"),
)


@dataclass(frozen=True)
class Settings:
    """The tracker's settings, one attribute per row of ``SETTINGS`` (the defaults are there, not here)."""

    storage: StorageSettings
    intake_queue: str
    results_queue: str | None
    # Named after the results queue (after the intake queue when results are off), so two trackers on one account
    # never share it; JOBS_DEADLETTER_QUEUE names it outright.
    deadletter_queue: str
    table: str
    webhook_urls: tuple[str, ...] = field(repr=False)  # may carry keys or SAS signatures
    webhook_secret: str | None = field(repr=False)
    # Set when JOBS_WEBHOOK_SECRET is a Key Vault reference the platform has not resolved (then no secret): one
    # line saying so. Webhook deliveries are then retried, never sent unsigned; everything else works.
    webhook_secret_problem: str | None
    eventgrid_endpoint: str | None = field(repr=False)  # a topic's endpoint names no secret, but keep it quiet
    eventgrid_namespace_topic: str | None
    eventgrid_key: str | None = field(repr=False)
    # As webhook_secret_problem, for JOBS_EVENTGRID_KEY: Event Grid deliveries are retried, never sent without it.
    eventgrid_key_problem: str | None
    callback_allowed_hosts: AllowedHosts
    poll_seconds: int
    max_tracking_hours: float
    arm_endpoint: str
    # Each provider's api-version, by its setting (JOBS_ARM_API_VERSION, JOBS_CRR_API_VERSION).
    api_versions: Mapping[str, str]
    arm_token: str | None = field(repr=False)
    not_found_grace_seconds: float
    max_poll_interval_seconds: float
    list_threshold: int
    poll_strategy: str  # "vault" or "job" (JOBS_POLL_STRATEGY)
    resource_graph: bool  # Azure Resource Graph as the detector of ended jobs (JOBS_RESOURCE_GRAPH)
    resource_graph_api_version: str
    end_hints: str  # "history", "estimate" or "off": a running job rests until its expected end (JOBS_END_HINTS)
    inline_poll_max: int
    arm_read_reserve: int  # reads of the subscription's ARM bucket left to other callers: jobs.arm.pacing
    delivery_retry_hours: float
    delivery_first_retry_seconds: float
    webhook_timeout_seconds: float
    retention_days: float
    public_base_url: str | None  # scheme://host[:port][/path] before /api in a status URL; None: the request's
    watch_scopes: tuple[str, ...] = ()  # JOBS_WATCH_SCOPES: the settings' watch (jobs.flows.watches)
    watch_seconds: float = 60.0
    watch_daily_summary: bool = False
    watch_expand_seconds: float = 900.0

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
        return cls._from_values({setting.name: setting.read(env) for setting in SETTINGS})

    @classmethod
    def for_indexing(cls, env: Mapping[str, str] | None = None) -> Settings:
        """When ``from_env`` fails: what the triggers bind to, from whichever of their own settings are valid.

        The Functions worker indexes the triggers at import. A wrong setting must not leave the app with no
        function at all (and nothing in the logs): the triggers are indexed on these names and every invocation
        fails with the ``ConfigError`` until the setting is fixed.
        """
        env = os.environ if env is None else env

        def read(setting: Setting) -> Any:
            if setting.name in ("JOBS_INTAKE_QUEUE", "JOBS_POLL_SECONDS"):
                with contextlib.suppress(ConfigError):
                    return setting.read(env)
            return StorageSettings() if setting.name == STORAGE else setting.read({})

        return cls._from_values({setting.name: read(setting) for setting in SETTINGS})

    @classmethod
    def _from_values(cls, values: dict[str, Any]) -> Settings:
        """The rules between settings, stated once, then the object."""
        intake, results = values["JOBS_INTAKE_QUEUE"], values["JOBS_RESULTS_QUEUE"]
        values["JOBS_DEADLETTER_QUEUE"] = values["JOBS_DEADLETTER_QUEUE"] or f"{results or intake}{DEADLETTER_SUFFIX}"
        problem = _unresolved_key_vault_reference("JOBS_WEBHOOK_SECRET", values["JOBS_WEBHOOK_SECRET"])
        if problem is not None:
            values["JOBS_WEBHOOK_SECRET"] = None
        key_problem = _unresolved_key_vault_reference("JOBS_EVENTGRID_KEY", values["JOBS_EVENTGRID_KEY"],
                                                      "Event Grid deliveries are retried, never sent without the key")
        if key_problem is not None:
            values["JOBS_EVENTGRID_KEY"] = None
        if values["JOBS_EVENTGRID_NAMESPACE_TOPIC"] and not values["JOBS_EVENTGRID_TOPIC_ENDPOINT"]:
            raise ConfigError("JOBS_EVENTGRID_NAMESPACE_TOPIC is set without JOBS_EVENTGRID_TOPIC_ENDPOINT (the "
                              "namespace's endpoint)")
        days, retry_hours = values["JOBS_RETENTION_DAYS"], values["JOBS_DELIVERY_RETRY_HOURS"]
        if days * 24 < retry_hours:
            # A job swept while its webhook delivery is still retried would leave the retry nothing to deliver.
            raise ConfigError(f"JOBS_RETENTION_DAYS must be at least JOBS_DELIVERY_RETRY_HOURS ({retry_hours:g} h = "
                              f"{retry_hours / 24:g} days), or an ended job may be removed while its webhook "
                              f"delivery is still retried; got {f'{days:g}'!r}")
        return cls(
            **{setting.attribute: values[setting.name] for setting in SETTINGS if setting.attribute},
            webhook_secret_problem=problem,
            eventgrid_key_problem=key_problem,
            api_versions={kind.api_version_setting: values[kind.api_version_setting] for kind in PROVIDERS},
        )


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


_KEY_VAULT_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\((?P<body>.*)\)$", re.IGNORECASE | re.DOTALL)
_KEY_VAULT_NAME = re.compile(r"^[A-Za-z0-9-]{1,127}$")
_NAMESPACE_TOPIC = re.compile(r"^[A-Za-z0-9-]{3,50}$")


def _unresolved_key_vault_reference(
    setting: str, value: str | None,
    meanwhile: str = "webhook deliveries are retried, never sent unsigned",
) -> str | None:
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
        f"minutes to apply), then restart the app. Until then {meanwhile}"
    )
