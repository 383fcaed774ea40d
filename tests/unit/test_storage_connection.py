"""AzureWebJobsStorage as the Functions host reads it (jobs.storage.connection): a connection string checked key by
key, identity-based settings in any case, and one clear line, naming the setting, for every wrong value."""

from __future__ import annotations

import pytest

from jobs.setting import ConfigError
from jobs.storage.connection import StorageSettings

ACCOUNT_KEY = "c2VjcmV0LWFjY291bnQta2V5LXRoYXQtbXVzdC1uZXZlci1sZWFr"


def config_error(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        StorageSettings.from_env(env)
    message = str(info.value)
    assert message.strip() and "\n" not in message and "\r" not in message, message
    return message


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
    storage = StorageSettings.from_env({"AzureWebJobsStorage": value})
    text = storage.connection_string or ""
    assert "AccountName=devstoreaccount1" in text
    assert "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1" in text
    assert "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1" in text
    assert "AccountKey=" in text


def test_connection_string_is_used_as_given() -> None:
    conn = (
        f"DefaultEndpointsProtocol=https;AccountName=prodstore;AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net"
    )
    storage = StorageSettings.from_env({"AzureWebJobsStorage": conn})
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
    storage = StorageSettings.from_env(
        {
            "AzureWebJobsStorage__queueServiceUri": "https://prodstore.queue.core.usgovcloudapi.net/",
            "AzureWebJobsStorage__tableServiceUri": "https://prodstore.table.core.usgovcloudapi.net",
            "AzureWebJobsStorage__credential": "ManagedIdentity",
        }
    )
    assert storage.queue_service_uri == "https://prodstore.queue.core.usgovcloudapi.net"
    assert storage.table_service_uri == "https://prodstore.table.core.usgovcloudapi.net"
    assert storage.credential == "managedidentity"
    assert storage.client_id is None


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
    storage = StorageSettings.from_env({"AzureWebJobsStorage": value})
    assert storage.connection_string


def test_a_valid_connection_string_reaches_queue_and_table_through_the_sdk() -> None:
    from azure.data.tables import TableClient
    from azure.storage.queue import QueueClient

    for value in (
        f"accountname=prodstore;ACCOUNTKEY={ACCOUNT_KEY}",
        f" AccountName = prodstore ; AccountKey = {ACCOUNT_KEY} ;; EndpointSuffix=core.chinacloudapi.cn",
    ):
        text = StorageSettings.from_env({"AzureWebJobsStorage": value}).connection_string or ""
        queue = QueueClient.from_connection_string(text, "q")
        table = TableClient.from_connection_string(text, "t")
        assert queue.account_name == "prodstore" and queue.url.startswith("https://prodstore.queue.")
        assert table.account_name == "prodstore" and table.url.startswith("https://prodstore.table.")


def test_development_storage_through_a_proxy() -> None:
    storage = StorageSettings.from_env(
        {"AzureWebJobsStorage": "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://azurite.local"}
    )
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
# The whole line, as an operator reads it

KEY = "c2VjcmV0LWFjY291bnQta2V5LXRoYXQtbXVzdC1uZXZlci1sZWFr"
ACCOUNT = f"DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey={KEY}"
S = "AzureWebJobsStorage"
KNOWN_KEYS = (
    "DefaultEndpointsProtocol, AccountName, AccountKey, EndpointSuffix, BlobEndpoint, QueueEndpoint, TableEndpoint, "
    "FileEndpoint, SharedAccessSignature, UseDevelopmentStorage, DevelopmentStorageProxyUri"
)
MESSAGES = [
    ({"AzureWebJobsStorage__accountName": "Prod_Store"},
     "AzureWebJobsStorage__accountName 'Prod_Store' is not a storage account name "
     "(3-24 lower-case letters and digits)"),
    ({"AzureWebJobsStorage__credential": "managedidentity", "AzureWebJobsStorage__clientId": "x"},
     "AzureWebJobsStorage__credential, AzureWebJobsStorage__clientId alone cannot reach the queues and the table: "
     "AzureWebJobsStorage needs AzureWebJobsStorage__accountName, or AzureWebJobsStorage__queueServiceUri and "
     "AzureWebJobsStorage__tableServiceUri"),
    ({"AzureWebJobsStorage__accountName": "prodstore", "AzureWebJobsStorage__blobServiceUri": "blob.example"},
     "AzureWebJobsStorage__blobServiceUri 'blob.example' is not an absolute URL"),
    ({"AzureWebJobsStorage__accountName": "prodstore", "AzureWebJobsStorage__serviceUri": "nope"},
     "AzureWebJobsStorage__serviceUri 'nope' is not an absolute URL"),
    ({"AzureWebJobsStorage__accountName": "prodstore", "AzureWebJobsStorage__tenantId": "t"},
     "AzureWebJobsStorage__tenantId is not supported by the tracker: its own queue and table clients use "
     "AzureWebJobsStorage__credential=managedidentity with AzureWebJobsStorage__clientId (or the default credential "
     "chain)"),
    ({S: "Xkey=1;" + ACCOUNT},
     f"AzureWebJobsStorage has an unknown connection string key 'Xkey' (known: {KNOWN_KEYS})"),
    ({S: ACCOUNT + ";FooX"},
     "AzureWebJobsStorage is not a storage connection string: part 4 has no '=' (expected Key=Value;... pairs)"),
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
    ({S: "AccountName=acct1;SharedSig=x;AccountKey=" + KEY},  # as close as 0.6, not 0.75: no guess
     f"AzureWebJobsStorage has an unknown connection string key 'SharedSig' (known: {KNOWN_KEYS})"),
    ({"AzureWebJobsStorage__queueServiceUri": "https://q.example:bad",
      "AzureWebJobsStorage__tableServiceUri": "https://t.example"},
     "AzureWebJobsStorage__queueServiceUri 'https://q.example:bad' is not an absolute URL"),
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
    ({"AzureWebJobsStorage__acountName": "x"},
     "AzureWebJobsStorage__acountName is not a setting of an identity-based connection (did you mean "
     "AzureWebJobsStorage__accountName?) (known: __accountName, __blobServiceUri, __queueServiceUri, "
     "__tableServiceUri, __serviceUri, __credential, __clientId)"),
    ({S: ACCOUNT, "azurewebjobsstorage": ACCOUNT + ";"},
     "AzureWebJobsStorage and azurewebjobsstorage are the same setting (names are case-insensitive) with different "
     "values: keep one"),
    ({"AzureWebJobsStorage__accountName": "a1", "azurewebjobsstorage__ACCOUNTNAME": "a2"},
     "AzureWebJobsStorage__accountName and azurewebjobsstorage__ACCOUNTNAME are the same setting (names are "
     "case-insensitive) with different values: keep one"),
    ({"AzureWebJobsStorage__accountname": "acct1", "AzureWebJobsStorage__CLIENTID": "cid"},
     "AzureWebJobsStorage__CLIENTID 'cid' is not a client id (a GUID)"),
]


@pytest.mark.parametrize(("env", "message"), MESSAGES)
def test_each_wrong_value_gets_its_whole_line(env: dict[str, str], message: str) -> None:
    assert config_error(env) == message


def test_a_connection_string_comes_back_without_blank_parts_or_spaces_and_keeps_its_last_semicolon() -> None:
    assert StorageSettings.from_env({S: f" AccountName = acct1 ;; AccountKey={KEY} ;"}).connection_string == (
        f"AccountName=acct1;AccountKey={KEY};"
    )
    assert StorageSettings.from_env({S: f"AccountName=acct1;AccountKey={KEY}"}).connection_string == (
        f"AccountName=acct1;AccountKey={KEY}"
    )


def test_a_sas_token_is_read_with_or_without_its_question_mark_and_with_equals_signs_in_values() -> None:
    for sas in ("?sig=abc%3D", "sig=abc=", "?sv=2022-11-02&ss=qtb&sig=a=b"):
        storage = StorageSettings.from_env({S: f"AccountName=acct1;SharedAccessSignature={sas}"})
        assert storage.connection_string == f"AccountName=acct1;SharedAccessSignature={sas}"


def test_development_storage_behind_a_proxy_keeps_its_scheme_and_brackets_an_ipv6_host() -> None:
    storage = StorageSettings.from_env({S: "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://[::1]:9999/x"})
    assert "QueueEndpoint=http://[::1]:10001/devstoreaccount1;" in storage.connection_string
    storage = StorageSettings.from_env({S: "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=https://azurite.local"})
    assert "TableEndpoint=https://azurite.local:10002/devstoreaccount1;" in storage.connection_string
    assert storage.connection_string.startswith("DefaultEndpointsProtocol=https;AccountName=devstoreaccount1;")


def test_identity_based_storage_reads_any_spelling_and_trims_trailing_slashes() -> None:
    storage = StorageSettings.from_env({
        "AzureWebJobsStorage__queueServiceUri": "https://q.example/",
        "AzureWebJobsStorage__tableServiceUri": "https://t.example//",
        "AzureWebJobsStorage__CREDENTIAL": "managedidentity",
        "AzureWebJobsStorage__clientid": "11111111-2222-3333-4444-555555555555",
    })
    assert (storage.queue_service_uri, storage.table_service_uri) == ("https://q.example", "https://t.example")
    assert storage.credential == "managedidentity"
    assert storage.client_id == "11111111-2222-3333-4444-555555555555"
    storage = StorageSettings.from_env({"azurewebjobsstorage__ACCOUNTNAME": "acct1"})
    assert storage.queue_service_uri == "https://acct1.queue.core.windows.net"


def test_identity_based_service_uris_lose_only_their_trailing_slashes() -> None:
    storage = StorageSettings.from_env({"AzureWebJobsStorage__queueServiceUri": "https://q.example.X/",
                                        "AzureWebJobsStorage__tableServiceUri": "https://t.example.X"})
    assert (storage.queue_service_uri, storage.table_service_uri) == ("https://q.example.X", "https://t.example.X")


def test_a_blank_identity_based_setting_is_skipped_not_the_end_of_the_settings() -> None:
    for blank in ("", " "):
        storage = StorageSettings.from_env({"AzureWebJobsStorage__clientId": blank,
                                            "AzureWebJobsStorage__accountName": "acct1"})
        assert storage.queue_service_uri == "https://acct1.queue.core.windows.net" and storage.client_id is None
