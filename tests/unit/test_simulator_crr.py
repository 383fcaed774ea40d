"""The simulator's passive stamp (cross-region restore), as strict as Microsoft's spec for it:
RecoveryServicesBackupCrr/stable/2023-01-15/bms.json and its examples (devtools/simulator/payloads/SOURCES.md)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from devtools.simulator import BackupSimulator, JobScript
from tests.conftest import fixture_json
from tests.unit.test_simulator import FakeClock

SUB = "11111111-2222-3333-4444-555555555555"
VAULT = f"/subscriptions/{SUB}/resourceGroups/backup-rg/providers/Microsoft.RecoveryServices/vaults/prod-vault"
REGION = "eastus2"
API = "2023-01-15"
AUTH = {"Authorization": "Bearer sim-token"}
WALL0 = datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[BackupSimulator]:
    simulator = BackupSimulator(clock=clock, wall_clock=lambda: WALL0 + timedelta(seconds=clock() - 1000.0), seed=3)
    simulator.start()
    simulator.add_vault(VAULT)
    yield simulator
    simulator.stop()


def location(sim: BackupSimulator, region: str = REGION) -> str:
    return f"{sim.base_url}/subscriptions/{SUB}/providers/Microsoft.RecoveryServices/locations/{region}"


def post(sim: BackupSimulator, what: str, body: Any, api: str = API, query: str = "") -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(f"{location(sim)}/{what}?api-version={api}{query}", data=data,
                         headers={**AUTH, "Content-Type": "application/json"}, timeout=5)


def test_a_crr_job_is_read_with_a_post_and_has_the_shape_of_the_example(sim: BackupSimulator) -> None:
    job_id = sim.add_crr_job(VAULT, REGION, JobScript(duration=60))
    answer = post(sim, "backupCrrJob", {"resourceId": VAULT, "jobName": job_id})
    assert answer.status_code == 200
    body = answer.json()
    example = fixture_json("GetCrrJob_Post.json")["responses"]["200"]["body"]
    assert set(example) <= set(body) and body["type"] == example["type"]
    assert body["id"] == (
        f"/subscriptions/{SUB}/providers/microsoft.recoveryservices/locations/{REGION}/backupJobs/{job_id}")
    assert body["properties"]["operation"] == "CrossRegionRestore"
    assert "extendedInfo" in body["properties"]
    # not under the vault: the primary endpoint does not know it
    primary = requests.get(f"{sim.base_url}{VAULT}/backupJobs/{job_id}?api-version=2025-08-01", headers=AUTH,
                           timeout=5)
    assert primary.status_code == 404


def test_a_crr_job_answers_404_before_it_appears(sim: BackupSimulator, clock: FakeClock) -> None:
    job_id = sim.add_crr_job(VAULT, REGION, JobScript(duration=60, not_found_for=10))
    assert post(sim, "backupCrrJob", {"resourceId": VAULT, "jobName": job_id}).status_code == 404
    clock.advance(10)
    assert post(sim, "backupCrrJob", {"resourceId": VAULT, "jobName": job_id}).status_code == 200


@pytest.mark.parametrize(("body", "status", "code"), [
    (b"", 400, "InvalidRequestContent"),
    (b"{not json", 400, "InvalidRequestContent"),
    ([], 400, "InvalidRequestContent"),
    ({"jobName": "x"}, 400, "BMSUserErrorInvalidInput"),
    ({"resourceId": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm",
      "jobName": "x"}, 400, "BMSUserErrorInvalidInput"),
    ({"resourceId": VAULT.replace(SUB, "99999999-2222-3333-4444-555555555555"), "jobName": "x"}, 400,
     "BMSUserErrorInvalidInput"),
    ({"resourceId": VAULT.replace("prod-vault", "other-vault"), "jobName": "x"}, 404, "ResourceNotFound"),
    ({"resourceId": VAULT}, 400, "BMSUserErrorInvalidInput"),
    ({"resourceId": VAULT, "jobName": "02585cc9-d7f4-4b46-860c-14c048cce178"}, 404, "BMSUserErrorJobNotFound"),
])
def test_a_crrjob_request_that_cannot_be_used_gets_an_error(
    sim: BackupSimulator, body: Any, status: int, code: str
) -> None:
    answer = post(sim, "backupCrrJob", body)
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code)


@pytest.mark.parametrize("api", ["2025-08-01", "2016-12-01", "2023-01-15-preview", "2019-05-13"])
def test_an_api_version_the_passive_stamp_does_not_list_is_refused_with_the_real_list(
    sim: BackupSimulator, api: str
) -> None:
    job_id = sim.add_crr_job(VAULT, REGION)
    answer = post(sim, "backupCrrJob", {"resourceId": VAULT, "jobName": job_id}, api=api)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "NoRegisteredProviderFound"
    assert "'2026-07-15, 2023-01-15, 2021-11-15, 2018-12-20'" in error["message"]
    assert "locations/backupcrrjob" in error["message"]


@pytest.mark.parametrize("api", ["2018-12-20", "2021-11-15", "2023-01-15", "2026-07-15"])
def test_every_passive_stamp_api_version_is_served(sim: BackupSimulator, api: str) -> None:
    job_id = sim.add_crr_job(VAULT, REGION)
    assert post(sim, "backupCrrJob", {"resourceId": VAULT, "jobName": job_id}, api=api).status_code == 200


def test_the_crr_endpoints_take_only_the_methods_of_the_spec(sim: BackupSimulator) -> None:
    answer = requests.get(f"{location(sim)}/backupCrrJobs?api-version={API}", headers=AUTH, timeout=5)
    assert (answer.status_code, answer.json()["error"]["code"]) == (405, "HttpMethodNotAllowed")


def test_the_crr_list_pages_and_holds_filter_to_what_azures_clients_send(sim: BackupSimulator) -> None:
    sim.page_size = 2
    job_ids = {sim.add_crr_job(VAULT, REGION, JobScript(duration=600)) for _ in range(3)}
    sim.add_crr_job(VAULT, "westus", JobScript(duration=600))  # another region's job is not listed here
    window = "startTime eq '2026-02-28 10:00:00 AM' and endTime eq '2026-03-01 10:00:01 AM'"
    found: list[str] = []
    answer = post(sim, "backupCrrJobs", {"resourceId": VAULT},
                  query="&%24filter=" + requests.utils.quote(f"status eq 'InProgress' and {window}"))
    pages = 1
    while True:
        assert answer.status_code == 200, answer.text
        page = answer.json()
        found += [item["name"] for item in page["value"]]
        assert all("extendedInfo" not in item["properties"] for item in page["value"])  # summaries
        if "nextLink" not in page:
            break
        assert page["nextLink"].startswith(f"{location(sim)}/backupCrrJobs?api-version={API}&")
        answer = requests.post(page["nextLink"], json={"resourceId": VAULT}, headers=AUTH, timeout=5)
        pages += 1
    assert sorted(found) == sorted(job_ids) and pages == 2
    for wrong in ["startTime eq '2026-01-01 10:00:00 AM' and endTime eq '2026-03-01 10:00:00 AM'",  # > 30 days
                  "startTime eq '2026-02-28T10:00:00Z' and endTime eq '2026-03-01T10:00:00Z'",  # not the format
                  "startTime eq '2026-02-28 10:00:00 AM' and endTime eq '2026-03-09 10:00:00 AM'"]:  # future
        refused = post(sim, "backupCrrJobs", {"resourceId": VAULT}, query="&%24filter=" + requests.utils.quote(wrong))
        assert (refused.status_code, refused.json()["error"]["code"]) == (400, "BMSUserErrorInvalidInput")
    assert post(sim, "backupCrrJobs", {}).json()["error"]["code"] == "BMSUserErrorInvalidInput"


def test_a_triggered_crr_names_its_job_through_a_base64_operation(sim: BackupSimulator, clock: FakeClock) -> None:
    example = fixture_json("TriggerCrossRegionRestore_Post.json")["parameters"]["parameters"]
    example["crossRegionRestoreAccessDetails"].update(resourceGroupName="backup-rg", resourceName="prod-vault")
    answer = post(sim, "backupCrossRegionRestore", example)
    assert answer.status_code == 202
    status_url = answer.headers["Azure-AsyncOperation"]
    assert answer.headers["Retry-After"] == "60"
    match = re.fullmatch(
        rf"{re.escape(sim.base_url)}/subscriptions/{SUB}/providers/microsoft\.recoveryservices/locations/{REGION}"
        rf"/backupCrrOperationsStatus/(?P<op>[A-Za-z0-9+/]+=*)\?api-version={API}", status_url)
    assert match, status_url
    digits, _, guid = base64.b64decode(match["op"]).decode().partition(";")  # "<digits>;<guid>" as the example's
    assert digits.isdigit() and len(guid) == 36
    running = requests.get(status_url, headers=AUTH, timeout=5).json()
    assert running["status"] == "InProgress" and "properties" not in running
    assert requests.get(answer.headers["Location"], headers=AUTH, timeout=5).status_code == 202
    clock.advance(1)
    done = requests.get(status_url, headers=AUTH, timeout=5).json()
    example_status = fixture_json("GetCrrOperationStatus_Get.json")["responses"]["200"]["body"]
    assert set(example_status) <= set(done) and done["name"] == match["op"] and done["status"] == "Succeeded"
    job_id = done["properties"]["jobId"]
    assert done["properties"]["objectType"] == "OperationStatusJobExtendedInfo"
    assert post(sim, "backupCrrJob", {"resourceId": VAULT, "jobName": job_id}).status_code == 200
    assert requests.get(answer.headers["Location"], headers=AUTH, timeout=5).status_code == 200
    wrong_version = requests.get(status_url.replace(API, "2025-08-01"), headers=AUTH, timeout=5)
    assert wrong_version.json()["error"]["code"] == "NoRegisteredProviderFound"


@pytest.mark.parametrize(("body", "code"), [
    (b"", "InvalidRequestContent"),
    ({"restoreRequest": {"objectType": "IaasVMRestoreRequest"}}, "BMSUserErrorInvalidInput"),
    ({"crossRegionRestoreAccessDetails": {"objectType": "WorkloadCrrAccessToken", "resourceGroupName": "backup-rg",
                                          "resourceName": "prod-vault"},
      "restoreRequest": {"objectType": "Nonsense"}}, "BMSUserErrorInvalidInput"),
])
def test_a_crr_trigger_that_cannot_be_used_starts_no_job(sim: BackupSimulator, body: Any, code: str) -> None:
    answer = post(sim, "backupCrossRegionRestore", body)
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, code)


def test_the_control_api_makes_crr_jobs_and_triggers(sim: BackupSimulator) -> None:
    made = requests.post(f"{sim.base_url}/_simulator/crr-jobs", json={"vaultId": VAULT, "region": "EastUS2"},
                         timeout=5)
    assert made.status_code == 201 and made.json()["region"] == REGION
    assert post(sim, "backupCrrJob", {"resourceId": VAULT, "jobName": made.json()["jobId"]}).status_code == 200
    triggered = requests.post(f"{sim.base_url}/_simulator/crr-trigger",
                              json={"vaultId": VAULT, "region": REGION, "operationDelaySeconds": 0}, timeout=5).json()
    status = requests.get(triggered["azureAsyncOperation"], headers=AUTH, timeout=5).json()
    assert status["properties"]["jobId"] == triggered["jobId"] and status["name"] == triggered["operationId"]
