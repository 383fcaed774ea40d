"""References: what mutation testing (`make mutation`) showed no test pinned down."""

from __future__ import annotations

import pytest

from jobs.domain.references import InvalidReference, JobRef, VaultRef, show

SUB = "11111111-2222-3333-4444-555555555555"
VAULT_ID = f"/subscriptions/{SUB}/resourceGroups/backup-rg/providers/Microsoft.RecoveryServices/vaults/prod-vault"


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
