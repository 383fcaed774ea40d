"""Settings: defaults, one clear line for every wrong value, the rules between settings, indexing, the timer.

AzureWebJobsStorage has its own tests: test_storage_connection.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.config import ConfigError, Settings, StorageSettings, timer_schedule
from jobs.providers import PROVIDERS
from jobs.setting import Choice, Number, QueueName, Setting, Switch

STORAGE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ACCOUNT_KEY = "c2VjcmV0LWFjY291bnQta2V5LXRoYXQtbXVzdC1uZXZlci1sZWFr"
QUEUE_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")  # Azure's rule: 3-63, no '--', no edge '-'


def load(**env: str) -> Settings:
    return Settings.from_env({**STORAGE, **env})


def config_error(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    message = str(info.value)
    assert message.strip() and "\n" not in message and "\r" not in message, message
    return message


# ---------------------------------------------------------------------------------------------------------------
# Defaults


def test_defaults() -> None:
    s = load()
    assert s.intake_queue == "backup-jobs"
    assert s.results_queue == "backup-job-results"
    assert s.table == "backupjobs"
    assert s.webhook_urls == ()
    assert s.webhook_secret is None
    assert not s.callback_allowed_hosts
    assert s.poll_seconds == 30  # the README's documented default
    assert s.max_tracking_hours == 72
    assert s.arm_endpoint == "https://management.azure.com"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", s.api_versions["JOBS_ARM_API_VERSION"])  # a GA version, not a preview
    assert s.arm_token is None
    assert s.rejected_queue == "backup-jobs-rejected"
    assert s.poison_queue == "backup-jobs-poison"
    assert s.deadletter_queue == "backup-job-results-deadletter"
    assert {"backup-jobs", "backup-jobs-rejected", "backup-job-results", "backup-job-results-deadletter"} <= set(
        s.all_queues()
    )


def test_the_dead_letter_queue_is_named_after_the_results_queue_so_trackers_never_share_it() -> None:
    assert load(JOBS_RESULTS_QUEUE="team-a-results").deadletter_queue == "team-a-results-deadletter"
    assert load(JOBS_INTAKE_QUEUE="team-b-jobs", JOBS_RESULTS_QUEUE="").deadletter_queue == "team-b-jobs-deadletter"
    assert load(JOBS_DEADLETTER_QUEUE="undeliverable").deadletter_queue == "undeliverable"
    assert "undeliverable" in load(JOBS_DEADLETTER_QUEUE="undeliverable").all_queues()
    assert "JOBS_DEADLETTER_QUEUE" in config_error({**STORAGE, "JOBS_DEADLETTER_QUEUE": "Bad_Name"})
    assert "JOBS_RESULTS_QUEUE" in config_error({**STORAGE, "JOBS_RESULTS_QUEUE": "r" * 53})  # no room left


def test_blank_values_mean_the_default() -> None:
    s = load(JOBS_INTAKE_QUEUE="  ", JOBS_TABLE="", JOBS_POLL_SECONDS=" ", ARM_ENDPOINT="", JOBS_WEBHOOK_SECRET="")
    assert (s.intake_queue, s.table, s.poll_seconds, s.arm_endpoint, s.webhook_secret) == (
        "backup-jobs", "backupjobs", 30, "https://management.azure.com", None
    )


def test_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("JOBS_", "ARM_", "AzureWebJobsStorage")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    monkeypatch.setenv("JOBS_TABLE", "fromenv")
    assert Settings.from_env().table == "fromenv"


def test_values_are_read() -> None:
    s = load(
        JOBS_INTAKE_QUEUE="my-jobs",
        JOBS_RESULTS_QUEUE="my-results",
        JOBS_TABLE="MyJobs2",
        JOBS_WEBHOOK_URLS=" https://a.example.com/hook , ,http://127.0.0.1:9000/x?code=1",
        JOBS_WEBHOOK_SECRET=SECRET,
        JOBS_CALLBACK_ALLOWED_HOSTS="hooks.example.com, *.logic.azure.com",
        JOBS_POLL_SECONDS=" 45 ",
        JOBS_MAX_TRACKING_HOURS="1.5",
        ARM_ENDPOINT="https://management.usgovcloudapi.net/",
        JOBS_ARM_API_VERSION="2025-02-01",
        JOBS_ARM_TOKEN="t0ken",
    )
    assert s.intake_queue == "my-jobs" and s.rejected_queue == "my-jobs-rejected"
    assert s.results_queue == "my-results"
    assert s.table == "MyJobs2"
    assert s.webhook_urls == ("https://a.example.com/hook", "http://127.0.0.1:9000/x?code=1")
    assert s.webhook_secret == SECRET
    assert s.callback_allowed_hosts.match("hooks.example.com") == "exact"
    assert s.callback_allowed_hosts.match("prod-00.westus.logic.azure.com") == "wildcard"
    assert s.callback_allowed_hosts.match("evil.example.com") is None
    assert s.poll_seconds == 45 and isinstance(s.poll_seconds, int)
    assert s.max_tracking_hours == 1.5
    assert s.arm_endpoint == "https://management.usgovcloudapi.net"
    assert s.api_versions["JOBS_ARM_API_VERSION"] == "2025-02-01"
    assert s.arm_token == "t0ken"


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_results_queue_turns_results_off(value: str) -> None:
    s = load(JOBS_RESULTS_QUEUE=value)
    assert s.results_queue is None
    assert "backup-job-results" not in s.all_queues()
    assert "" not in s.all_queues()


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:7071", "http://localhost:8080/", "http://[::1]:9000", "http://127.0.0.2"]
)
def test_http_arm_endpoint_is_allowed_for_loopback(endpoint: str) -> None:
    assert load(ARM_ENDPOINT=endpoint).arm_endpoint == endpoint.rstrip("/")


def test_poll_seconds_accepts_one() -> None:
    assert load(JOBS_POLL_SECONDS="1").poll_seconds == 1


# ---------------------------------------------------------------------------------------------------------------
# Wrong values: one line, naming the setting


WRONG = [
    ("JOBS_POLL_SECONDS", "0"),
    ("JOBS_POLL_SECONDS", "abc"),
    ("JOBS_POLL_SECONDS", "1.5"),
    ("JOBS_POLL_SECONDS", "-3"),
    ("JOBS_MAX_TRACKING_HOURS", "-1"),
    ("JOBS_MAX_TRACKING_HOURS", "0"),
    ("JOBS_MAX_TRACKING_HOURS", "abc"),
    ("JOBS_MAX_TRACKING_HOURS", "nan"),
    ("JOBS_MAX_TRACKING_HOURS", "inf"),
    ("ARM_ENDPOINT", "http://management.azure.com"),
    ("ARM_ENDPOINT", "http://10.0.0.4:8080"),
    ("ARM_ENDPOINT", "http://example.com"),
    ("ARM_ENDPOINT", "https://management.azure.com/subscriptions"),
    ("ARM_ENDPOINT", "https://management.azure.com?api-version=1"),
    ("ARM_ENDPOINT", "management.azure.com"),
    ("ARM_ENDPOINT", "ftp://management.azure.com"),
    ("ARM_ENDPOINT", "https://"),
    ("ARM_ENDPOINT", "https://management.azure.com/X"),
    ("JOBS_ARM_API_VERSION", "latest"),
    ("JOBS_ARM_API_VERSION", "2025-8-1"),
    ("JOBS_ARM_API_VERSION", "2025-08-01-beta"),
    ("JOBS_ARM_API_VERSION", "2025-08-01&x=1"),
    ("JOBS_TABLE", "1abc"),
    ("JOBS_TABLE", "ab"),
    ("JOBS_TABLE", "back-up"),
    ("JOBS_TABLE", "a" * 64),
    ("JOBS_INTAKE_QUEUE", "Backup-Jobs"),
    ("JOBS_INTAKE_QUEUE", "a" * 56),
    ("JOBS_INTAKE_QUEUE", "a" * 63),
    ("JOBS_INTAKE_QUEUE", "ab"),
    ("JOBS_INTAKE_QUEUE", "back--up"),
    ("JOBS_INTAKE_QUEUE", "-backup"),
    ("JOBS_INTAKE_QUEUE", "backup-"),
    ("JOBS_INTAKE_QUEUE", "back_up"),
    ("JOBS_RESULTS_QUEUE", "Results"),
    ("JOBS_RESULTS_QUEUE", "a" * 64),
    ("JOBS_WEBHOOK_SECRET", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    ("JOBS_WEBHOOK_SECRET", "whsec_"),
    ("JOBS_WEBHOOK_SECRET", "whsec_!!!!"),
    ("JOBS_WEBHOOK_URLS", "not a url"),
    ("JOBS_WEBHOOK_URLS", "https://ok.example.com/hook,ftp://files.example.com/x"),
    ("JOBS_WEBHOOK_URLS", "/relative/path"),
    ("JOBS_WEBHOOK_URLS", "hooks.example.com/x"),
    ("JOBS_CALLBACK_ALLOWED_HOSTS", "https://hooks.example.com"),
    ("JOBS_CALLBACK_ALLOWED_HOSTS", "hooks.example.com/path"),
    ("JOBS_CALLBACK_ALLOWED_HOSTS", "*.*.example.com"),
    ("JOBS_CALLBACK_ALLOWED_HOSTS", "user@hooks.example.com"),
    ("JOBS_CALLBACK_ALLOWED_HOSTS", "*.10.0.0.1"),
    ("JOBS_CALLBACK_ALLOWED_HOSTS", "::1"),
    ("JOBS_NOT_FOUND_GRACE_SECONDS", "-1"),
    ("JOBS_MAX_POLL_INTERVAL_SECONDS", "0"),
    ("JOBS_DELIVERY_RETRY_HOURS", "soon"),
]


@pytest.mark.parametrize(("name", "value"), WRONG)
def test_a_wrong_value_stops_start_up_with_one_line_naming_the_setting(name: str, value: str) -> None:
    message = config_error({**STORAGE, name: value})
    assert name in message


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://management.azure.com#fragment",
        "https://management.azure.com:abc",
        "https://management.azure.com:99999",
        "https://user:password@management.azure.com",
    ],
)
def test_arm_endpoint_that_is_not_a_bare_url_is_refused(endpoint: str) -> None:
    """Every ARM request and the operationUrl check are built on this value: a fragment, an unreadable port or
    userinfo must stop start-up, not break each request later."""
    assert "ARM_ENDPOINT" in config_error({**STORAGE, "ARM_ENDPOINT": endpoint})


def test_wrong_secret_is_not_echoed() -> None:
    message = config_error({**STORAGE, "JOBS_WEBHOOK_SECRET": "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
    assert "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" not in message


@pytest.mark.parametrize(("urls", "entry"), [("https://hooks.example.com:bad/x", 1),
                                             ("https://a.example.com/x, https://b.example.com:99999/y", 2)])
def test_a_webhook_url_with_an_unreadable_port_is_refused(urls: str, entry: int) -> None:
    message = config_error({**STORAGE, "JOBS_WEBHOOK_URLS": urls})
    assert message.startswith(f"JOBS_WEBHOOK_URLS entry {entry} (") and "is not an absolute http(s) URL" in message


def test_wrong_webhook_url_does_not_echo_its_query() -> None:
    message = config_error({**STORAGE, "JOBS_WEBHOOK_URLS": "ftp://files.example.com/x?sig=SASSIGNATURE"})
    assert "JOBS_WEBHOOK_URLS" in message and "SASSIGNATURE" not in message
    # Slack and Teams webhooks carry their secret in the path
    message = config_error({**STORAGE, "JOBS_WEBHOOK_URLS": "hooks.slack.com/services/T000/B000/PATHSECRET"})
    assert "JOBS_WEBHOOK_URLS entry 1" in message and "PATHSECRET" not in message


def test_every_queue_derived_from_an_accepted_intake_queue_is_a_valid_queue_name() -> None:
    """``<intake>-rejected``, ``-poll``, ``-deliver`` and the host's ``-poison`` queues of the triggered ones
    (``<intake>-deliver-poison``) must all be legal, or start-up accepts a name the tracker cannot create."""
    bad = {}
    for length in range(3, 64):
        name = "q" * length
        try:
            s = load(JOBS_INTAKE_QUEUE=name)
        except ConfigError:
            continue
        wrong = [queue for queue in s.all_queues() if not QUEUE_NAME.match(queue)]
        if wrong:
            bad[length] = wrong
    assert not bad, f"accepted intake queue lengths with invalid derived queues: {sorted(bad)}"


# ---------------------------------------------------------------------------------------------------------------
# JOBS_WEBHOOK_SECRET as a Key Vault reference the platform has not resolved (yet)


@pytest.mark.parametrize(
    "reference",
    [
        "@Microsoft.KeyVault(SecretUri=https://prod-kv.vault.azure.net/secrets/webhook-secret/)",
        "@Microsoft.KeyVault(SecretUri=https://prod-kv.vault.azure.net/secrets/webhook-secret/0123456789abcdef)",
        "@Microsoft.KeyVault(VaultName=prod-kv;SecretName=webhook-secret)",
        " @Microsoft.KeyVault(VaultName=prod-kv;SecretName=webhook-secret;SecretVersion=abc) ",
    ],
)
def test_an_unresolved_key_vault_reference_is_a_recorded_problem_not_a_config_error(reference: str) -> None:
    s = load(JOBS_WEBHOOK_SECRET=reference)
    assert s.webhook_secret is None  # never used as a key, never sent unsigned in its place
    problem = s.webhook_secret_problem or ""
    assert "JOBS_WEBHOOK_SECRET" in problem and "Key Vault reference" in problem and "unresolved" in problem
    assert "Key Vault Secrets User" in problem and "restart" in problem
    assert "\n" not in problem


def test_a_resolved_or_absent_secret_has_no_problem() -> None:
    assert load(JOBS_WEBHOOK_SECRET=SECRET).webhook_secret_problem is None
    assert load().webhook_secret_problem is None


REFERENCE_TAIL = (
    ": the app's identity cannot read the secret (yet). Check that the identity has the Key Vault Secrets User role "
    "on the vault (a new role assignment can take minutes to apply), then restart the app. Until then webhook "
    "deliveries are retried, never sent unsigned"
)


@pytest.mark.parametrize(
    ("reference", "where"),
    [
        ("@Microsoft.KeyVault(VaultName=kv-prod;SecretName=webhook-secret)",
         " (secret webhook-secret in vault kv-prod)"),
        ("@Microsoft.KeyVault( vaultname = kv-prod ; SECRETNAME = webhook-secret )",
         " (secret webhook-secret in vault kv-prod)"),
        ("@Microsoft.KeyVault(SecretUri=https://kv-prod.vault.azure.net/secrets/webhook-secret/abc123)",
         " (secret webhook-secret in vault kv-prod)"),
        ("@Microsoft.KeyVault(secreturi=https://kv-prod.vault.azure.net/Secrets/webhook-secret)",
         " (secret webhook-secret in vault kv-prod)"),
        ("@Microsoft.KeyVault(SecretUri=https://kv-prod.vault.azure.net/secrets/s1?api-version=7.4)",
         " (secret s1 in vault kv-prod)"),
        ("@Microsoft.KeyVault(SecretUri=https://kv-prod.vault.azure.net/keys/webhook-secret)", ""),
        ("@Microsoft.KeyVault(SecretUri=https://kv-prod.vault.azure.net/secrets)", ""),
        ("@Microsoft.KeyVault(SecretUri=https:///secrets/webhook-secret)", ""),
        ("@Microsoft.KeyVault(VaultName=kv-prod)", ""),
        ("@Microsoft.KeyVault(SecretName=webhook-secret)", ""),
        ("@Microsoft.KeyVault(VaultName=kv-prod;SecretName=webhook-secret;SecretUri=https://other-kv.vault.azure.net"
         "/secrets/s2)", " (secret s2 in vault other-kv)"),
        ("@Microsoft.KeyVault(VaultName=kv-prod;SecretName=web=hook)", ""),
    ],
)
def test_an_unresolved_key_vault_reference_names_its_secret_and_vault_when_it_can(reference: str, where: str) -> None:
    s = Settings.from_env({S: ACCOUNT, "JOBS_WEBHOOK_SECRET": reference})
    assert s.webhook_secret is None
    expected = f"JOBS_WEBHOOK_SECRET is an unresolved Key Vault reference{where}{REFERENCE_TAIL}"
    assert s.webhook_secret_problem == expected


# ---------------------------------------------------------------------------------------------------------------
# Secrets stay out of repr (and so out of logs)


def _with_secrets(**extra: str) -> Settings:
    return Settings.from_env(
        {
            "AzureWebJobsStorage": f"DefaultEndpointsProtocol=https;AccountName=prodstore;AccountKey={ACCOUNT_KEY}",
            "JOBS_WEBHOOK_SECRET": SECRET,
            "JOBS_ARM_TOKEN": "eyJ0eXAiOiJKV1QiLCJhbGciOi.sim-token-value",
            **extra,
        }
    )


def test_storage_key_webhook_secret_and_token_are_not_in_repr() -> None:
    text = repr(_with_secrets())
    assert ACCOUNT_KEY not in text
    assert SECRET not in text and SECRET.removeprefix("whsec_") not in text
    assert "sim-token-value" not in text
    assert "Settings(" in text  # still a useful repr


def test_sas_signature_in_a_webhook_url_is_not_in_repr() -> None:
    url = (
        "https://prod-12.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke"
        "?api-version=2016-10-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=LogicAppSasSignature123"
    )
    text = repr(_with_secrets(JOBS_WEBHOOK_URLS=url))
    assert "LogicAppSasSignature123" not in text


# ---------------------------------------------------------------------------------------------------------------
# timer_schedule


@pytest.mark.parametrize(
    ("seconds", "schedule"),
    [
        (1, "*/1 * * * * *"),
        (5, "*/5 * * * * *"),
        (7, "*/6 * * * * *"),
        (30, "*/30 * * * * *"),
        (45, "*/30 * * * * *"),
        (59, "*/30 * * * * *"),
        (60, "0 */1 * * * *"),
        (90, "0 */1 * * * *"),
        (300, "0 */5 * * * *"),
        (3599, "0 */30 * * * *"),
        (3600, "0 0 */1 * * *"),
        (7200, "0 0 */2 * * *"),
        (5 * 3600, "0 0 */4 * * *"),
        (86400, "0 0 0 * * *"),
        (10 * 86400, "0 0 0 * * *"),
    ],
)
def test_timer_schedule(seconds: int, schedule: str) -> None:
    assert timer_schedule(seconds) == schedule


def _period(schedule: str) -> int:
    """The gap in seconds between two firings of a six-field NCRONTAB schedule made by ``timer_schedule``."""
    fields = schedule.split()
    assert len(fields) == 6
    second, minute, hour = fields[:3]
    assert fields[3:] == ["*", "*", "*"]
    if second.startswith("*/"):
        assert (minute, hour) == ("*", "*")
        step, unit, whole = int(second[2:]), 1, 60
    elif minute.startswith("*/"):
        assert (second, hour) == ("0", "*")
        step, unit, whole = int(minute[2:]), 60, 60
    elif hour.startswith("*/"):
        assert (second, minute) == ("0", "0")
        step, unit, whole = int(hour[2:]), 3600, 24
    else:
        assert (second, minute, hour) == ("0", "0", "0")
        return 86400
    assert whole % step == 0  # evenly spaced: the step divides the minute, hour or day
    return step * unit


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.integers(1, 200), st.integers(1, 400_000)))
def test_timer_never_fires_less_often_than_the_setting(seconds: int) -> None:
    period = _period(timer_schedule(seconds))
    assert 1 <= period <= seconds
    assert period * 2 > min(seconds, 86400)  # the largest fitting step, not needlessly small


def test_the_timer_steps_by_the_largest_divisor_of_the_clock_not_above_the_setting() -> None:
    def largest(limit: int, of: int) -> int:
        return max(d for d in range(1, of + 1) if of % d == 0 and d <= limit and d < of)

    for seconds in range(1, 60):
        assert timer_schedule(seconds) == f"*/{largest(seconds, 60)} * * * * *", seconds
    for minutes in range(1, 60):
        for extra in (0, 59):
            assert timer_schedule(minutes * 60 + extra) == f"0 */{largest(minutes, 60)} * * * *", minutes
    for hours in range(1, 24):
        for extra in (0, 3599):
            assert timer_schedule(hours * 3600 + extra) == f"0 0 */{largest(hours, 24)} * * *", hours
    for seconds in (24 * 3600, 24 * 3600 + 1, 25 * 3600, 7 * 24 * 3600):
        assert timer_schedule(seconds) == "0 0 0 * * *"


# ---------------------------------------------------------------------------------------------------------------
# for_indexing: what the triggers bind to when from_env fails


def test_for_indexing_takes_the_triggers_own_settings_when_they_are_valid() -> None:
    s = Settings.for_indexing({"JOBS_INTAKE_QUEUE": " team-a-jobs ", "JOBS_POLL_SECONDS": " 45 ",
                               "AzureWebJobsStorage": "not a connection string"})
    assert s.intake_queue == "team-a-jobs"
    assert s.poll_seconds == 45 and type(s.poll_seconds) is int
    assert s.poll_queue == "team-a-jobs-poll"
    assert s.storage == StorageSettings()


def test_for_indexing_falls_back_to_the_defaults_for_missing_or_blank_settings() -> None:
    blank = {"JOBS_INTAKE_QUEUE": "", "JOBS_POLL_SECONDS": ""}
    for env in ({}, blank, {"JOBS_INTAKE_QUEUE": "  ", "JOBS_POLL_SECONDS": " "}):
        s = Settings.for_indexing(env)
        assert (s.intake_queue, s.poll_seconds) == ("backup-jobs", 30), env


@pytest.mark.parametrize("queue", ["Backup_Jobs", "ab", "a" * 49, "-jobs"])
def test_for_indexing_indexes_the_default_intake_queue_for_a_wrong_one(queue: str) -> None:
    s = Settings.for_indexing({"JOBS_INTAKE_QUEUE": queue, "JOBS_POLL_SECONDS": "10"})
    assert (s.intake_queue, s.poll_seconds) == ("backup-jobs", 10)


def test_for_indexing_leaves_room_for_the_longest_derived_suffix() -> None:
    longest = "a" * 48  # 63 - 15: "-deliver-poison" still fits Azure's 63 characters
    assert Settings.for_indexing({"JOBS_INTAKE_QUEUE": longest}).intake_queue == longest
    assert Settings.for_indexing({"JOBS_INTAKE_QUEUE": longest + "b"}).intake_queue == "backup-jobs"


@pytest.mark.parametrize("poll", ["0", "-5", "1.5", "soon", "nan"])
def test_for_indexing_indexes_the_default_period_for_a_wrong_one(poll: str) -> None:
    s = Settings.for_indexing({"JOBS_INTAKE_QUEUE": "team-a-jobs", "JOBS_POLL_SECONDS": poll})
    assert (s.intake_queue, s.poll_seconds) == ("team-a-jobs", 30)


def test_for_indexing_accepts_the_shortest_period() -> None:
    assert Settings.for_indexing({"JOBS_POLL_SECONDS": "1"}).poll_seconds == 1


def test_for_indexing_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBS_INTAKE_QUEUE", "from-the-environment")
    monkeypatch.setenv("JOBS_POLL_SECONDS", "20")
    s = Settings.for_indexing()
    assert (s.intake_queue, s.poll_seconds) == ("from-the-environment", 20)


# ---------------------------------------------------------------------------------------------------------------
# One clear line for every wrong value: the whole line, as an operator reads it

ACCOUNT = f"DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey={ACCOUNT_KEY}"
S = "AzureWebJobsStorage"
MESSAGES = [
    ({S: ACCOUNT, "JOBS_WEBHOOK_SECRET": "nope"},
     "JOBS_WEBHOOK_SECRET must be a Standard Webhooks secret: 'whsec_' followed by base64"),
    ({S: ACCOUNT, "JOBS_WEBHOOK_SECRET": "whsec_!!!"}, "JOBS_WEBHOOK_SECRET is not valid base64 after 'whsec_'"),
    ({S: ACCOUNT, "JOBS_POLL_SECONDS": "1.5"},
     "JOBS_POLL_SECONDS must be a whole number from 1 to 86400, got '1.5'"),
    ({S: ACCOUNT, "JOBS_MAX_TRACKING_HOURS": "soon"},
     "JOBS_MAX_TRACKING_HOURS must be a number from 0.0001 to 2160, got 'soon'"),
    ({S: ACCOUNT, "JOBS_MAX_TRACKING_HOURS": "inf"},
     "JOBS_MAX_TRACKING_HOURS must be at least 0.0001 and at most 2160 (90 days, the "
     "longest timeoutMinutes), got 'inf'"),
    ({S: ACCOUNT, "JOBS_NOT_FOUND_GRACE_SECONDS": "-1"},
     "JOBS_NOT_FOUND_GRACE_SECONDS must be at least 0 and at most 604800 (7 days), "
     "got '-1'"),
    ({S: ACCOUNT, "JOBS_RETENTION_DAYS": "0"},
     "JOBS_RETENTION_DAYS must be at least 0.0001 and at most 3650 (ten years), got "
     "'0'"),
    ({S: ACCOUNT, "JOBS_RETENTION_DAYS": "0.5", "JOBS_DELIVERY_RETRY_HOURS": "36"},
     "JOBS_RETENTION_DAYS must be at least JOBS_DELIVERY_RETRY_HOURS (36 h = 1.5 days), or an ended job may be "
     "removed while its webhook delivery is still retried; got '0.5'"),
    ({S: ACCOUNT, "JOBS_DELIVERY_RETRY_HOURS": "0"},
     "JOBS_DELIVERY_RETRY_HOURS must be at least 0.0001 and at most 168 (7 days, the "
     "longest a queue message stays hidden), got '0'"),
    ({S: ACCOUNT, "ARM_ENDPOINT": "https://user@management.azure.com"},
     "ARM_ENDPOINT 'https://user@management.azure.com' must be a bare https URL such as https://management.azure.com"),
    ({S: ACCOUNT, "ARM_ENDPOINT": "https://:pw@management.azure.com"},
     "ARM_ENDPOINT 'https://:pw@management.azure.com' must be a bare https URL such as https://management.azure.com"),
    ({S: ACCOUNT, "ARM_ENDPOINT": "https://management.azure.com/#"},
     "ARM_ENDPOINT 'https://management.azure.com/#' must be a bare https URL such as https://management.azure.com"),
    ({S: ACCOUNT, "JOBS_LIST_THRESHOLD": "2.5"},
     "JOBS_LIST_THRESHOLD must be a whole number from 1 to 1000, got '2.5'"),
    ({S: ACCOUNT, "JOBS_RESOURCE_GRAPH": "maybe"}, "JOBS_RESOURCE_GRAPH must be one of on, off, got 'maybe'"),
    ({S: ACCOUNT, "JOBS_LIST_THRESHOLD": "0"},
     "JOBS_LIST_THRESHOLD must be at least 1 and at most 1000 (above 50, a poll message's due jobs, never "
     "lists), got '0'"),
    ({S: ACCOUNT, "JOBS_ARM_READ_RESERVE": "-1"},
     "JOBS_ARM_READ_RESERVE must be at least 0 and at most 200 (ARM's bucket holds "
     "250 reads), got '-1'"),
    ({S: ACCOUNT, "JOBS_ARM_READ_RESERVE": "12.5"},
     "JOBS_ARM_READ_RESERVE must be a whole number from 0 to 200, got '12.5'"),
    ({S: ACCOUNT, "JOBS_ARM_READ_RESERVE": "201"},
     "JOBS_ARM_READ_RESERVE must be at least 0 and at most 200 (ARM's bucket holds "
     "250 reads), got '201'"),
    ({S: ACCOUNT, "JOBS_DELIVERY_FIRST_RETRY_SECONDS": "0.01"},
     "JOBS_DELIVERY_FIRST_RETRY_SECONDS must be at least 0.05 and at most 3600 (an "
     "hour), got '0.01'"),
    ({S: ACCOUNT, "JOBS_WEBHOOK_TIMEOUT_SECONDS": "0.01"},
     "JOBS_WEBHOOK_TIMEOUT_SECONDS must be at least 0.1 and at most 300 (half the "
     "deliver function's 10-minute functionTimeout), got '0.01'"),
    ({S: ACCOUNT, "JOBS_MAX_POLL_INTERVAL_SECONDS": "0.5"},
     "JOBS_MAX_POLL_INTERVAL_SECONDS must be at least 1 and at most 86400 (a day), "
     "got '0.5'"),
    ({S: ACCOUNT, "JOBS_MAX_TRACKING_HOURS": "0.00001"},
     "JOBS_MAX_TRACKING_HOURS must be at least 0.0001 and at most 2160 (90 days, the "
     "longest timeoutMinutes), got '0.00001'"),
    ({S: ACCOUNT, "JOBS_INTAKE_QUEUE": "a" * 49},
     f"JOBS_INTAKE_QUEUE '{'a' * 49}' is not a queue name (3-48 lower-case letters, digits and single hyphens)"),
    ({S: ACCOUNT, "JOBS_RESULTS_QUEUE": "Bad_Name"},
     "JOBS_RESULTS_QUEUE 'Bad_Name' is not a queue name (3-52 lower-case letters, digits and single hyphens)"),
    ({S: ACCOUNT, "JOBS_DEADLETTER_QUEUE": "Bad_Name"},
     "JOBS_DEADLETTER_QUEUE 'Bad_Name' is not a queue name (3-63 lower-case letters, digits and single hyphens)"),
]


@pytest.mark.parametrize(("env", "message"), MESSAGES)
def test_each_wrong_value_gets_its_whole_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert str(info.value) == message


def test_numbers_at_their_bounds_are_accepted() -> None:
    s = Settings.from_env({S: ACCOUNT, "JOBS_RETENTION_DAYS": "1.5", "JOBS_DELIVERY_RETRY_HOURS": "36",
                           "JOBS_NOT_FOUND_GRACE_SECONDS": "0", "JOBS_MAX_TRACKING_HOURS": "0.0001"})
    assert (s.retention_days, s.delivery_retry_hours, s.not_found_grace_seconds) == (1.5, 36, 0)
    assert s.max_tracking_hours == 0.0001
    assert Settings.from_env({S: ACCOUNT, "JOBS_RETENTION_DAYS": "0.0001", "JOBS_DELIVERY_RETRY_HOURS": "0.0024"})
    # The default retry window (24 h) fits the shortest retention of a day.
    assert Settings.from_env({S: ACCOUNT, "JOBS_RETENTION_DAYS": "1"}).retention_days == 1
    with pytest.raises(ConfigError, match="JOBS_RETENTION_DAYS must be at least JOBS_DELIVERY_RETRY_HOURS"):
        Settings.from_env({S: ACCOUNT, "JOBS_RETENTION_DAYS": "0.99"})


def test_every_tunable_is_read_from_its_own_setting_at_its_lowest_value() -> None:
    s = Settings.from_env({S: ACCOUNT, "JOBS_LIST_THRESHOLD": "1", "JOBS_DELIVERY_RETRY_HOURS": "0.0001",
                           "JOBS_DELIVERY_FIRST_RETRY_SECONDS": "0.05", "JOBS_WEBHOOK_TIMEOUT_SECONDS": "0.1",
                           "JOBS_MAX_POLL_INTERVAL_SECONDS": "1", "JOBS_NOT_FOUND_GRACE_SECONDS": "0.5",
                           "JOBS_MAX_TRACKING_HOURS": "0.5", "JOBS_INTAKE_QUEUE": "a" * 48})
    assert s.list_threshold == 1 and type(s.list_threshold) is int
    assert (s.delivery_retry_hours, s.delivery_first_retry_seconds, s.webhook_timeout_seconds) == (0.0001, 0.05, 0.1)
    assert (s.max_poll_interval_seconds, s.not_found_grace_seconds, s.max_tracking_hours) == (1, 0.5, 0.5)
    assert s.intake_queue == "a" * 48


def test_the_tunables_defaults() -> None:
    s = Settings.from_env({S: ACCOUNT})
    assert (s.list_threshold, s.delivery_retry_hours, s.delivery_first_retry_seconds) == (3, 24, 10)
    assert (s.webhook_timeout_seconds, s.max_poll_interval_seconds, s.not_found_grace_seconds) == (15, 300, 900)


def test_an_arm_endpoint_loses_only_its_trailing_slashes() -> None:
    assert Settings.from_env({S: ACCOUNT, "ARM_ENDPOINT": "https://arm.example.X//"}).arm_endpoint == (
        "https://arm.example.X"
    )


def test_the_arm_read_reserve_defaults_to_50_and_takes_its_bounds() -> None:
    assert Settings.from_env({S: ACCOUNT}).arm_read_reserve == 50
    assert Settings.from_env({S: ACCOUNT, "JOBS_ARM_READ_RESERVE": "0"}).arm_read_reserve == 0
    reserve = Settings.from_env({S: ACCOUNT, "JOBS_ARM_READ_RESERVE": "200"}).arm_read_reserve
    assert reserve == 200 and type(reserve) is int


# ---------------------------------------------------------------------------------------------------------------
# The table's parts: each provider's api-version, what a parser accepts, the log level


def test_every_provider_brings_its_api_version_setting_and_default() -> None:
    settings = Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert settings.api_versions == {kind.api_version_setting: kind.default_api_version for kind in PROVIDERS}
    changed = Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true",
                                 "JOBS_ARM_API_VERSION": "2025-02-01", "JOBS_CRR_API_VERSION": "2021-11-15"})
    assert (changed.api_versions["JOBS_ARM_API_VERSION"], changed.api_versions["JOBS_CRR_API_VERSION"]) == (
        "2025-02-01", "2021-11-15")


def test_a_wrong_log_level_is_one_line_naming_it() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "JOBS_LOG_LEVEL": "LOUD"})
    assert str(info.value) == "JOBS_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'LOUD'"
    assert Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "JOBS_LOG_LEVEL": "debug"})


@pytest.mark.parametrize(
    ("parser", "accepts"),
    [
        (Number(1, whole=True), "whole number from 1"),
        (Number(0.0001), "number from 0.0001"),
        (Number(0, whole=True, maximum=200, why="w"), "whole number, 0 to 200"),
        (QueueName(suffix_room=15), "queue name, 3-48 characters"),
        (Choice(("vault", "job")), "`vault`, `job`"),
    ],
)
def test_a_parser_says_what_it_accepts(parser: object, accepts: str) -> None:
    assert parser.accepts == accepts  # type: ignore[attr-defined]


def test_a_choice_is_read_in_any_case_and_a_switch_is_a_bool() -> None:
    assert Choice(("vault", "job"))("X", "VAULT") == "vault"
    assert Switch()("X", "On") is True
    assert Switch()("X", "off") is False
    assert Switch().accepts == "`on`, `off`"


def test_a_default_is_parsed_like_a_value_and_a_wrong_one_names_its_setting() -> None:
    setting = Setting("JOBS_EXAMPLE", "example", Number(1), "0", "a setting whose default is out of its bounds")
    with pytest.raises(ConfigError) as info:
        setting.read({})
    assert str(info.value) == "JOBS_EXAMPLE must be at least 1, got '0'"
    assert Setting("JOBS_EXAMPLE", "example", Number(1, whole=True), "7", "doc").read({"JOBS_EXAMPLE": " "}) == 7


# ---------------------------------------------------------------------------------------------------------------
# Point 11 (issue 20): every numeric setting has bounds, says them, and its largest value works


def test_point11_a_tracking_window_that_would_overflow_a_date_is_refused_naming_setting_value_and_range() -> None:
    message = config_error({**STORAGE, "JOBS_MAX_TRACKING_HOURS": "1e8"})
    assert message == ("JOBS_MAX_TRACKING_HOURS must be at least 0.0001 and at most 2160 (90 days, the longest "
                       "timeoutMinutes), got '1e8'")


def test_point11_the_delivery_window_is_bounded_by_how_long_a_queue_message_can_stay_hidden() -> None:
    message = config_error({**STORAGE, "JOBS_DELIVERY_RETRY_HOURS": "169"})
    assert message.startswith("JOBS_DELIVERY_RETRY_HOURS must be at least 0.0001 and at most 168 (7 days")
    assert load(JOBS_DELIVERY_RETRY_HOURS="168", JOBS_RETENTION_DAYS="7").delivery_retry_hours == 168


def test_point11_every_numeric_setting_has_a_maximum_with_its_reason_and_the_readme_shows_the_range() -> None:
    from datetime import UTC, datetime, timedelta

    from jobs.config import SETTINGS

    numbers = [s for s in SETTINGS if isinstance(s.parse, Number)]
    assert len(numbers) >= 11
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for setting in numbers:
        parser = setting.parse
        assert isinstance(parser, Number) and parser.maximum is not None and parser.why, setting.name
        assert f"| `{setting.name}` | {setting.default_text} | {parser.accepts} |" in readme
        assert parser.accepts.endswith(f" to {parser.maximum:g}")
        too_big = str(int(parser.maximum) * 10 + 1)
        with pytest.raises(ConfigError, match=rf"^{setting.name} must be .* at most {parser.maximum:g} .*, got "
                                              rf"'{too_big}'$"):
            parser(setting.name, too_big)
    # the largest values the settings take still make dates (what intake and the sweep compute)
    largest = load(JOBS_MAX_TRACKING_HOURS="2160", JOBS_RETENTION_DAYS="3650")
    now = datetime.now(UTC)
    assert now + timedelta(hours=largest.max_tracking_hours) > now
    assert now - timedelta(days=largest.retention_days) < now


@pytest.mark.parametrize("value", ["tracker.example.com", "https://tracker.example.com/?a=1", "https://u@tracker.example.com",
                                   "http://tracker.example.com", "https://tracker.example.com#x", "ftp://x.example"])
def test_point15_a_public_base_url_that_is_not_an_https_base_is_refused(value: str) -> None:
    message = config_error({**STORAGE, "JOBS_PUBLIC_BASE_URL": value})
    assert message.startswith(f"JOBS_PUBLIC_BASE_URL {value!r} ")


def test_point15_the_public_base_url_is_kept_without_its_trailing_slash_and_is_off_by_default() -> None:
    assert load().public_base_url is None
    assert load(JOBS_PUBLIC_BASE_URL="https://api.example.com/backup/").public_base_url == \
        "https://api.example.com/backup"
    assert load(JOBS_PUBLIC_BASE_URL="http://127.0.0.1:7071").public_base_url == "http://127.0.0.1:7071"
