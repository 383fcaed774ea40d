"""Settings: what mutation testing (`make mutation`) showed no test pinned down."""

from __future__ import annotations

import pytest

from jobs.config import ConfigError, Settings, StorageSettings, timer_schedule

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

KEY = "c2VjcmV0LWFjY291bnQta2V5LXRoYXQtbXVzdC1uZXZlci1sZWFr"
ACCOUNT = f"DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey={KEY}"
S = "AzureWebJobsStorage"
KNOWN_KEYS = (
    "DefaultEndpointsProtocol, AccountName, AccountKey, EndpointSuffix, BlobEndpoint, QueueEndpoint, TableEndpoint, "
    "FileEndpoint, SharedAccessSignature, UseDevelopmentStorage, DevelopmentStorageProxyUri"
)
MESSAGES = [
    ({S: '"' + ACCOUNT}, "AzureWebJobsStorage is in quotes: give the connection string without them"),
    ({S: ACCOUNT + "'"}, "AzureWebJobsStorage is in quotes: give the connection string without them"),
    ({S: ACCOUNT + ";;Foo"},
     "AzureWebJobsStorage is not a storage connection string: part 5 has no '=' (expected Key=Value;... pairs)"),
    ({S: "AccountName=acct1;AcountKey=" + KEY},
     f"AzureWebJobsStorage has an unknown connection string key 'AcountKey' (did you mean AccountKey?) "
     f"(known: {KNOWN_KEYS})"),
    ({S: "AccountName=acct1;ACCOUNTKEYS=" + KEY},
     f"AzureWebJobsStorage has an unknown connection string key 'ACCOUNTKEYS' (did you mean AccountKey?) "
     f"(known: {KNOWN_KEYS})"),
    ({S: "AccountName=acct1;Bad Key!=x;AccountKey=" + KEY},
     f"AzureWebJobsStorage has an unknown connection string key in part 2 (known: {KNOWN_KEYS})"),
    ({S: "AccountName=acct1;Colour=blue;AccountKey=" + KEY},
     f"AzureWebJobsStorage has an unknown connection string key 'Colour' (known: {KNOWN_KEYS})"),
    ({S: "UseDevelopmentStorage=true;AccountName=a;AccountKey=k;DevelopmentStorageProxyUri=http://x"},
     "AzureWebJobsStorage UseDevelopmentStorage=true cannot be combined with AccountKey, AccountName"),
    ({S: "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=ftp://" + "p" * 300},
     "AzureWebJobsStorage DevelopmentStorageProxyUri '" + ("ftp://" + "p" * 300)[:200]
     + "' is not an absolute http(s) URL"),
    ({S: "UseDevelopmentStorage=yes-please-very-much-so-indeed"},
     "AzureWebJobsStorage UseDevelopmentStorage must be 'true', got 'yes-please-very-much'"),
    ({S: ACCOUNT.replace("https", "ftp" * 10)},
     "AzureWebJobsStorage DefaultEndpointsProtocol must be 'https' or 'http', got 'ftpftpftpftpftpftpft'"),
    ({S: ACCOUNT + ";BlobEndpoint=ftp://x/" + "b" * 300 + "?sig=SECRET"},
     "AzureWebJobsStorage BlobEndpoint '" + ("ftp://x/" + "b" * 300)[:200] + "' is not an absolute http(s) URL"),
    ({S: ACCOUNT + ";BlobEndpoint=ftp://x/?sig=SECRET?x"},
     "AzureWebJobsStorage BlobEndpoint 'ftp://x/' is not an absolute http(s) URL"),
    ({S: ACCOUNT + ";BlobEndpoint=two words"},
     "AzureWebJobsStorage BlobEndpoint 'two words' is not an absolute http(s) URL"),
    ({S: ACCOUNT + ";TableEndpoint=nope"}, "AzureWebJobsStorage TableEndpoint 'nope' is not an absolute http(s) URL"),
    ({S: ACCOUNT + ";FileEndpoint=nope"}, "AzureWebJobsStorage FileEndpoint 'nope' is not an absolute http(s) URL"),
    ({S: ACCOUNT + ";EndpointSuffix=" + "-bad" * 40},
     "AzureWebJobsStorage EndpointSuffix '" + ("-bad" * 40)[:100] + "' is not a DNS suffix such as core.windows.net"),
    ({S: "AccountName=acct1;AccountKey=abc$"},
     "AzureWebJobsStorage AccountKey is not base64 (cut short, quoted or mistyped?)"),
    ({S: "AccountName=acct1;AccountKey=YWJj ZA=="},
     "AzureWebJobsStorage AccountKey is not base64 (cut short, quoted or mistyped?)"),
    ({S: "AccountName=acct1;SharedAccessSignature=?sv=1&ss=b&sig=x"},
     "AzureWebJobsStorage SharedAccessSignature is an account SAS without queue and table access "
     "(ss must include q and t)"),
    ({S: "AccountName=acct1;SharedAccessSignature=?sv=1&ss=qt"},
     "AzureWebJobsStorage SharedAccessSignature is not a SAS token (it has no sig=)"),
    ({S: "QueueEndpoint=https://q.example;SharedAccessSignature=sig=x"},
     "AzureWebJobsStorage cannot reach the table service: it has neither TableEndpoint nor AccountName "
     "(with EndpointSuffix outside Azure's public cloud)"),
    ({S: "TableEndpoint=https://t.example;SharedAccessSignature=sig=x"},
     "AzureWebJobsStorage cannot reach the queue service: it has neither QueueEndpoint nor AccountName "
     "(with EndpointSuffix outside Azure's public cloud)"),
    ({S: "AccountName=" + "Bad_Account" * 5 + ";AccountKey=" + KEY},
     "AzureWebJobsStorage AccountName 'Bad_AccountBad_AccountBad_Acco' is not a storage account name "
     "(3-24 lower-case letters and digits), so it cannot name the queue endpoint"),
    ({S: "AccountName=Bad_Account;AccountKey=" + KEY + ";QueueEndpoint=https://q.example"},
     "AzureWebJobsStorage AccountName 'Bad_Account' is not a storage account name "
     "(3-24 lower-case letters and digits), so it cannot name the table endpoint"),
    ({S: ACCOUNT, "JOBS_WEBHOOK_SECRET": "nope"},
     "JOBS_WEBHOOK_SECRET must be a Standard Webhooks secret: 'whsec_' followed by base64"),
    ({S: ACCOUNT, "JOBS_WEBHOOK_SECRET": "whsec_!!!"}, "JOBS_WEBHOOK_SECRET is not valid base64 after 'whsec_'"),
    ({S: ACCOUNT, "JOBS_POLL_SECONDS": "1.5"}, "JOBS_POLL_SECONDS must be a whole number from 1, got '1.5'"),
    ({S: ACCOUNT, "JOBS_MAX_TRACKING_HOURS": "soon"},
     "JOBS_MAX_TRACKING_HOURS must be a number from 0.0001, got 'soon'"),
    ({S: ACCOUNT, "JOBS_MAX_TRACKING_HOURS": "inf"}, "JOBS_MAX_TRACKING_HOURS must be at least 0.0001, got 'inf'"),
    ({S: ACCOUNT, "JOBS_NOT_FOUND_GRACE_SECONDS": "-1"}, "JOBS_NOT_FOUND_GRACE_SECONDS must be at least 0, got '-1'"),
    ({S: ACCOUNT, "JOBS_RETENTION_DAYS": "0"}, "JOBS_RETENTION_DAYS must be at least 0.0001, got '0'"),
    ({S: ACCOUNT, "JOBS_RETENTION_DAYS": "0.5", "JOBS_DELIVERY_RETRY_HOURS": "36"},
     "JOBS_RETENTION_DAYS must be at least JOBS_DELIVERY_RETRY_HOURS (36 h = 1.5 days), or an ended job may be "
     "removed while its webhook delivery is still retried; got '0.5'"),
    ({S: ACCOUNT, "JOBS_DELIVERY_RETRY_HOURS": "0"}, "JOBS_DELIVERY_RETRY_HOURS must be at least 0.0001, got '0'"),
    ({"AzureWebJobsStorage__acountName": "x"},
     "AzureWebJobsStorage__acountName is not a setting of an identity-based connection (did you mean "
     "AzureWebJobsStorage__accountName?) (known: __accountName, __blobServiceUri, __queueServiceUri, "
     "__tableServiceUri, __serviceUri, __credential, __clientId)"),
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


def test_a_connection_string_comes_back_without_blank_parts_or_spaces_and_keeps_its_last_semicolon() -> None:
    assert Settings.from_env({S: f" AccountName = acct1 ;; AccountKey={KEY} ;"}).storage.connection_string == (
        f"AccountName=acct1;AccountKey={KEY};"
    )
    assert Settings.from_env({S: f"AccountName=acct1;AccountKey={KEY}"}).storage.connection_string == (
        f"AccountName=acct1;AccountKey={KEY}"
    )


def test_a_sas_token_is_read_with_or_without_its_question_mark_and_with_equals_signs_in_values() -> None:
    for sas in ("?sig=abc%3D", "sig=abc=", "?sv=2022-11-02&ss=qtb&sig=a=b"):
        storage = Settings.from_env({S: f"AccountName=acct1;SharedAccessSignature={sas}"}).storage
        assert storage.connection_string == f"AccountName=acct1;SharedAccessSignature={sas}"


def test_development_storage_behind_a_proxy_keeps_its_scheme_and_brackets_an_ipv6_host() -> None:
    s = Settings.from_env({S: "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://[::1]:9999/x"})
    assert "QueueEndpoint=http://[::1]:10001/devstoreaccount1;" in s.storage.connection_string
    s = Settings.from_env({S: "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=https://azurite.local"})
    assert "TableEndpoint=https://azurite.local:10002/devstoreaccount1;" in s.storage.connection_string
    assert s.storage.connection_string.startswith("DefaultEndpointsProtocol=https;AccountName=devstoreaccount1;")


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


MORE_MESSAGES = [
    ({S: ACCOUNT, "azurewebjobsstorage": ACCOUNT + ";"},
     "AzureWebJobsStorage and azurewebjobsstorage are the same setting (names are case-insensitive) with different "
     "values: keep one"),
    ({"AzureWebJobsStorage__accountName": "a1", "azurewebjobsstorage__ACCOUNTNAME": "a2"},
     "AzureWebJobsStorage__accountName and azurewebjobsstorage__ACCOUNTNAME are the same setting (names are "
     "case-insensitive) with different values: keep one"),
    ({"AzureWebJobsStorage__accountname": "acct1", "AzureWebJobsStorage__CLIENTID": "cid"},
     "AzureWebJobsStorage__CLIENTID 'cid' is not a client id (a GUID)"),
    ({S: ACCOUNT, "ARM_ENDPOINT": "https://user@management.azure.com"},
     "ARM_ENDPOINT 'https://user@management.azure.com' must be a bare https URL such as https://management.azure.com"),
    ({S: ACCOUNT, "ARM_ENDPOINT": "https://:pw@management.azure.com"},
     "ARM_ENDPOINT 'https://:pw@management.azure.com' must be a bare https URL such as https://management.azure.com"),
    ({S: ACCOUNT, "ARM_ENDPOINT": "https://management.azure.com/#"},
     "ARM_ENDPOINT 'https://management.azure.com/#' must be a bare https URL such as https://management.azure.com"),
    ({S: ACCOUNT, "JOBS_LIST_THRESHOLD": "2.5"}, "JOBS_LIST_THRESHOLD must be a whole number from 1, got '2.5'"),
    ({S: ACCOUNT, "JOBS_LIST_THRESHOLD": "0"}, "JOBS_LIST_THRESHOLD must be at least 1, got '0'"),
    ({S: ACCOUNT, "JOBS_ARM_READ_RESERVE": "-1"}, "JOBS_ARM_READ_RESERVE must be at least 0, got '-1'"),
    ({S: ACCOUNT, "JOBS_ARM_READ_RESERVE": "12.5"}, "JOBS_ARM_READ_RESERVE must be a whole number from 0, got '12.5'"),
    ({S: ACCOUNT, "JOBS_ARM_READ_RESERVE": "201"},
     "JOBS_ARM_READ_RESERVE must be at most 200 (ARM's bucket holds 250 reads), got '201'"),
    ({S: ACCOUNT, "JOBS_DELIVERY_FIRST_RETRY_SECONDS": "0.01"},
     "JOBS_DELIVERY_FIRST_RETRY_SECONDS must be at least 0.05, got '0.01'"),
    ({S: ACCOUNT, "JOBS_WEBHOOK_TIMEOUT_SECONDS": "0.01"},
     "JOBS_WEBHOOK_TIMEOUT_SECONDS must be at least 0.1, got '0.01'"),
    ({S: ACCOUNT, "JOBS_MAX_POLL_INTERVAL_SECONDS": "0.5"},
     "JOBS_MAX_POLL_INTERVAL_SECONDS must be at least 1, got '0.5'"),
    ({S: ACCOUNT, "JOBS_MAX_TRACKING_HOURS": "0.00001"},
     "JOBS_MAX_TRACKING_HOURS must be at least 0.0001, got '0.00001'"),
    ({S: ACCOUNT, "JOBS_INTAKE_QUEUE": "a" * 49},
     f"JOBS_INTAKE_QUEUE '{'a' * 49}' is not a queue name (3-48 lower-case letters, digits and single hyphens)"),
    ({S: ACCOUNT, "JOBS_RESULTS_QUEUE": "Bad_Name"},
     "JOBS_RESULTS_QUEUE 'Bad_Name' is not a queue name (3-52 lower-case letters, digits and single hyphens)"),
    ({S: ACCOUNT, "JOBS_DEADLETTER_QUEUE": "Bad_Name"},
     "JOBS_DEADLETTER_QUEUE 'Bad_Name' is not a queue name (3-63 lower-case letters, digits and single hyphens)"),
]


@pytest.mark.parametrize(("env", "message"), MORE_MESSAGES)
def test_each_wrong_setting_gets_its_whole_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert str(info.value) == message


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


def test_identity_based_storage_reads_any_spelling_and_trims_trailing_slashes() -> None:
    storage = Settings.from_env({
        "AzureWebJobsStorage__queueServiceUri": "https://q.example/",
        "AzureWebJobsStorage__tableServiceUri": "https://t.example//",
        "AzureWebJobsStorage__CREDENTIAL": "managedidentity",
        "AzureWebJobsStorage__clientid": "11111111-2222-3333-4444-555555555555",
    }).storage
    assert (storage.queue_service_uri, storage.table_service_uri) == ("https://q.example", "https://t.example")
    assert storage.credential == "managedidentity"
    assert storage.client_id == "11111111-2222-3333-4444-555555555555"
    storage = Settings.from_env({"azurewebjobsstorage__ACCOUNTNAME": "acct1"}).storage
    assert storage.queue_service_uri == "https://acct1.queue.core.windows.net"


def test_an_arm_endpoint_loses_only_its_trailing_slashes() -> None:
    assert Settings.from_env({S: ACCOUNT, "ARM_ENDPOINT": "https://arm.example.X//"}).arm_endpoint == (
        "https://arm.example.X"
    )


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


def test_the_arm_read_reserve_defaults_to_50_and_takes_its_bounds() -> None:
    assert Settings.from_env({S: ACCOUNT}).arm_read_reserve == 50
    assert Settings.from_env({S: ACCOUNT, "JOBS_ARM_READ_RESERVE": "0"}).arm_read_reserve == 0
    reserve = Settings.from_env({S: ACCOUNT, "JOBS_ARM_READ_RESERVE": "200"}).arm_read_reserve
    assert reserve == 200 and type(reserve) is int
