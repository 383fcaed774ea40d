"""Identity-based storage (``AzureWebJobsStorage__accountName`` / ``__queueServiceUri`` + ``__tableServiceUri``,
``__credential``, ``__clientId``): the clients the app builds reach the right endpoints with the right credential.

Nothing is sent: the clients are only built and inspected (their URL, account and credential).
"""

from __future__ import annotations

from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

from jobs.storage import StorageAccount
from jobs.storage.connection import StorageSettings

CLIENT_ID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def _account(env: dict[str, str]) -> StorageAccount:
    return StorageAccount(StorageSettings.from_env(env))


def test_an_account_name_with_a_managed_identity_and_a_client_id() -> None:
    account = _account({
        "AzureWebJobsStorage__accountName": "prodstore01",
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": CLIENT_ID,
    })
    queue, table, service = account.queue("backup-jobs"), account.table("backupjobs"), account.table_service()
    assert queue.url == "https://prodstore01.queue.core.windows.net/backup-jobs"
    assert queue.account_name == "prodstore01" and queue.queue_name == "backup-jobs"
    assert table.url.startswith("https://prodstore01.table.core.windows.net")
    assert table.account_name == "prodstore01" and table.table_name == "backupjobs"
    assert service.url.startswith("https://prodstore01.table.core.windows.net")
    for client in (queue, table, service):
        assert type(client.credential) is ManagedIdentityCredential
    assert queue.credential is table.credential is service.credential  # one credential for every client
    assert _client_id_of(queue.credential) == CLIENT_ID
    assert account.queue("backup-jobs") is queue  # queue clients are built once


def test_service_uris_without_a_credential_setting_use_the_default_credential() -> None:
    account = _account({
        "AzureWebJobsStorage__queueServiceUri": "https://q.example.net",
        "AzureWebJobsStorage__tableServiceUri": "https://t.example.net/",
    })
    queue, table = account.queue("backup-jobs-poll"), account.table("jobs")
    assert queue.url == "https://q.example.net/backup-jobs-poll"
    assert table.url.startswith("https://t.example.net")
    assert type(queue.credential) is DefaultAzureCredential
    assert table.credential is queue.credential
    assert account.endpoints()["queue"].startswith("https://q.example.net")


def test_a_connection_string_uses_the_account_key_not_an_identity() -> None:
    account = _account({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    queue = account.queue("backup-jobs")
    assert queue.url == "http://127.0.0.1:10001/devstoreaccount1/backup-jobs"
    assert queue.credential.account_name == "devstoreaccount1"  # the shared key of the connection string
    assert account._credential is None  # no identity was built


def _client_id_of(credential: ManagedIdentityCredential) -> str | None:
    """The client id a ManagedIdentityCredential was built with (where azure-identity keeps it: its inner
    credential's settings)."""
    inner = getattr(credential, "_credential", None)
    for holder in (inner, credential):
        for attribute in ("_settings", "_config"):
            value = getattr(holder, attribute, None)
            if isinstance(value, dict) and value.get("client_id"):
                return str(value["client_id"])
    return None
