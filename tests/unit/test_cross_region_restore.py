"""Cross-region restore (CRR) jobs: references that carry the secondary region, their operation URLs (base64 ids,
the regional host), the registry that finds their provider from what the store keeps, the intake field, the
setting, the regional host of ARM_ENDPOINT and the result event (docs/reference.md, "Cross-region restore jobs")."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobs import providers
from jobs.arm import ArmClient, ArmError, StaticToken, regional_endpoint
from jobs.config import ConfigError, Settings
from jobs.domain.references import InvalidReference, JobRef, VaultRef
from jobs.domain.tracked_item import Subscriber, SubscriberRecord, TrackedItem
from jobs.flows.intake import IntakeRejected, parse_message
from jobs.flows.result_events import event_for
from jobs.providers.cross_region_restore import CrossRegionRestore
from jobs.providers.recovery_services import RecoveryServices
from jobs.webhooks.callback_urls import AllowedHosts
from tests.conftest import fixture_json

SUB = "f2edfd5d-5496-4683-b94f-b3588c579009"
VAULT_ID = (f"/subscriptions/{SUB}/resourceGroups/srinivasccyrg/providers/Microsoft.RecoveryServices/vaults/"
            "sriniccyvault")
JOB = "02585cc9-d7f4-4b46-860c-14c048cce178"
ARM = "https://management.azure.com"
# The trigger's Azure-AsyncOperation header as Microsoft's example writes it (TriggerCrossRegionRestore_Post.json):
# the regional host, a lower-case provider, a base64 operation id.
TRIGGER = fixture_json("TriggerCrossRegionRestore_Post.json")
EXAMPLE_URL = TRIGGER["responses"]["202"]["headers"]["Azure-AsyncOperation"].removeprefix("azure-asyncoperation: ")
EXAMPLE_OP = "MTMzMDgzNzkwNjQxODEzODE2MDtkMTY3MzM3Yy0yM2I1LTQ5ODgtODkwZC0xY2MyMmQ5MTYyZjA="


def parse(message: dict[str, Any], arm_endpoint: str = ARM):
    return parse_message(json.dumps(message), arm_endpoint=arm_endpoint, allowed_hosts=AllowedHosts())


def rejection(message: dict[str, Any], arm_endpoint: str = ARM) -> str:
    with pytest.raises(IntakeRejected) as caught:
        parse(message, arm_endpoint)
    return str(caught.value)


# -- references and keys ------------------------------------------------------------------------------------------

def test_a_crr_job_and_a_primary_job_with_the_same_id_never_share_a_tracking_id() -> None:
    vault = providers.parse_vault_id(VAULT_ID)
    primary = JobRef.create(vault, JOB)
    crr = JobRef.create(vault.in_region("EastUS2"), JOB)
    assert crr.key != primary.key
    assert crr.vault.id == primary.vault.id == VAULT_ID  # the same vault: the event's source
    assert crr.vault.locator == f"{VAULT_ID}@eastus2"
    assert VaultRef.from_locator(crr.vault.locator) == crr.vault
    assert VaultRef.from_locator(primary.vault.locator) == primary.vault
    # Azure's own id for the job: location-scoped (GetCrrJob_Post.json)
    assert providers.job_resource_id(crr) == (
        f"/subscriptions/{SUB}/providers/Microsoft.RecoveryServices/locations/eastus2/backupJobs/{JOB}"
    )
    assert providers.job_resource_id(primary) == f"{VAULT_ID}/backupJobs/{JOB}"


def test_the_registry_finds_the_crr_provider_from_the_stored_locator() -> None:
    vault = providers.parse_vault_id(VAULT_ID)
    assert providers.for_vault(vault) is RecoveryServices
    assert providers.for_vault(vault.in_region("eastus2")) is CrossRegionRestore
    item = TrackedItem.for_job(JobRef.create(vault.in_region("eastus2"), JOB), datetime.now(UTC),
                               datetime.now(UTC) + timedelta(hours=1))
    assert providers.for_vault(item.vault_id) is CrossRegionRestore  # the string the store keeps
    assert providers.for_vault(VAULT_ID) is RecoveryServices


@pytest.mark.parametrize("region", ["", "East US 2", "eastus2.evil", "east/us", "2eastus", "e" * 41, None, 7])
def test_a_region_that_is_not_a_region_name_is_refused(region: object) -> None:
    with pytest.raises(InvalidReference, match=r"crossRegionRestore\.region"):
        providers.in_region(providers.parse_vault_id(VAULT_ID), region)


# -- operation URLs -----------------------------------------------------------------------------------------------

def test_microsofts_example_operation_url_is_accepted_with_the_vault_alongside() -> None:
    request = parse({"operationUrl": EXAMPLE_URL, "vaultId": VAULT_ID})
    operation = request.operation
    assert operation is not None
    assert operation.operation_id == EXAMPLE_OP  # base64, not a GUID
    assert operation.vault.id == VAULT_ID and operation.vault.region == "eastus2euap"  # the path's region
    # read on ARM_ENDPOINT at a path rebuilt from validated parts, the id quoted as the SDKs quote it
    assert operation.path() == (
        f"/subscriptions/{SUB}/providers/Microsoft.RecoveryServices/locations/eastus2euap/backupCrrOperationsStatus/"
        + EXAMPLE_OP.replace("=", "%3D")
    )
    assert all(c not in operation.key for c in "/\\#?+=")  # a table key
    assert providers.for_vault(operation.vault) is CrossRegionRestore


def test_an_operation_url_on_arm_endpoint_itself_and_a_location_url_are_accepted() -> None:
    on_endpoint = EXAMPLE_URL.replace("centraluseuap.management.azure.com", "management.azure.com")
    location = EXAMPLE_URL.replace("backupCrrOperationsStatus", "backupCrrOperationResults")
    for url in (on_endpoint, location):
        operation = parse({"operationUrl": url, "vaultId": VAULT_ID}).operation
        assert operation is not None and operation.path().split("/")[-2] == "backupCrrOperationsStatus"


def test_a_base64_id_with_an_encoded_slash_is_decoded_once_and_quoted_again() -> None:
    url = EXAMPLE_URL.replace(EXAMPLE_OP, "ab%2Fcd+ef==")
    operation = parse({"operationUrl": url, "vaultId": VAULT_ID}).operation
    assert operation is not None and operation.operation_id == "ab/cd+ef=="
    assert operation.path().endswith("/backupCrrOperationsStatus/ab%2Fcd%2Bef%3D%3D")


@pytest.mark.parametrize(("message", "reason"), [
    ({"operationUrl": EXAMPLE_URL}, "operationUrl is a cross-region restore operation (backupCrrOperationsStatus), "
     "which names no vault: give vaultId"),
    ({"operationUrl": EXAMPLE_URL.replace("centraluseuap.management.azure.com", "management.azure.com.evil.net"),
      "vaultId": VAULT_ID}, "operationUrl must point at ARM_ENDPOINT"),
    ({"operationUrl": EXAMPLE_URL.replace("centraluseuap.management.azure.com", "a.b.management.azure.com"),
      "vaultId": VAULT_ID}, "operationUrl must point at ARM_ENDPOINT"),
    ({"operationUrl": EXAMPLE_URL.replace("https://", "http://"), "vaultId": VAULT_ID},
     "operationUrl must point at ARM_ENDPOINT"),
    ({"operationUrl": EXAMPLE_URL.replace(".com/", ".com:8443/"), "vaultId": VAULT_ID},
     "operationUrl must point at ARM_ENDPOINT"),
    ({"operationUrl": EXAMPLE_URL.replace(EXAMPLE_OP, "not!base64"), "vaultId": VAULT_ID},
     "operationUrl operation id 'not!base64' is not a cross-region restore operation id"),
    ({"operationUrl": EXAMPLE_URL.replace(EXAMPLE_OP, ".."), "vaultId": VAULT_ID},
     "operationUrl operation id '..' is not a cross-region restore operation id"),
    ({"operationUrl": EXAMPLE_URL.replace("eastus2euap", "east%2Fus"), "vaultId": VAULT_ID},
     "operationUrl region 'east/us' is not an Azure region name"),
    ({"operationUrl": EXAMPLE_URL.replace(SUB, "00000000-0000-0000-0000-000000000000"), "vaultId": VAULT_ID},
     "operationUrl is in subscription 00000000-0000-0000-0000-000000000000, not in that of vaultId"),
    ({"operationUrl": EXAMPLE_URL, "vaultId": VAULT_ID, "crossRegionRestore": {"region": "westus"}},
     "crossRegionRestore.region 'westus' is not the region of operationUrl ('eastus2euap')"),
    ({"operationUrl": EXAMPLE_URL.replace("/backupCrrOperationsStatus/", "/backupCrrOperationsStatus/x/"),
      "vaultId": VAULT_ID}, "operationUrl is not a cross-region restore operation"),
])
def test_what_cannot_be_used_is_refused_naming_the_field(message: dict[str, Any], reason: str) -> None:
    assert rejection(message).startswith(reason)


def test_crossregionrestore_beside_a_primary_operation_url_is_refused() -> None:
    url = (f"https://management.azure.com{VAULT_ID}/backupOperations/11111111-2222-3333-4444-555555555555"
           "?api-version=2025-08-01")
    assert parse({"operationUrl": url, "vaultId": VAULT_ID}).operation is not None
    assert rejection({"operationUrl": url, "vaultId": VAULT_ID, "crossRegionRestore": {"region": "eastus2"}}) == (
        "crossRegionRestore is given, but operationUrl is not a cross-region restore operation "
        "(.../locations/<region>/backupCrrOperationsStatus/<id>)")


def test_the_regional_host_is_not_accepted_for_a_primary_operation_url() -> None:
    url = (f"https://eastus2.management.azure.com{VAULT_ID}/backupFabrics/Azure/protectionContainers/c/"
           "protectedItems/i/operationsStatus/11111111-2222-3333-4444-555555555555?api-version=2025-08-01")
    assert rejection({"operationUrl": url}).startswith("operationUrl must point at ARM_ENDPOINT")


# -- the intake field -----------------------------------------------------------------------------------------------

def test_crr_jobs_are_accepted_in_every_shape_that_names_the_vault() -> None:
    crr = {"crossRegionRestore": {"region": "eastus2"}}
    shapes = [
        {"jobId": JOB, "vaultId": VAULT_ID, **crr},
        {"jobId": JOB, "subscriptionId": SUB, "resourceGroup": "srinivasccyrg", "vaultName": "sriniccyvault", **crr},
        {"jobResourceId": f"{VAULT_ID}/backupJobs/{JOB}", **crr},
    ]
    keys = set()
    for message in shapes:
        [job] = parse(message).jobs
        assert job.vault.region == "eastus2" and job.job_id == JOB
        keys.add(job.key)
    assert len(keys) == 1  # one job, whatever the shape
    [primary] = parse({"jobId": JOB, "vaultId": VAULT_ID}).jobs
    assert primary.key not in keys


def test_an_operation_status_body_of_a_crr_operation_names_its_job() -> None:
    status = fixture_json("GetCrrOperationStatus_Get.json")["responses"]["200"]["body"]
    status = {**status, "properties": {"objectType": "OperationStatusJobExtendedInfo", "jobId": JOB}}
    request = parse({"vaultId": VAULT_ID, "operation": status, "crossRegionRestore": {"region": "eastus2euap"}})
    [job] = request.jobs
    assert job.vault.region == "eastus2euap" and job.job_id == JOB
    running = {**status, "status": "InProgress"}
    del running["properties"]
    operation = parse({"vaultId": VAULT_ID, "operation": running, "crossRegionRestore": {"region": "eastus2euap"}})
    assert operation.operation is not None and operation.operation.operation_id == EXAMPLE_OP


@pytest.mark.parametrize(("value", "reason"), [
    ("eastus2", 'crossRegionRestore must be an object with the secondary region, as in {"region": "eastus2"}'),
    ({}, 'crossRegionRestore must be an object with the secondary region, as in {"region": "eastus2"}'),
    ({"region": "eastus2", "vault": "x"}, "crossRegionRestore has unknown fields: vault (only region)"),
    ({"region": "East US 2"}, "crossRegionRestore.region 'East US 2' is not an Azure region name"),
])
def test_a_crossregionrestore_field_that_cannot_be_used_is_refused(value: object, reason: str) -> None:
    assert rejection({"jobId": JOB, "vaultId": VAULT_ID, "crossRegionRestore": value}).startswith(reason)


# -- the setting ----------------------------------------------------------------------------------------------------

def test_the_passive_stamp_has_its_own_api_version_setting() -> None:
    storage = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    assert Settings.from_env(storage).api_versions["JOBS_CRR_API_VERSION"] == "2023-01-15"
    changed = Settings.from_env({**storage, "JOBS_CRR_API_VERSION": "2021-11-15"})
    assert changed.api_versions["JOBS_CRR_API_VERSION"] == "2021-11-15"
    with pytest.raises(ConfigError, match=r"^JOBS_CRR_API_VERSION 'latest' is not an api-version"):
        Settings.from_env({**storage, "JOBS_CRR_API_VERSION": "latest"})
    settings = Settings.from_env({**storage, "JOBS_CRR_API_VERSION": "2026-07-15"})
    configured = providers.Providers.from_settings(settings)
    vault = providers.parse_vault_id(VAULT_ID)
    assert configured.for_vault(vault.in_region("eastus2")).api_version == "2026-07-15"
    assert configured.for_vault(vault).api_version == settings.api_versions["JOBS_ARM_API_VERSION"]


# -- the regional host of ARM_ENDPOINT ------------------------------------------------------------------------------

@pytest.mark.parametrize(("endpoint", "regional"), [
    ("https://management.azure.com", "https://eastus2.management.azure.com"),
    ("https://management.azure.com/", "https://eastus2.management.azure.com"),
    ("https://management.usgovcloudapi.net", "https://eastus2.management.usgovcloudapi.net"),
    ("https://management.chinacloudapi.cn", "https://eastus2.management.chinacloudapi.cn"),
    ("http://127.0.0.1:8123", "http://127.0.0.1:8123"),  # the simulator serves every region on its one port
    ("http://localhost:8123", "http://localhost:8123"),
    ("http://[::1]:8123", "http://[::1]:8123"),
])
def test_the_regional_host_of_arm_endpoint(endpoint: str, regional: str) -> None:
    assert regional_endpoint(endpoint, "eastus2") == regional


class _Pages:
    """A transport double that answers each read with the next page and records what was asked."""

    def __init__(self, next_link: str) -> None:
        self.next_link = next_link
        self.sent: list[tuple[str, str, Mapping[str, Any] | None]] = []
        self.requests_sent = 0

    def _page(self, method: str, url: str, body: Mapping[str, Any] | None) -> dict[str, Any]:
        self.sent.append((method, url, body))
        self.requests_sent += 1
        return {"value": [{"name": f"job-{len(self.sent)}"}], **({"nextLink": self.next_link} if len(self.sent) == 1
                                                                  else {})}

    def get(self, url: str) -> dict[str, Any]:
        return self._page("GET", url, None)

    def post(self, url: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._page("POST", url, body)


def _client(transport: _Pages) -> ArmClient:
    return ArmClient(ARM, StaticToken("t"), transport=transport)  # type: ignore[arg-type]


def test_a_crr_list_follows_a_next_link_on_its_regional_host_with_the_same_body() -> None:
    transport = _Pages("https://eastus2.management.azure.com/subscriptions/s/providers/Microsoft.RecoveryServices/"
                       "locations/eastus2/backupCrrJobs?api-version=2023-01-15&%24skiptoken=x")
    pages = _client(transport).iter_post_pages("/p", {"api-version": "2023-01-15"}, SUB, {"resourceId": VAULT_ID},
                                               region="eastus2")
    assert [item["name"] for item in pages] == ["job-1", "job-2"]
    assert [(method, body) for method, _, body in transport.sent] == [("POST", {"resourceId": VAULT_ID})] * 2
    assert transport.sent[1][1] == transport.next_link


@pytest.mark.parametrize("next_link", [
    "https://westus.management.azure.com/next",  # another region's host
    "https://eastus2.management.azure.com.evil.net/next",
    "https://evil.net/next",
])
def test_a_crr_list_never_follows_a_next_link_elsewhere(next_link: str) -> None:
    transport = _Pages(next_link)
    pages = _client(transport).iter_post_pages("/p", {}, SUB, {"resourceId": VAULT_ID}, region="eastus2")
    assert next(pages) == {"name": "job-1"}
    with pytest.raises(ArmError) as caught:
        next(pages)
    assert caught.value.code == "UnexpectedNextLink" and len(transport.sent) == 1


def test_a_primary_list_never_follows_a_next_link_to_a_regional_host() -> None:
    transport = _Pages("https://eastus2.management.azure.com/next")
    pages = _client(transport).iter_pages("/p", {}, SUB)
    assert next(pages) == {"name": "job-1"}
    with pytest.raises(ArmError, match="UnexpectedNextLink"):
        next(pages)


# -- the result event -----------------------------------------------------------------------------------------------

def _ended(job: JobRef, resource: dict[str, Any]) -> TrackedItem:
    now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    item = TrackedItem.for_job(job, now, now + timedelta(hours=1))
    item.result_status, item.ended_at, item.resource = "Completed", now, resource
    return item


def test_a_crr_jobs_event_is_the_same_cloudevent_and_says_where_it_ran() -> None:
    resource = fixture_json("GetCrrJob_Post.json")["responses"]["200"]["body"]
    resource = {**resource, "properties": {**resource["properties"], "status": "Completed"}}
    vault = providers.parse_vault_id(VAULT_ID)
    record = SubscriberRecord(key="default", subscriber=Subscriber(), added_at=datetime.now(UTC))
    crr = event_for(_ended(JobRef.create(vault.in_region("eastus2euap"), JOB), resource), record)
    primary = event_for(_ended(JobRef.create(vault, JOB), resource), record)
    assert crr["source"] == primary["source"] == VAULT_ID
    assert crr["subject"] == primary["subject"] == f"backupJobs/{JOB}"
    assert crr["type"] == primary["type"] == "BackupJob.Completed"
    assert crr["id"] != primary["id"]  # two jobs to the tracker
    assert crr["data"]["crossRegionRestore"] == {"region": "eastus2euap"}
    assert "crossRegionRestore" not in primary["data"]
    assert crr["data"]["vaultId"] == VAULT_ID
    assert crr["data"]["jobResourceId"] == (
        f"/subscriptions/{SUB}/providers/Microsoft.RecoveryServices/locations/eastus2euap/backupJobs/{JOB}")
    assert crr["data"]["operation"] == "CrossRegionRestore" and crr["data"]["job"] == resource
