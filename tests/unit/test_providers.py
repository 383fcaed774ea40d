"""The provider registry: listed once, a provider added to it is found for its ids, reads at the api-version of its
own setting, and no package below it (``jobs/arm``, ``jobs/domain``) knows a vault kind."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from jobs import providers
from jobs.config import Settings
from jobs.domain.references import InvalidReference, JobRef, VaultRef, check_guid
from jobs.providers import PROVIDERS, Providers, Registry
from jobs.providers.cross_region_restore import CrossRegionRestore
from jobs.providers.recovery_services import RecoveryServices

ROOT = Path(__file__).resolve().parents[2]
SUB = "11111111-2222-3333-4444-555555555555"
JOB = "41f3e94b-ae6b-4a20-b422-65abfcaf03e5"
RS_VAULT = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.RecoveryServices/vaults/v1"
EXAMPLE_VAULT = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Example.Backup/things/t1"
STORAGE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}


class Example:
    """A vault kind of a made-up namespace, as a new provider module brings it (only what these tests use)."""

    namespace = "Example.Backup"
    vault_type = "things"
    cross_region = False
    api_version_setting = "JOBS_EXAMPLE_API_VERSION"
    default_api_version = "2030-01-01"
    api_version_doc = "api-version of the example vaults"
    resource_graph = True

    def __init__(self, api_version: str | None = None) -> None:
        self.api_version = api_version or self.default_api_version

    @classmethod
    def parse_vault_id(cls, resource_id: object, field: str = "vaultId") -> VaultRef:
        vault = VaultRef.from_resource_id(str(resource_id))
        if (vault.namespace.lower(), vault.vault_type.lower()) != (cls.namespace.lower(), cls.vault_type):
            raise InvalidReference(f"{field} is not an example vault id")
        return vault

    @classmethod
    def parse_job_id(cls, resource_id: object, field: str = "jobResourceId") -> JobRef:
        vault_id, _, job_id = str(resource_id).rpartition("/jobs/")
        return JobRef.create(cls.parse_vault_id(vault_id, field), job_id, field)

    @classmethod
    def job_resource_id(cls, job: JobRef) -> str:
        return f"{job.vault.id}/jobs/{job.job_id}"

    @classmethod
    def vault_operation(cls, vault: VaultRef, operation_id: object, field: str = "operation.id") -> Any:
        return ("example operation", vault.key, check_guid(field, operation_id))

    @classmethod
    def recognises_operation_url(cls, url: str) -> bool:
        return True

    @classmethod
    def ended_jobs_query(cls, job_ids: list[str]) -> str:
        names = ", ".join(f"'{job_id}'" for job_id in job_ids)
        return f"ExampleResources | where name in~ ({names}) | where properties.state == 'Done' | project id"

    @classmethod
    def job_of_row(cls, row: dict[str, Any]) -> tuple[str, str] | None:
        vault_id, separator, job_id = str(row.get("id") or "").lower().rpartition("/jobs/")
        return (vault_id, job_id) if separator else None


WITH_EXAMPLE = (*PROVIDERS, Example)


# -- listed once, found for its ids ---------------------------------------------------------------------------------

def test_the_registry_lists_each_provider_once_and_each_namespace_and_region_pair_has_one() -> None:
    assert len(set(PROVIDERS)) == len(PROVIDERS) and PROVIDERS[0] is RecoveryServices
    pairs = [(kind.namespace.lower(), kind.cross_region) for kind in PROVIDERS]
    assert len(set(pairs)) == len(pairs)
    assert Registry().kinds == PROVIDERS
    with pytest.raises(ValueError, match="at least one provider"):
        Registry(())


def test_a_provider_added_to_the_registry_is_found_for_its_ids() -> None:
    registry = Registry(WITH_EXAMPLE)
    job_id = f"{EXAMPLE_VAULT}/jobs/{JOB}"
    assert registry.for_id(job_id) is Example
    assert registry.for_id(job_id.upper().replace("EXAMPLE.BACKUP", "example.backup")) is Example
    job = registry.for_id(job_id).parse_job_id(job_id)
    assert job.vault.namespace == "Example.Backup" and job.job_id == JOB
    assert registry.for_vault(job.vault) is Example
    assert registry.for_vault(job.vault.locator) is Example  # what the store keeps
    assert registry.for_operation_url(f"https://management.azure.com{EXAMPLE_VAULT}/operations/{JOB}") is Example
    assert registry.for_vault(job.vault).job_resource_id(job) == job_id
    # ... and the others are still found for theirs
    assert registry.for_id(f"{RS_VAULT}/backupJobs/{JOB}") is RecoveryServices
    assert registry.for_vault(VaultRef.from_resource_id(RS_VAULT).in_region("eastus2")) is CrossRegionRestore
    assert registry.for_id("/subscriptions/x/providers/Unknown.Kind/v/x") is RecoveryServices  # the default's parse


def test_a_provider_not_in_the_registry_is_not_found() -> None:
    """The default provider answers for an id of a namespace it does not know, and its parse refuses it."""
    assert providers.for_vault(EXAMPLE_VAULT) is RecoveryServices
    with pytest.raises(InvalidReference, match="is not a Recovery Services vault id"):
        providers.parse_vault_id(EXAMPLE_VAULT)
    with pytest.raises(InvalidReference, match=r"cross-region restore jobs are not supported for Example\.Backup"):
        Registry(WITH_EXAMPLE).in_region(Example.parse_vault_id(EXAMPLE_VAULT), "eastus2")


def test_the_configured_providers_are_found_by_the_same_registry() -> None:
    configured = Providers({"JOBS_EXAMPLE_API_VERSION": "2031-02-03"}, WITH_EXAMPLE)
    example = configured.for_id(f"{EXAMPLE_VAULT}/jobs/{JOB}")
    assert isinstance(example, Example) and example.api_version == "2031-02-03"
    assert configured.for_vault(EXAMPLE_VAULT) is example  # one instance per provider
    assert configured.for_operation_url(f"https://management.azure.com{EXAMPLE_VAULT}/operations/{JOB}") is example
    assert isinstance(configured.default, RecoveryServices)
    vault = Example.parse_vault_id(EXAMPLE_VAULT)
    with pytest.raises(InvalidReference, match=r"not supported for Example\.Backup vaults"):
        configured.in_region(vault, "eastus2")


def test_parsing_and_mapping_need_no_settings_and_answer_with_the_provider_classes() -> None:
    job = providers.parse_job_id(f"{RS_VAULT}/backupJobs/{JOB}")
    assert providers.for_vault(job.vault) is RecoveryServices
    assert providers.for_vault(job.vault).event_type("Completed") == "BackupJob.Completed"
    assert providers.job_resource_id(job) == f"{RS_VAULT}/backupJobs/{JOB}"
    with pytest.raises(TypeError):  # reads need the api-version: an instance from Providers
        providers.for_vault(job.vault).get_job(None, job)  # type: ignore[call-arg]


# -- each provider's api-version setting ----------------------------------------------------------------------------

def test_each_provider_names_its_api_version_setting_with_a_default_and_one_line_of_doc() -> None:
    settings = [kind.api_version_setting for kind in PROVIDERS]
    assert settings == ["JOBS_ARM_API_VERSION", "JOBS_CRR_API_VERSION", "JOBS_DATAPROTECTION_API_VERSION"]
    for kind in PROVIDERS:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}(-preview)?", kind.default_api_version)
        assert kind.api_version_doc.strip() and "\n" not in kind.api_version_doc
        assert kind().api_version == kind.default_api_version


def test_providers_built_from_the_settings_read_at_each_providers_own_setting() -> None:
    versions = {"JOBS_ARM_API_VERSION": "2024-04-01", "JOBS_CRR_API_VERSION": "2021-11-15",
                "JOBS_DATAPROTECTION_API_VERSION": "2025-07-01"}
    settings = Settings.from_env({**STORAGE, **versions})
    assert settings.api_versions == versions
    configured = Providers.from_settings(settings)
    vault = VaultRef.from_resource_id(RS_VAULT)
    assert configured.for_vault(vault).api_version == "2024-04-01"
    assert configured.for_vault(vault.in_region("eastus2")).api_version == "2021-11-15"
    defaults = Providers.from_settings(Settings.from_env(STORAGE))
    assert defaults.for_vault(vault).api_version == RecoveryServices.default_api_version
    assert defaults.for_vault(vault.in_region("eastus2")).api_version == CrossRegionRestore.default_api_version


def test_settings_that_hold_a_table_of_api_versions_give_each_provider_its_own() -> None:
    """The settings' ``api_versions`` (setting name -> value), the table a provider's setting is declared in."""
    settings = SimpleNamespace(
        api_versions={"JOBS_ARM_API_VERSION": "2025-01-01", "JOBS_EXAMPLE_API_VERSION": "2032-01-01"}
    )
    configured = Providers.from_settings(settings, WITH_EXAMPLE)
    assert configured.for_vault(RS_VAULT).api_version == "2025-01-01"
    assert configured.for_vault(EXAMPLE_VAULT).api_version == "2032-01-01"
    crr = configured.for_vault(VaultRef.from_resource_id(RS_VAULT).in_region("eastus2"))
    assert crr.api_version == CrossRegionRestore.default_api_version  # not in the table: its default


# -- the packages below the providers know no vault kind ------------------------------------------------------------

# Microsoft.ResourceGraph is the Resource Graph service itself (jobs.arm.resource_graph), not a kind of vault.
VAULT_KIND = re.compile(r"Microsoft\.(?!ResourceGraph\b)|(?i:recoveryservices|dataprotection|backupjobs|backupvaults)")


@pytest.mark.parametrize("package", ["jobs/arm", "jobs/domain"])
def test_arm_and_domain_name_no_vault_kind(package: str) -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if VAULT_KIND.search(line)
    ]
    assert found == []
