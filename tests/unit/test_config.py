"""Settings: defaults, one clear line for every wrong value, storage as the Functions host reads it, the timer."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.config import ConfigError, Settings, StorageSettings, timer_schedule

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
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", s.arm_api_version)  # a GA version, not a preview
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
    assert s.arm_api_version == "2025-02-01"
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
# AzureWebJobsStorage


def test_storage_is_required() -> None:
    message = config_error({})
    assert "AzureWebJobsStorage" in message
    assert "AzureWebJobsStorage" in config_error({"AzureWebJobsStorage": "  "})


def test_storage_that_is_not_a_connection_string_is_refused() -> None:
    assert "AzureWebJobsStorage" in config_error({"AzureWebJobsStorage": "mystorageaccount"})


@pytest.mark.parametrize(
    "value", ["UseDevelopmentStorage=true", "usedevelopmentstorage=TRUE", " UseDevelopmentStorage = true "]
)
def test_use_development_storage_expands_to_azurite(value: str) -> None:
    storage = Settings.from_env({"AzureWebJobsStorage": value}).storage
    text = storage.connection_string or ""
    assert "AccountName=devstoreaccount1" in text
    assert "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1" in text
    assert "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1" in text
    assert "AccountKey=" in text


def test_connection_string_is_used_as_given() -> None:
    conn = (
        f"DefaultEndpointsProtocol=https;AccountName=prodstore;AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net"
    )
    storage = Settings.from_env({"AzureWebJobsStorage": conn}).storage
    assert storage.connection_string == conn
    assert storage.queue_service_uri is None


def test_identity_based_storage_by_account_name() -> None:
    storage = StorageSettings.from_env(
        {
            "AzureWebJobsStorage__accountName": "prodstore01",
            "AzureWebJobsStorage__credential": "managedidentity",
            "AzureWebJobsStorage__clientId": "9a8b7c6d-0000-1111-2222-333344445555",
        }
    )
    assert storage.connection_string is None
    assert storage.queue_service_uri == "https://prodstore01.queue.core.windows.net"
    assert storage.table_service_uri == "https://prodstore01.table.core.windows.net"
    assert storage.credential == "managedidentity"
    assert storage.client_id == "9a8b7c6d-0000-1111-2222-333344445555"


def test_identity_based_storage_by_service_uris() -> None:
    s = Settings.from_env(
        {
            "AzureWebJobsStorage__queueServiceUri": "https://prodstore.queue.core.usgovcloudapi.net/",
            "AzureWebJobsStorage__tableServiceUri": "https://prodstore.table.core.usgovcloudapi.net",
            "AzureWebJobsStorage__credential": "ManagedIdentity",
        }
    )
    assert s.storage.queue_service_uri == "https://prodstore.queue.core.usgovcloudapi.net"
    assert s.storage.table_service_uri == "https://prodstore.table.core.usgovcloudapi.net"
    assert s.storage.credential == "managedidentity"
    assert s.storage.client_id is None


def test_identity_based_storage_without_credential_uses_the_default_chain() -> None:
    storage = StorageSettings.from_env({"AzureWebJobsStorage__accountName": "prodstore01"})
    assert storage.credential is None and storage.client_id is None


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"AzureWebJobsStorage__queueServiceUri": "https://s.queue.core.windows.net"}, "AzureWebJobsStorage"),
        ({"AzureWebJobsStorage__tableServiceUri": "https://s.table.core.windows.net"}, "AzureWebJobsStorage"),
        ({"AzureWebJobsStorage__accountName": "Prod_Store"}, "AzureWebJobsStorage__accountName"),
        ({"AzureWebJobsStorage__accountName": "ab"}, "AzureWebJobsStorage__accountName"),
        ({"AzureWebJobsStorage__queueServiceUri": "s.queue.core.windows.net",
          "AzureWebJobsStorage__tableServiceUri": "https://s.table.core.windows.net"},
         "AzureWebJobsStorage__queueServiceUri"),
        ({"AzureWebJobsStorage__accountName": "prodstore", "AzureWebJobsStorage__credential": "clientsecret"},
         "AzureWebJobsStorage__credential"),
    ],
)
def test_wrong_identity_based_storage_names_the_setting(env: dict[str, str], name: str) -> None:
    assert name in config_error(env)


# ---------------------------------------------------------------------------------------------------------------
# AzureWebJobsStorage: connection strings checked key by key, as the Functions host and the SDK read them

AZURE_CONN = (
    f"DefaultEndpointsProtocol=https;AccountName=prodstore;AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net"
)
SAS = "sv=2022-11-02&ss=qt&srt=sco&sp=rwdlacup&se=2030-01-01T00:00:00Z&sig=c2lnbmF0dXJl"


def storage_error(env: dict[str, str]) -> str:
    message = config_error(env)
    assert "AzureWebJobsStorage" in message, message
    assert ACCOUNT_KEY not in message and "c2lnbmF0dXJl" not in message, message  # secrets are never echoed
    return message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("UseDevelopmentStorage=ture", "UseDevelopmentStorage"),
        ("UseDevelopmentStorage=false", "UseDevelopmentStorage"),
        (f"DefaultEndpointsProtocol=https;AccountName=prodstore;AcountKey={ACCOUNT_KEY}", "AcountKey"),
        (f"DefaultEndpointsProtocol=https;AccountName=prodstore;AccountKey={ACCOUNT_KEY};Foo=bar", "Foo"),
        (f"DefaultEndpointsProtocol=https;AccountName=prodstore;AccountKey={ACCOUNT_KEY};QueueEndPoint", "'='"),
        ("DefaultEndpointsProtocol=https;AccountName=prodstore", "AccountKey"),
        ("DefaultEndpointsProtocol=https;AccountName=prodstore;AccountKey=", "AccountKey"),
        (f"DefaultEndpointsProtocol=https;AccountKey={ACCOUNT_KEY}", "AccountName"),
        ("DefaultEndpointsProtocol=https;AccountName=prodstore;AccountKey=not base64!", "AccountKey"),
        (f"DefaultEndpointsProtocol=ftp;AccountName=prodstore;AccountKey={ACCOUNT_KEY}", "DefaultEndpointsProtocol"),
        (f"AccountName=prodstore;AccountKey={ACCOUNT_KEY};AccountName=other", "AccountName"),
        (f"AccountName=Prod_Store;AccountKey={ACCOUNT_KEY}", "AccountName"),
        (f"AccountName=prodstore;AccountKey={ACCOUNT_KEY};EndpointSuffix=https://core.windows.net", "EndpointSuffix"),
        (f"AccountName=prodstore;AccountKey={ACCOUNT_KEY};SharedAccessSignature={SAS}", "SharedAccessSignature"),
        # explicit endpoints must reach both services the tracker uses
        (f"QueueEndpoint=https://q.example.net;SharedAccessSignature={SAS}", "TableEndpoint"),
        (f"TableEndpoint=https://t.example.net;SharedAccessSignature={SAS}", "QueueEndpoint"),
        (f"BlobEndpoint=https://b.example.net;SharedAccessSignature={SAS}", "QueueEndpoint"),
        ("QueueEndpoint=https://q.example.net;TableEndpoint=https://t.example.net", "SharedAccessSignature"),
        (f"QueueEndpoint=q.example.net;TableEndpoint=https://t.example.net;SharedAccessSignature={SAS}",
         "QueueEndpoint"),
        ("QueueEndpoint=https://q.example.net;TableEndpoint=https://t.example.net;SharedAccessSignature=sv=1",
         "SharedAccessSignature"),
        ("QueueEndpoint=https://q.example.net;TableEndpoint=https://t.example.net;"
         "SharedAccessSignature=sv=2022-11-02&ss=b&srt=sco&sp=r&sig=c2lnbmF0dXJl", "SharedAccessSignature"),
        (f"UseDevelopmentStorage=true;AccountName=prodstore;AccountKey={ACCOUNT_KEY}", "UseDevelopmentStorage"),
        ("DevelopmentStorageProxyUri=http://127.0.0.1", "DevelopmentStorageProxyUri"),
        (f'"AccountName=prodstore;AccountKey={ACCOUNT_KEY}"', "quotes"),
        ("UseDevelopmentStorage=true;UseDevelopmentStorage=true", "twice"),
    ],
)
def test_a_wrong_connection_string_is_one_line_naming_the_setting_and_the_key(value: str, expected: str) -> None:
    message = storage_error({"AzureWebJobsStorage": value})
    assert expected in message, message


def test_a_mistyped_key_suggests_the_right_one() -> None:
    message = storage_error(
        {"AzureWebJobsStorage": f"DefaultEndpointsProtocol=https;AccountName=prodstore;AcountKey={ACCOUNT_KEY}"}
    )
    assert "AccountKey" in message.replace("AcountKey", "")


@pytest.mark.parametrize(
    "value",
    [
        AZURE_CONN,
        AZURE_CONN + ";",
        f"accountname=prodstore;ACCOUNTKEY={ACCOUNT_KEY}",  # key names are case-insensitive
        f"AccountName=prodstore;AccountKey={ACCOUNT_KEY};EndpointSuffix=core.usgovcloudapi.net",
        f"AccountName=prodstore;SharedAccessSignature={SAS}",
        f"QueueEndpoint=https://q.example.net/acct;TableEndpoint=https://t.example.net/acct;SharedAccessSignature={SAS}",
        f"AccountName=prodstore;AccountKey={ACCOUNT_KEY};QueueEndpoint=https://q.example.net/prodstore",
        f"AccountName=prodstore;AccountKey={ACCOUNT_KEY};BlobEndpoint=https://b;FileEndpoint=https://f",
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
        "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;",
    ],
)
def test_a_valid_connection_string_is_accepted(value: str) -> None:
    storage = Settings.from_env({"AzureWebJobsStorage": value}).storage
    assert storage.connection_string


def test_a_valid_connection_string_reaches_queue_and_table_through_the_sdk() -> None:
    from azure.data.tables import TableClient
    from azure.storage.queue import QueueClient

    for value in (
        f"accountname=prodstore;ACCOUNTKEY={ACCOUNT_KEY}",
        f" AccountName = prodstore ; AccountKey = {ACCOUNT_KEY} ;; EndpointSuffix=core.chinacloudapi.cn",
    ):
        text = Settings.from_env({"AzureWebJobsStorage": value}).storage.connection_string or ""
        queue = QueueClient.from_connection_string(text, "q")
        table = TableClient.from_connection_string(text, "t")
        assert queue.account_name == "prodstore" and queue.url.startswith("https://prodstore.queue.")
        assert table.account_name == "prodstore" and table.url.startswith("https://prodstore.table.")


def test_development_storage_through_a_proxy() -> None:
    storage = Settings.from_env(
        {"AzureWebJobsStorage": "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://azurite.local"}
    ).storage
    text = storage.connection_string or ""
    assert "QueueEndpoint=http://azurite.local:10001/devstoreaccount1" in text
    assert "TableEndpoint=http://azurite.local:10002/devstoreaccount1" in text


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"AzureWebJobsStorage__blobServiceUri": "https://s.blob.core.windows.net"},
         ["AzureWebJobsStorage__blobServiceUri", "AzureWebJobsStorage__accountName"]),
        ({"AzureWebJobsStorage__acountName": "prodstore"}, ["AzureWebJobsStorage__acountName", "accountName"]),
        ({"AzureWebJobsStorage__accountName": "prodstore", "AzureWebJobsStorage__clientID": "not-a-guid"},
         ["AzureWebJobsStorage__clientID"]),
        ({"AzureWebJobsStorage__accountName": "prodstore", "AzureWebJobsStorage__ACCOUNTNAME": "otherstore"},
         ["AzureWebJobsStorage__accountName", "AzureWebJobsStorage__ACCOUNTNAME"]),
    ],
)
def test_half_or_mistyped_identity_based_storage_names_the_settings(env: dict[str, str], names: list[str]) -> None:
    message = config_error(env)
    for name in names:
        assert name in message, message


@pytest.mark.parametrize(("given", "missing"), [("queueServiceUri", "tableServiceUri"),
                                                 ("tableServiceUri", "queueServiceUri")])
def test_half_of_an_identity_based_pair_says_which_half_is_missing(given: str, missing: str) -> None:
    message = config_error({f"AzureWebJobsStorage__{given}": "https://s.queue.core.windows.net"})
    assert f"AzureWebJobsStorage__{given} is set but AzureWebJobsStorage__{missing} is not" in message, message


def test_identity_based_setting_names_are_case_insensitive_like_the_host() -> None:
    storage = StorageSettings.from_env(
        {
            "AzureWebJobsStorage__accountname": "prodstore01",
            "azurewebjobsstorage__CREDENTIAL": "managedidentity",
            "AzureWebJobsStorage__clientid": "9a8b7c6d-0000-1111-2222-333344445555",
        }
    )
    assert storage.queue_service_uri == "https://prodstore01.queue.core.windows.net"
    assert storage.table_service_uri == "https://prodstore01.table.core.windows.net"
    assert storage.credential == "managedidentity"
    assert storage.client_id == "9a8b7c6d-0000-1111-2222-333344445555"
    uris = StorageSettings.from_env(
        {
            "AZUREWEBJOBSSTORAGE__QUEUESERVICEURI": "https://s.queue.core.windows.net",
            "AzureWebJobsStorage__TableServiceUri": "https://s.table.core.windows.net",
        }
    )
    assert (uris.queue_service_uri, uris.table_service_uri) == (
        "https://s.queue.core.windows.net", "https://s.table.core.windows.net"
    )


def test_the_infra_templates_identity_settings_are_accepted() -> None:
    """infra/ sets __blobServiceUri too (the host's own blob leases): it is known, not an unknown key."""
    storage = StorageSettings.from_env(
        {
            "AzureWebJobsStorage__accountName": "prodstore01",
            "AzureWebJobsStorage__blobServiceUri": "https://prodstore01.blob.core.windows.net",
            "AzureWebJobsStorage__queueServiceUri": "https://prodstore01.queue.core.windows.net",
            "AzureWebJobsStorage__tableServiceUri": "https://prodstore01.table.core.windows.net",
            "AzureWebJobsStorage__credential": "managedidentity",
            "AzureWebJobsStorage__clientId": "9a8b7c6d-0000-1111-2222-333344445555",
        }
    )
    assert storage.queue_service_uri == "https://prodstore01.queue.core.windows.net"


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
