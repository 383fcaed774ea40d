"""Azure ids from messages: parsing, validation, case-insensitive keys and ARM paths rebuilt from validated parts."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.domain.references import InvalidReference, JobRef, VaultRef, is_guid, show
from jobs.providers import (
    job_resource_id,
    parse_job_id,
    parse_operation_url,
    parse_vault_id,
    vault_from_parts,
    vault_operation,
)
from jobs.providers.recovery_services import job_path
from tests.conftest import fixture_json

SUB = "11111111-2222-3333-4444-555555555555"
JOB = "41f3e94b-ae6b-4a20-b422-65abfcaf03e5"
OP = "cd153561-20d3-467a-b911-cc1de47d4763"
VAULT_ID = f"/subscriptions/{SUB}/resourceGroups/backup-rg/providers/Microsoft.RecoveryServices/vaults/prod-vault"
ARM = "https://management.azure.com"
PROVIDER = "Microsoft.RecoveryServices"
GUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _fixture_job_ids() -> list[str]:
    ids = [
        fixture_json("seed-job-response.json")["id"],
        fixture_json("azure-rest-api-specs/GetJobDetails.json")["responses"]["200"]["body"]["id"],
    ]
    for name in ("ListJobs.json", "ListJobsWithStartTimeAndEndTimeFilters.json"):
        body = fixture_json(f"azure-rest-api-specs/{name}")["responses"]["200"]["body"]
        ids += [item["id"] for item in body["value"]]
    return sorted(set(ids))


FIXTURE_JOB_IDS = _fixture_job_ids()


def _casings(text: str) -> list[str]:
    return [text, text.lower(), text.upper(), text.swapcase()]


def _trigger_headers(name: str) -> dict[str, str]:
    return fixture_json(f"azure-rest-api-specs/{name}")["responses"]["202"]["headers"]


TRIGGERS = ["TriggerBackup_Post.json", "TriggerRestore_RestoreDisks_IaasVMRestoreRequest.json"]


# ---------------------------------------------------------------------------------------------------------------
# Job and vault ids as Azure returns them


def test_fixture_ids_cover_the_spellings_azure_uses() -> None:
    assert any(i.startswith("/Subscriptions/") for i in FIXTURE_JOB_IDS)
    assert any("/microsoft.recoveryservices/" in i for i in FIXTURE_JOB_IDS)


@pytest.mark.parametrize("resource_id", FIXTURE_JOB_IDS)
def test_every_job_id_from_the_fixtures_parses(resource_id: str) -> None:
    ref = parse_job_id(resource_id)
    *_, sub, _, rg, _, _, _, vault, _, job = resource_id.split("/")
    assert ref.job_id == job.lower()
    assert ref.vault.subscription_id == sub.lower()
    assert ref.vault.resource_group == rg
    assert ref.vault.name == vault
    # The canonical id and path use Azure's documented spelling, whatever the input's casing.
    assert job_resource_id(ref) == (
        f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.RecoveryServices/vaults/{vault}/backupJobs/{job}"
    )
    assert job_path(ref) == job_resource_id(ref)


@pytest.mark.parametrize("resource_id", FIXTURE_JOB_IDS)
def test_job_key_is_the_same_under_any_casing(resource_id: str) -> None:
    keys = {parse_job_id(variant).key for variant in _casings(resource_id)}
    assert len(keys) == 1
    assert parse_job_id(resource_id + "/").key in keys  # a trailing slash names the same job


@pytest.mark.parametrize("resource_id", FIXTURE_JOB_IDS)
def test_vault_part_of_fixture_ids_parses_with_one_key(resource_id: str) -> None:
    vault_id = resource_id.rsplit("/backupJobs/", 1)[0]
    keys = {parse_vault_id(variant).key for variant in [*_casings(vault_id), vault_id + "/", f"  {vault_id}\n"]}
    assert len(keys) == 1
    assert parse_vault_id(vault_id) == parse_job_id(resource_id).vault


def test_same_job_from_parts_and_from_id_has_the_same_key() -> None:
    by_id = parse_job_id(f"{VAULT_ID}/backupJobs/{JOB}")
    by_parts = JobRef.create(vault_from_parts(SUB.upper(), "BACKUP-RG", "Prod-Vault"), JOB.upper())
    assert by_id.key == by_parts.key
    assert by_id.vault.key == by_parts.vault.key


def test_key_separates_different_jobs_and_vaults() -> None:
    job = parse_job_id(f"{VAULT_ID}/backupJobs/{JOB}")
    other_job = parse_job_id(f"{VAULT_ID}/backupJobs/{OP}")
    other_vault = parse_job_id(f"{VAULT_ID}2/backupJobs/{JOB}")
    other_rg = parse_job_id(f"{VAULT_ID.replace('backup-rg', 'backup-rg2')}/backupJobs/{JOB}")
    assert len({job.key, other_job.key, other_vault.key, other_rg.key}) == 4
    assert job.key.startswith(JOB)  # the tracking id starts with the job's GUID, so people recognise it


def test_vault_names_keep_the_casing_first_seen() -> None:
    vault = vault_from_parts(SUB.upper(), "Backup-RG", "Prod-Vault")
    assert vault.subscription_id == SUB
    assert vault.id == f"/subscriptions/{SUB}/resourceGroups/Backup-RG/providers/{PROVIDER}/vaults/Prod-Vault"
    assert vault.key == vault.id.lower()


@pytest.mark.parametrize(
    "value",
    [
        "not-a-guid",
        "11111111222233334444555555555555",
        "{11111111-2222-3333-4444-555555555555}",
        "11111111-2222-3333-4444-55555555555",
        "11111111-2222-3333-4444-555555555555x",
        "g1111111-2222-3333-4444-555555555555",
        " 11111111-2222-3333-4444-555555555555",
        "",
        "../..",
        None,
        1234,
    ],
)
def test_subscription_and_job_ids_must_be_guids(value: object) -> None:
    with pytest.raises(InvalidReference, match="subscriptionId"):
        vault_from_parts(value, "rg", "vault")
    vault = vault_from_parts(SUB, "rg", "vault")
    with pytest.raises(InvalidReference, match="jobId"):
        JobRef.create(vault, value)
    if isinstance(value, str) and "/" not in value and value.strip():
        with pytest.raises(InvalidReference, match="jobResourceId"):
            parse_job_id(f"{VAULT_ID}/backupJobs/{value}")
        with pytest.raises(InvalidReference):
            parse_vault_id(VAULT_ID.replace(SUB, value))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subscriptionId", SUB + "\n"),
        ("resourceGroup", "backup-rg\n"),
        ("vaultName", "prod-vault\n"),
        ("jobId", JOB + "\n"),
    ],
)
def test_a_trailing_newline_does_not_pass_validation(field: str, value: str) -> None:
    """A GUID or name followed by a newline is not a GUID or name: it would become ``%0A`` in the ARM path and give
    the same job a second tracking id."""
    parts = {"subscriptionId": SUB, "resourceGroup": "backup-rg", "vaultName": "prod-vault", "jobId": JOB, field: value}
    with pytest.raises(InvalidReference, match=field):
        vault = vault_from_parts(parts["subscriptionId"], parts["resourceGroup"], parts["vaultName"])
        JobRef.create(vault, parts["jobId"])


@pytest.mark.parametrize(
    "name",
    [
        "a/b",
        "..",
        ".",
        "a?b",
        "a#b",
        "a%2Fb",
        "rg.",
        "x" * 91,
        "",
        "a b",
        "a\\b",
        "a&b",
        "rg:1",
        None,
        12,
    ],
)
def test_invalid_resource_group_names_are_rejected(name: object) -> None:
    with pytest.raises(InvalidReference, match="resourceGroup") as info:
        vault_from_parts(SUB, name, "vault")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["a?x=", "a#frag", "a%2F..%2Fb", "rg.", "a b", "x" * 91, "a&api-version=1"])
def test_invalid_resource_group_names_in_ids_are_rejected(name: str) -> None:
    with pytest.raises(InvalidReference):
        parse_vault_id(VAULT_ID.replace("backup-rg", name))
    with pytest.raises(InvalidReference):
        parse_job_id(VAULT_ID.replace("backup-rg", name) + f"/backupJobs/{JOB}")


@pytest.mark.parametrize("name", ["a", "x" * 90, "my.rg(1)_-", "rg-ünïcödé", "Default-RecoveryServices-ResourceGroup"])
def test_valid_resource_group_names_are_accepted(name: str) -> None:
    vault = vault_from_parts(SUB, name, "vault")
    assert vault.resource_group == name
    assert parse_vault_id(vault.id).key == vault.key


@pytest.mark.parametrize(
    "name", ["a", "1vault", "-vault", "vault_name", "vault.name", "x" * 51, "vault name", "vault/x", "vaült", "", None]
)
def test_invalid_vault_names_are_rejected(name: object) -> None:
    with pytest.raises(InvalidReference, match="vaultName") as info:
        vault_from_parts(SUB, "rg", name)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["ab", "a" + "b" * 49, "Prod-Vault-01", "linuxRsVault"])
def test_valid_vault_names_are_accepted(name: str) -> None:
    assert vault_from_parts(SUB, "rg", name).name == name


def test_job_under_a_backup_vault_is_a_backup_vault_job() -> None:
    body = fixture_json("azure-rest-api-specs/GetJob.json")["responses"]["200"]["body"]
    job = parse_job_id(body["id"])  # "Backupvaults", as Azure spells it: compared without case
    assert (job.vault.namespace, job.vault.vault_type, job.job_id) == (
        "Microsoft.DataProtection", "backupVaults", body["name"])
    assert parse_vault_id(body["id"].rsplit("/backupJobs/", 1)[0]) == job.vault
    with pytest.raises(InvalidReference, match="vaultId"):
        parse_vault_id(body["id"].rsplit("/backupJobs/", 1)[0] + "/x")


@pytest.mark.parametrize(
    "resource_id",
    [
        f"{VAULT_ID}/backupJobs",
        f"{VAULT_ID}/backupJobs/{JOB}/extra",
        f"{VAULT_ID}/backupJobs/{JOB}?api-version=2020-01-01",
        f"{VAULT_ID}/backupJobs/{JOB}#x",
        f"{VAULT_ID}/backupJobs/../backupJobs/{JOB}",
        f"{VAULT_ID}//backupJobs/{JOB}",
        f"{VAULT_ID}/protectedItems/{JOB}",
        f"https://management.azure.com{VAULT_ID}/backupJobs/{JOB}",
        f"subscriptions/{SUB}/resourceGroups/backup-rg/providers/Microsoft.RecoveryServices/vaults/prod-vault/backupJobs/{JOB}",
        f"/subscriptions/{SUB}/resourceGroups/backup-rg/providers/Microsoft.Compute/vaults/prod-vault/backupJobs/{JOB}",
        "",
        None,
        ["/subscriptions/..."],
    ],
)
def test_malformed_job_ids_are_rejected_naming_the_field(resource_id: object) -> None:
    with pytest.raises(InvalidReference) as info:
        parse_job_id(resource_id, "jobResourceId")
    assert str(info.value).startswith("jobResourceId")
    assert "\n" not in str(info.value)


def test_error_messages_do_not_echo_huge_values() -> None:
    with pytest.raises(InvalidReference) as info:
        parse_job_id("/subscriptions/" + "x" * 100_000)
    assert len(str(info.value)) < 500


def test_is_guid() -> None:
    assert is_guid(JOB) and is_guid(JOB.upper())
    assert not is_guid(JOB[:-1]) and not is_guid(None) and not is_guid(f"{{{JOB}}}")


_NAME_TEXT = st.lists(
    st.sampled_from([*"ab-_.()/?#%2F \\:;&=\n\tü", "..", "%2F", "%2e", "é", "\u0130", "\u212a", "x" * 95]), max_size=12
).map("".join)


@settings(max_examples=200, deadline=None)
@given(rg=st.one_of(_NAME_TEXT, st.text(max_size=100)), vault=st.one_of(_NAME_TEXT, st.text(max_size=60)))
def test_a_path_is_built_only_from_validated_quoted_parts(rg: str, vault: str) -> None:
    try:
        ref = JobRef.create(vault_from_parts(SUB, rg, vault), JOB)
    except InvalidReference as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    path = job_path(ref)
    segments = path.split("/")
    assert segments[0] == "" and len(segments) == 11  # nothing can add, remove or move a segment
    assert segments[1:9:2] == ["subscriptions", "resourceGroups", "providers", "vaults"]
    assert unquote(segments[4]) == rg and unquote(segments[8]) == vault
    assert not {".", ".."} & set(segments)
    assert "?" not in path and "#" not in path and "//" not in path and "%2f" not in path.lower()


# ---------------------------------------------------------------------------------------------------------------
# Vault ids the tracker stored itself (read back without their provider), and what a reference always says


def test_a_stored_vault_id_reads_back_into_the_same_vault() -> None:
    vault = VaultRef.from_resource_id(VAULT_ID)
    assert vault == VaultRef(subscription_id=SUB, resource_group="backup-rg", name="prod-vault",
                             namespace="Microsoft.RecoveryServices", vault_type="vaults")
    assert vault.id == VAULT_ID


def test_a_stored_vault_id_is_read_whatever_its_case_with_surrounding_blanks_and_a_trailing_slash() -> None:
    text = (f"  /SUBSCRIPTIONS/{SUB.upper()}/RESOURCEGROUPS/Backup-RG"
            "/PROVIDERS/Microsoft.DataProtection/backupVaults/v1/ \n")
    vault = VaultRef.from_resource_id(text)
    assert vault.subscription_id == SUB  # lower-cased, as check_guid returns it
    assert (vault.resource_group, vault.name) == ("Backup-RG", "v1")
    assert (vault.namespace, vault.vault_type) == ("Microsoft.DataProtection", "backupVaults")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "prod-vault",
        VAULT_ID + "/backupJobs/41f3e94b-ae6b-4a20-b422-65abfcaf03e5",
        VAULT_ID.replace("/resourceGroups/", "/resourcegroup/"),
        "x" + VAULT_ID,
    ],
)
def test_anything_else_is_not_a_vault_resource_id(text: str) -> None:
    with pytest.raises(InvalidReference) as info:
        VaultRef.from_resource_id(text)
    shown = repr(text) if len(repr(text)) <= 80 else repr(text)[:77] + "..."
    assert str(info.value) == f"{shown} is not a vault resource id"


def test_a_vault_id_whose_subscription_is_not_a_guid_names_the_subscription() -> None:
    with pytest.raises(InvalidReference, match=r"^subscriptionId must be a GUID, got 'not-a-guid'$"):
        VaultRef.from_resource_id(VAULT_ID.replace(SUB, "not-a-guid"))


def test_a_value_is_shown_as_its_repr_up_to_80_characters() -> None:
    assert show("a" * 78) == repr("a" * 78)  # 80 characters with its quotes
    assert show("a" * 79) == repr("a" * 79)[:77] + "..."
    assert len(show("a" * 79)) == 80
    assert show(None) == "None" and show(5) == "5"


def test_a_job_id_that_is_not_a_guid_is_named_job_id_by_default() -> None:
    vault = VaultRef.from_resource_id(VAULT_ID)
    with pytest.raises(InvalidReference, match=r"^jobId must be a GUID, got 'x'$"):
        JobRef.create(vault, "x")


def test_a_vault_reference_always_says_its_own_namespace_and_type() -> None:
    """No vault kind is the domain's default: whoever builds a VaultRef names it (its provider, or a stored id)."""
    with pytest.raises(TypeError):
        VaultRef(SUB, "backup-rg", "prod-vault")  # type: ignore[call-arg]
    vault = VaultRef(SUB, "backup-rg", "prod-vault", "Example.Backup", "things")
    assert vault.id == f"/subscriptions/{SUB}/resourceGroups/backup-rg/providers/Example.Backup/things/prod-vault"
    assert VaultRef.from_locator(vault.locator) == vault


# ---------------------------------------------------------------------------------------------------------------
# OperationRef.parse_url


ENDPOINTS = [ARM, "https://management.usgovcloudapi.net", "http://127.0.0.1:7071"]


def _on(endpoint: str, url: str) -> str:
    assert url.startswith("https://management.azure.com/")
    return endpoint + url[len("https://management.azure.com"):]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("fixture", TRIGGERS)
def test_async_operation_and_location_urls_from_trigger_fixtures_parse(endpoint: str, fixture: str) -> None:
    headers = _trigger_headers(fixture)
    status = parse_operation_url(_on(endpoint, headers["Azure-AsyncOperation"]), endpoint)
    location = parse_operation_url(_on(endpoint, headers["Location"]), endpoint)
    assert status == location
    assert status.key == location.key

    params = fixture_json(f"azure-rest-api-specs/{fixture}")["parameters"]
    assert status.vault.subscription_id == params["subscriptionId"]
    assert status.vault.resource_group == params["resourceGroupName"]
    assert status.vault.name == params["vaultName"]
    assert "/backupFabrics/Azure/" in status.path()
    assert status.operation_id == "00000000-0000-0000-0000-000000000000"

    path = location.path()
    assert path.startswith(f"/subscriptions/{params['subscriptionId']}/resourceGroups/{params['resourceGroupName']}")
    assert "/providers/Microsoft.RecoveryServices/vaults/" in path
    assert path.endswith("/operationsStatus/00000000-0000-0000-0000-000000000000")  # Location maps to the status
    assert "operationResults" not in path
    assert "?" not in path and "api-version" not in path
    # The protected item names, with their semicolons, survive as Azure wrote them.
    item_url = headers["Azure-AsyncOperation"].split("?")[0]
    assert path.lower() == item_url[len(ARM):].lower()


def test_operation_key_is_the_same_under_any_casing() -> None:
    url = _trigger_headers("TriggerBackup_Post.json")["Azure-AsyncOperation"]
    host, path = url[: len(ARM)], url[len(ARM):]
    keys = {parse_operation_url(host + variant, ARM).key for variant in _casings(path)}
    keys.add(parse_operation_url(url.replace(ARM, "HTTPS://Management.Azure.COM"), ARM).key)
    keys.add(parse_operation_url(url.replace("management.azure.com", "management.azure.com:443"), ARM).key)
    assert len(keys) == 1


def test_vault_operation_urls_parse_and_results_map_to_status() -> None:
    url = f"{ARM}{VAULT_ID}/backupOperations/{OP}?api-version=2019-05-13"
    ref = parse_operation_url(url, ARM)
    assert "/protectedItems/" not in ref.path()
    assert ref.operation_id == OP
    assert ref.path() == f"{VAULT_ID}/backupOperations/{OP}"
    assert ref == vault_operation(parse_vault_id(VAULT_ID), OP)
    results = parse_operation_url(f"{ARM}{VAULT_ID}/backupOperationResults/{OP.upper()}?api-version=1", ARM)
    assert results.path() == ref.path() and results.key == ref.key


ITEM = (
    f"{VAULT_ID}/backupFabrics/Azure/protectionContainers/IaasVMContainer;iaasvmcontainerv2;rg;vm"
    f"/protectedItems/VM;iaasvmcontainerv2;rg;vm/operationsStatus/{OP}"
)


@pytest.mark.parametrize(
    ("url", "mentions_endpoint"),
    [
        (f"https://evil.example.com{ITEM}", True),
        (f"https://management.azure.com.evil.example.com{ITEM}", True),
        (f"https://evil.example.com/management.azure.com{ITEM}", True),
        (f"http://management.azure.com{ITEM}", True),
        (f"https://management.azure.com:8443{ITEM}", True),
        (f"https://user@management.azure.com{ITEM}", True),
        (f"https://user:pass@management.azure.com{ITEM}", True),
        (f"https://management.azure.com@evil.example.com{ITEM}", True),
        (f"https://management.azure.com:443@evil.example.com{ITEM}", True),
        (f"https://management.azure.com.{ITEM}", True),
        (f"ftp://management.azure.com{ITEM}", True),
        (f"//management.azure.com{ITEM}", True),
        (ITEM, True),
        (f"https://[::1]{ITEM}", True),
        (f"https://management.azure.com:99999{ITEM}", False),
        (f"https://management.azure.com:abc{ITEM}", False),
        (f"https://[management.azure.com{ITEM}", False),
        (f"https://management.azure.com{ITEM.replace('protectionContainers/', 'protectionContainers/%2e%2e/')}", False),
        (f"https://management.azure.com{ITEM.replace('/backupFabrics/Azure', '/backupFabrics/%2E%2E')}", False),
        (f"https://management.azure.com{ITEM.replace('backup-rg', 'backup-rg%2Fproviders')}", False),
        (f"https://management.azure.com{ITEM.replace('backup-rg', 'backup-rg%2f..%2f..')}", False),
        (f"https://management.azure.com{ITEM.replace('/backupFabrics/', '/../../backupFabrics/')}", False),
        (f"https://management.azure.com{ITEM.replace('/backupFabrics/', '/./backupFabrics/')}", False),
        (f"https://management.azure.com{ITEM.replace('/protectedItems/', '/protectedItems/../')}", False),
        (f"https://management.azure.com{VAULT_ID}/../../../../providers/x/backupOperations/{OP}", False),
        (f"https://management.azure.com{VAULT_ID}\\..\\backupOperations/{OP}", False),
        (f"https://management.azure.com{VAULT_ID}/backupFabrics/../backupOperations/{OP}", False),
        (f"https://management.azure.com/?x={VAULT_ID}/backupOperations/{OP}", False),
        (f"https://management.azure.com/providers/Microsoft.Authorization/roleAssignments?x={ITEM}", False),
        (f"https://management.azure.com/#{ITEM}", False),
        (f"https://management.azure.com/subscriptions/{SUB}?{ITEM}", False),
        (f"https://management.azure.com//{ITEM}", False),
        (f"{ARM}/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm/operationsStatus/{OP}",
         False),
        (f"https://management.azure.com{VAULT_ID}/backupJobs/{OP}", False),
        (f"https://management.azure.com{VAULT_ID}/backupPolicies/p/operations/{OP}", False),
        (f"https://management.azure.com{VAULT_ID}/operationsStatus/{OP}", False),
        (f"{ARM}/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.DataProtection/backupVaults/v/operationStatus/{OP}",
         False),
        (f"{ARM}/subscriptions/{SUB}/providers/{PROVIDER}/operationsStatus/{OP}", False),
        (f"https://management.azure.com{VAULT_ID}/backupOperations/not-a-guid", False),
        (f"https://management.azure.com{VAULT_ID}/backupOperations/{OP}/extra", False),
        (f"https://management.azure.com{ITEM.replace(OP, 'x' + OP)}", False),
        (f"https://management.azure.com{ITEM.replace('backup-rg', 'rg?')}", False),
        (f"https://management.azure.com{ITEM.replace('Azure', 'Az ure')}", False),
        (f"https://management.azure.com{ITEM.replace('Azure', '..')}", False),
        ("https://management.azure.com/" + "a/" * 3000, False),
    ],
)
def test_operation_urls_that_could_misdirect_the_token_are_rejected(url: str, mentions_endpoint: bool) -> None:
    with pytest.raises(InvalidReference) as info:
        parse_operation_url(url, ARM)
    reason = str(info.value)
    assert reason.startswith("operationUrl"), reason
    assert "\n" not in reason
    if mentions_endpoint:
        assert "ARM_ENDPOINT" in reason


@pytest.mark.parametrize(
    "url",
    [
        f"{ARM}{ITEM.replace('prod-vault', '1vault')}",
        f"{ARM}{ITEM.replace(SUB, 'sub')}",
        f"{ARM}{ITEM.replace('backup-rg', 'rg.')}",
        f"{ARM}{VAULT_ID.replace('prod-vault', 'vault_1')}/backupOperations/{OP}",
    ],
)
def test_a_bad_vault_part_inside_an_operation_url_is_reported_as_operationUrl(url: str) -> None:
    """The reason goes back to the sender, whose message has no subscriptionId/resourceGroup/vaultName field."""
    with pytest.raises(InvalidReference) as info:
        parse_operation_url(url, ARM)
    assert "operationUrl" in str(info.value)


@pytest.mark.parametrize("url", [None, "", "   ", 42, {"url": ITEM}])
def test_operation_url_must_be_a_non_empty_string(url: object) -> None:
    with pytest.raises(InvalidReference, match="operationUrl"):
        parse_operation_url(url, ARM)


def test_loopback_endpoint_accepts_only_its_own_port() -> None:
    endpoint = "http://127.0.0.1:7071"
    assert parse_operation_url(f"{endpoint}{ITEM}", endpoint).operation_id == OP
    for url in (f"http://127.0.0.1:7072{ITEM}", f"http://127.0.0.1{ITEM}", f"http://localhost:7071{ITEM}"):
        with pytest.raises(InvalidReference, match="ARM_ENDPOINT"):
            parse_operation_url(url, endpoint)


_TRICKS = st.sampled_from(
    ["/", "..", "/../", "/./", "%2F", "%2e%2e", "?", "#", "@", ":", "\\", "//", ";", " ", "\n", "évil", "x" * 300,
     "/subscriptions/", "/backupOperations/", OP, "api-version=1&", "@evil.example.com", ".evil.example.com"]
)


@settings(max_examples=250, deadline=None)
@given(position=st.integers(0, len(ARM + ITEM)), insert=st.lists(st.one_of(_TRICKS, st.text(max_size=5)), max_size=4))
def test_any_spliced_url_is_either_rejected_or_yields_a_clean_vault_operation(position: int, insert: list[str]) -> None:
    url = ARM + ITEM
    url = url[:position] + "".join(insert) + url[position:]
    try:
        ref = parse_operation_url(url, ARM)
    except InvalidReference as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    path = ref.path()
    assert re.fullmatch(GUID_RE, ref.operation_id)
    assert re.fullmatch(GUID_RE, ref.vault.subscription_id)
    segments = path.split("/")
    assert segments[:2] == ["", "subscriptions"] and segments[5:8] == ["providers", PROVIDER, "vaults"]
    assert segments[-2] in ("operationsStatus", "backupOperations") and segments[-1] == ref.operation_id
    assert not {".", ".."} & set(segments)
    assert "?" not in path and "#" not in path and "//" not in path and "%2f" not in path.lower()


# -- operation URLs as azure-cli and the SDKs write them: names percent-encoded (issue 12, point 4) ---------------
ENCODED_ITEM = ITEM.replace(";", "%3B")


@pytest.mark.parametrize("item", [ENCODED_ITEM, ITEM.replace(";", "%3b"), ENCODED_ITEM.replace("vm/", "v%C3%A9m/")])
def test_percent_encoded_names_are_decoded_once(item: str) -> None:
    ref = parse_operation_url(f"{ARM}{item}", ARM)
    assert ref.operation_id == OP
    assert ref.path().replace("%C3%A9", "é") == ITEM.replace("vm/", "vém/" if "%C3%A9" in item else "vm/")


def test_an_encoded_url_names_the_same_operation_as_the_plain_one() -> None:
    assert parse_operation_url(f"{ARM}{ENCODED_ITEM}", ARM) == parse_operation_url(f"{ARM}{ITEM}", ARM)


@pytest.mark.parametrize(
    "tamper",
    [
        ("rg%3Bvm/protectedItems", "rg%3Bvm%2Fx/protectedItems"),  # an encoded /
        ("rg%3Bvm/protectedItems", "rg%3Bvm%3Fx/protectedItems"),  # an encoded ?
        ("rg%3Bvm/protectedItems", "rg%3Bvm%23x/protectedItems"),  # an encoded #
        ("rg%3Bvm/protectedItems", "rg%3Bvm%5Cx/protectedItems"),  # an encoded \
        ("rg%3Bvm/protectedItems", "rg%253Bvm/protectedItems"),  # double encoding
        ("/backupFabrics/Azure/", "/backupFabrics/%2E%2E/"),  # an encoded ..
        ("/backupFabrics/Azure/", "/backupFabrics/%2E/"),  # an encoded .
        ("rg%3Bvm/protectedItems", "rg%3Bvm%00/protectedItems"),  # a control character
        ("rg%3Bvm/protectedItems", "rg%3Bvm%FF/protectedItems"),  # not UTF-8
    ],
)
def test_encoded_segments_that_could_change_the_path_are_refused(tamper: tuple[str, str]) -> None:
    url = f"{ARM}{ENCODED_ITEM}".replace(*tamper, 1)
    assert url != f"{ARM}{ENCODED_ITEM}"
    with pytest.raises(InvalidReference, match="operationUrl"):
        parse_operation_url(url, ARM)
