"""The Backup REST API simulator, driven over real HTTP (requests) on loopback."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from devtools.simulator import BackupSimulator, FaultConfig, JobScript

SUB = "11111111-2222-3333-4444-555555555555"
VAULT_ID = f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.RecoveryServices/vaults/vault-one"
API = "2025-08-01"
AUTH = {"Authorization": "Bearer sim-token"}
FIXTURES = Path(__file__).resolve().parents[2] / "devtools" / "simulator" / "payloads"
WALL0 = datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)

ERROR_KEYS = {
    "AzureIaaSVMJob": {"errorCode", "errorTitle", "errorString", "recommendations"},
    "AzureIaaSVMJobV2": {"errorCode", "errorTitle", "errorString", "recommendations"},
    "AzureStorageJob": {"errorCode", "errorString", "recommendations"},
    "AzureWorkloadJob": {"errorCode", "errorTitle", "errorString", "recommendations", "additionalDetails"},
    "DpmJob": {"errorString", "recommendations"},
    "MabJob": {"errorString", "recommendations"},
    "VaultJob": {"errorCode", "errorString", "recommendations"},
}
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?Z$")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[BackupSimulator]:
    def wall() -> datetime:
        return WALL0 + timedelta(seconds=clock() - 1000.0)

    simulator = BackupSimulator(clock=clock, wall_clock=wall, seed=7)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def job_url(sim: BackupSimulator, job_id: str, vault_id: str = VAULT_ID) -> str:
    return f"{sim.base_url}{vault_id}/backupJobs/{job_id}?api-version={API}"


def list_url(sim: BackupSimulator, vault_id: str = VAULT_ID) -> str:
    return f"{sim.base_url}{vault_id}/backupJobs"


def get_job(http: requests.Session, sim: BackupSimulator, job_id: str) -> requests.Response:
    return http.get(job_url(sim, job_id), headers=AUTH, timeout=5)


def fixture_body(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))["responses"]["200"]["body"]


# -- job lifecycle ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "job_type",
    ["AzureIaaSVMJob", "AzureIaaSVMJobV2", "AzureStorageJob", "AzureWorkloadJob", "DpmJob", "MabJob", "VaultJob"],
)
@pytest.mark.parametrize("final_status", ["Completed", "CompletedWithWarnings", "Failed", "Cancelled"])
def test_lifecycle_reaches_each_terminal_status_with_the_right_error_shape(
    sim: BackupSimulator, clock: FakeClock, http: requests.Session, job_type: str, final_status: str
) -> None:
    operation = "UpdateCustomerManagedKey" if job_type == "VaultJob" else "Backup"
    job_id = sim.add_job(
        VAULT_ID,
        JobScript(job_type=job_type, operation=operation, final_status=final_status, duration=10, cancelling_for=2),
    )
    clock.advance(1)
    running = get_job(http, sim, job_id).json()
    assert running["properties"]["status"] == "InProgress"
    assert "endTime" not in running["properties"]
    assert "errorDetails" not in running["properties"]

    clock.advance(10)
    response = get_job(http, sim, job_id)
    assert response.status_code == 200
    job = response.json()
    props = job["properties"]
    assert job["name"] == job_id
    assert job["type"] == "Microsoft.RecoveryServices/vaults/backupJobs"
    assert job["id"].startswith(f"/Subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.RecoveryServices/")
    assert job["id"].endswith(f"/vaults/vault-one/backupJobs/{job_id}")
    assert props["jobType"] == job_type
    assert props["status"] == final_status
    assert props["operation"] == operation
    assert TIMESTAMP.match(props["startTime"]) and TIMESTAMP.match(props["endTime"])
    # IaaS VM jobs: .NET TimeSpan (seed-job-response.json); others ISO 8601 (GetJobDetails.json)
    assert props["duration"] == ("00:00:10" if job_type.startswith("AzureIaaSVM") else "PT10S")
    assert re.fullmatch(r"[0-9a-f-]{36}", props["activityId"])
    assert props.get("actionsInfo") == (None if job_type == "VaultJob" else [1])  # integers, terminal jobs too
    assert "extendedInfo" in props
    if final_status in ("Failed", "CompletedWithWarnings"):
        (detail,) = props["errorDetails"]
        assert set(detail) == ERROR_KEYS[job_type]
        assert detail["errorString"] and detail["recommendations"]
        if "errorCode" in detail:
            assert isinstance(detail["errorCode"], int)
        if "errorTitle" in detail:  # "typically, the entity that the error pertains to" (bms.json)
            assert detail["errorTitle"] == props["entityFriendlyName"]
    else:
        assert "errorDetails" not in props
    if final_status == "Failed" and job_type != "VaultJob":
        assert props["extendedInfo"]["dynamicErrorMessage"]
    if job_type == "VaultJob":
        assert set(props["extendedInfo"]) == {"propertyBag"}
    else:
        tasks = props["extendedInfo"]["tasksList"]
        assert tasks
        statuses = [t["status"] for t in tasks]
        if final_status == "Cancelled":
            assert "Cancelled" in statuses and "InProgress" not in statuses
        elif final_status == "Failed":
            assert "Failed" in statuses
        else:
            assert set(statuses) == {"Completed"}
    assert "progressPercentage" not in props["extendedInfo"]


def test_iaas_job_progresses_task_by_task(sim: BackupSimulator, clock: FakeClock, http: requests.Session) -> None:
    job_id = sim.add_job(VAULT_ID, JobScript(duration=10, entity_friendly_name="vm-web01"))
    clock.advance(2.5)
    props = get_job(http, sim, job_id).json()["properties"]
    info = props["extendedInfo"]
    assert props["status"] == "InProgress"
    assert props["actionsInfo"] == [1]
    assert props["virtualMachineVersion"] == "Compute"
    assert props["entityFriendlyName"] == "vm-web01"
    assert props["duration"] == "00:00:02.5000000"
    assert props["isUserTriggered"] is True and props["containerName"].endswith(";vm-web01")
    assert info["progressPercentage"] == 25.0
    assert info["estimatedRemainingDuration"] == "00:00:08"
    assert info["propertyBag"] == {"VM Name": "vm-web01"}
    assert [(t["taskId"], t["status"], t["duration"]) for t in info["tasksList"]] == [
        ("Take Snapshot", "InProgress", "00:00:02.5000000"),
        ("Transfer data to vault", "NotStarted", "00:00:00"),
    ]
    assert set(info["tasksList"][0]) == {"taskId", "startTime", "endTime", "instanceId", "duration", "status",
                                         "progressPercentage", "taskExecutionDetails"}
    assert "internalPropertyBag" in info
    clock.advance(5)
    info = get_job(http, sim, job_id).json()["properties"]["extendedInfo"]
    assert [t["status"] for t in info["tasksList"]] == ["Completed", "InProgress"]
    clock.advance(5)
    props = get_job(http, sim, job_id).json()["properties"]
    assert props["status"] == "Completed"
    assert props["endTime"] == "2026-03-01T10:00:10.123456" + props["startTime"][26:]
    assert set(props["extendedInfo"]["propertyBag"]) == {"VM Name", "Backup Size"}
    assert props["extendedInfo"]["propertyBag"]["Backup Size"].endswith(" MB")


def test_payloads_have_the_shape_of_the_fixtures(
    sim: BackupSimulator, clock: FakeClock, http: requests.Session
) -> None:
    job_id = sim.add_job(VAULT_ID, JobScript(duration=10))
    clock.advance(1)
    get = get_job(http, sim, job_id).json()
    want = fixture_body("GetJobDetails.json")
    assert list(get) == list(want)
    iaas_extra = {"actionsInfo", "containerName", "isUserTriggered"}  # AzureIaaSVMJob fields of bms.json
    assert set(want["properties"]) <= set(get["properties"]) <= set(want["properties"]) | iaas_extra
    assert set(want["properties"]["extendedInfo"]) <= set(get["properties"]["extendedInfo"])
    assert all(set(w) <= set(t) for t, w in zip(get["properties"]["extendedInfo"]["tasksList"],
                                                 want["properties"]["extendedInfo"]["tasksList"], strict=True))
    item = http.get(list_url(sim), params={"api-version": API}, headers=AUTH, timeout=5).json()["value"][0]
    want_item = fixture_body("ListJobs.json")["value"][0]
    assert set(want_item["properties"]) <= set(item["properties"]) <= set(want_item["properties"]) | iaas_extra
    assert sim.job_resource(VAULT_ID, job_id) == get_job(http, sim, job_id).json()


def test_cancelled_job_passes_through_cancelling(
    sim: BackupSimulator, clock: FakeClock, http: requests.Session
) -> None:
    job_id = sim.add_job(VAULT_ID, JobScript(job_type="DpmJob", final_status="Cancelled", duration=6, cancelling_for=2))
    clock.advance(4.5)
    props = get_job(http, sim, job_id).json()["properties"]
    assert props["status"] == "Cancelling"
    assert "endTime" not in props and props["actionsInfo"] == [1]
    clock.advance(2)
    props = get_job(http, sim, job_id).json()["properties"]
    assert props["status"] == "Cancelled"
    (task,) = props["extendedInfo"]["tasksList"]
    assert set(task) == {"taskId", "startTime", "endTime", "duration", "status"}
    assert task["status"] == "Cancelled"


def test_cancel_over_http(sim: BackupSimulator, clock: FakeClock, http: requests.Session) -> None:
    job_id = sim.add_job(VAULT_ID, JobScript(duration=60, cancelling_for=1))
    clock.advance(5)
    cancel = http.post(f"{sim.base_url}{VAULT_ID}/backupJobs/{job_id}/cancel?api-version={API}", headers=AUTH)
    assert cancel.status_code == 202
    assert "/backupJobs/" in cancel.headers["Location"] and cancel.headers["Retry-After"] == "60"
    assert http.get(cancel.headers["Location"], headers=AUTH).status_code == 204
    assert get_job(http, sim, job_id).json()["properties"]["status"] == "Cancelling"
    clock.advance(1)
    assert get_job(http, sim, job_id).json()["properties"]["status"] == "Cancelled"


def test_job_is_404_during_its_not_found_window(sim: BackupSimulator, clock: FakeClock, http: requests.Session) -> None:
    job_id = sim.add_job(VAULT_ID, JobScript(duration=10, not_found_for=3))
    response = get_job(http, sim, job_id)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] and job_id in error["message"]
    listed = http.get(list_url(sim), params={"api-version": API}, headers=AUTH).json()
    assert listed["value"] == []
    clock.advance(3)
    assert get_job(http, sim, job_id).status_code == 200
    assert [j["name"] for j in http.get(list_url(sim), params={"api-version": API}, headers=AUTH).json()["value"]] == [
        job_id
    ]
    assert get_job(http, sim, "00000000-0000-0000-0000-00000000abcd").status_code == 404


# -- list ------------------------------------------------------------------------------------------------------


def test_list_is_summary_only_and_filters_work(sim: BackupSimulator, clock: FakeClock, http: requests.Session) -> None:
    failed = sim.add_job(VAULT_ID, JobScript(final_status="Failed", duration=1))
    clock.advance(3600)
    restore = sim.add_job(VAULT_ID, JobScript(job_type="AzureWorkloadJob", operation="Restore", duration=10_000))
    clock.advance(3600)
    running = sim.add_job(VAULT_ID, JobScript(duration=100))
    clock.advance(2)

    def names(filter_text: str | None) -> list[str]:
        params = {"api-version": API}
        if filter_text is not None:
            params["$filter"] = filter_text
        response = http.get(list_url(sim), params=params, headers=AUTH)
        assert response.status_code == 200, response.text
        return [item["name"] for item in response.json()["value"]]

    everything = http.get(list_url(sim), params={"api-version": API}, headers=AUTH).json()
    assert "nextLink" not in everything
    assert [i["name"] for i in everything["value"]] == [running, restore, failed]  # newest first
    for item in everything["value"]:
        assert "extendedInfo" not in item["properties"] and "errorDetails" not in item["properties"]
    assert names("status eq 'InProgress'") == [running, restore]
    assert names("status eq 'Failed'") == [failed]
    assert names("operation eq 'Restore'") == [restore]
    assert names("backupManagementType eq 'AzureIaasVM' and status eq 'InProgress'") == [running]
    assert names(f"jobId eq '{restore}'") == [restore]
    # startTime/endTime act as a window on the job's startTime (.NET 'yyyy-MM-dd hh:mm:ss tt', UTC)
    assert names("startTime eq '2026-03-01 10:30:00 AM' and endTime eq '2026-03-01 11:30:00 AM'") == [restore]
    assert names("startTime eq '2026-03-01 00:00:00 AM' and endTime eq '2026-03-01 12:30:00 PM'") == [
        running,
        restore,
        failed,
    ]
    # Azure's clients never send more than 30 days (PowerShell: JobAllowedDateTimeRangeExceeded), an end in the
    # future, or another date format: the simulator refuses them
    for bad in ("startTime eq '2016-01-01 00:00:00 AM' and endTime eq '2017-11-29 00:00:00 AM'",
                "startTime eq '2026-03-01 10:30:00 AM' and endTime eq '2026-03-03 10:30:00 AM'",
                "startTime eq '2026-03-01T10:30:00Z' and endTime eq '2026-03-01 11:30:00 AM'",
                "startTime eq '2026-03-01 13:30:00' and endTime eq '2026-03-01 02:30:00 PM'"):
        response = http.get(list_url(sim), params={"api-version": API, "$filter": bad}, headers=AUTH)
        assert response.status_code == 400, bad
        assert response.json()["error"]["code"] == "BMSUserErrorInvalidInput"
    for bad in ("status = 'Failed'", "color eq 'blue'", "status eq 'Done'", "startTime eq 'yesterday'"):
        response = http.get(list_url(sim), params={"api-version": API, "$filter": bad}, headers=AUTH)
        assert response.status_code == 400, bad
        assert response.json()["error"]["code"]


def test_paging_returns_every_job_once_and_nextlink_is_followed_verbatim(
    sim: BackupSimulator, clock: FakeClock, http: requests.Session
) -> None:
    created = []
    for _ in range(45):
        created.append(sim.add_job(VAULT_ID, JobScript(duration=1000)))
        clock.advance(1)
    sim.page_size = 20
    url: str | None = f"{list_url(sim)}?api-version={API}&$filter=status eq 'InProgress'"
    seen: list[str] = []
    pages = 0
    while url:
        response = http.get(url, headers=AUTH)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [item["name"] for item in body["value"]]
        pages += 1
        url = body.get("nextLink")
        if url:
            assert url.startswith(sim.base_url + "/subscriptions/")
            query = parse_qs(urlsplit(url).query)
            assert query["api-version"] == ["2017-07-01"]  # older than what we asked for, like the real service
            assert "<ContinuationToken>" in query["$skiptoken"][0]
            assert query["$filter"] == ["status eq 'InProgress'"]
            if pages == 1:
                sim.add_job(VAULT_ID, JobScript(duration=1000))  # a new job must not shift later pages
    assert pages == 3
    assert seen == list(reversed(created))
    assert sim.stats()["list_pages"] == 3
    bad = http.get(list_url(sim), params={"api-version": API, "$skiptoken": "garbage"}, headers=AUTH)
    assert bad.status_code == 400


# -- operations ------------------------------------------------------------------------------------------------


def test_trigger_over_http_then_operation_then_job(
    sim: BackupSimulator, clock: FakeClock, http: requests.Session
) -> None:
    item = (
        f"{VAULT_ID}/backupFabrics/Azure/protectionContainers/IaasVMContainer;iaasvmcontainerv2;rg-backup;vm1"
        "/protectedItems/VM;iaasvmcontainerv2;rg-backup;vm1"
    )
    unknown = http.post(
        f"{sim.base_url}{item.replace('vault-one', 'vault-new')}/backup?api-version={API}", headers=AUTH
    )
    assert unknown.status_code == 404  # the vault must exist
    sim.add_vault(VAULT_ID)
    response = http.post(
        f"{sim.base_url}{item}/backup?api-version={API}",
        json={"properties": {"objectType": "IaasVMBackupRequest"}},
        headers=AUTH,
    )
    assert response.status_code == 202
    assert response.content == b""
    assert response.headers["Retry-After"] == "60"
    status_url = response.headers["Azure-AsyncOperation"]
    result_url = response.headers["Location"]
    assert status_url.startswith(f"{sim.base_url}/Subscriptions/{SUB}/resourceGroups/rg-backup/")
    assert "/protectionContainers/IaasVMContainer;iaasvmcontainerv2;rg-backup;vm1/" in status_url
    assert re.search(r"/operationsStatus/[0-9a-f-]{36}\?api-version=2016-12-01$", status_url)
    assert re.search(r"/operationResults/[0-9a-f-]{36}\?api-version=2016-12-01$", result_url)

    status = http.get(status_url, headers=AUTH).json()
    assert status["status"] == "InProgress"
    assert status["endTime"] == "0001-01-01T00:00:00.00000Z"
    assert "properties" not in status
    pending = http.get(result_url, headers=AUTH)
    assert pending.status_code == 202 and pending.headers["Location"] == result_url

    clock.advance(1)
    status = http.get(status_url, headers=AUTH).json()
    assert status["status"] == "Succeeded"
    assert status["id"] == status["name"] == status_url.split("/operationsStatus/")[1].split("?")[0]
    assert status["properties"]["objectType"] == "OperationStatusJobExtendedInfo"
    job_id = status["properties"]["jobId"]
    assert http.get(result_url, headers=AUTH).status_code == 204
    vault_level = f"{sim.base_url}{VAULT_ID}/backupOperations/{status['id']}?api-version={API}"
    assert http.get(vault_level, headers=AUTH).json() == status
    job = get_job(http, sim, job_id).json()
    assert job["properties"]["entityFriendlyName"] == "vm1"
    assert job["properties"]["operation"] == "Backup"


def test_python_trigger_and_failed_operation(sim: BackupSimulator, clock: FakeClock, http: requests.Session) -> None:
    ok = sim.trigger_backup(VAULT_ID, JobScript(duration=5), operation_delay=2)
    assert ok.job_id and ok.retry_after == 60
    assert ok.azure_async_operation.startswith(sim.base_url)
    assert get_job(http, sim, ok.job_id).status_code == 404  # the job appears when the operation succeeds
    failed = sim.trigger_backup(VAULT_ID, operation_delay=1, operation_outcome="Failed")
    assert failed.job_id is None
    clock.advance(2)
    assert http.get(ok.azure_async_operation, headers=AUTH).json()["properties"]["jobId"] == ok.job_id
    assert get_job(http, sim, ok.job_id).json()["properties"]["status"] == "InProgress"
    body = http.get(failed.azure_async_operation, headers=AUTH).json()
    assert body["status"] == "Failed"
    assert body["error"]["code"] == "UserErrorBackupOperationInProgress" and body["error"]["message"]
    assert "properties" not in body
    result = http.get(failed.location, headers=AUTH)
    assert result.status_code == 400 and result.json()["error"]["code"] == "UserErrorBackupOperationInProgress"
    canceled = sim.trigger_backup(VAULT_ID, operation_delay=0, operation_outcome="Canceled")
    assert http.get(canceled.azure_async_operation, headers=AUTH).json()["status"] == "Canceled"


# -- ARM front door --------------------------------------------------------------------------------------------


def test_paths_are_case_insensitive(sim: BackupSimulator, http: requests.Session) -> None:
    job_id = sim.add_job(VAULT_ID, JobScript())
    variants = [
        f"/Subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.RecoveryServices/vaults/vault-one",
        f"/subscriptions/{SUB.upper()}/resourcegroups/RG-BACKUP/providers/microsoft.recoveryservices/vaults/VAULT-ONE",
    ]
    for vault in variants:
        response = http.get(f"{sim.base_url}{vault}/BACKUPJOBS/{job_id.upper()}?api-version={API}", headers=AUTH)
        assert response.status_code == 200, vault
        assert response.json()["name"] == job_id
        assert http.get(f"{sim.base_url}{vault}/backupjobs?api-version={API}", headers=AUTH).status_code == 200
    assert sim.stats()["job_gets"] == {job_id: 2}


def test_api_version_is_required(sim: BackupSimulator, http: requests.Session) -> None:
    job_id = sim.add_job(VAULT_ID, JobScript())
    response = http.get(f"{sim.base_url}{VAULT_ID}/backupJobs/{job_id}", headers=AUTH)
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "MissingApiVersionParameter",
            "message": "The api-version query parameter (?api-version=) is required for all requests.",
        }
    }
    assert http.get(job_url(sim, job_id).replace(API, "latest"), headers=AUTH).status_code == 400
    # a well-formed version the spec does not list: ARM's NoRegisteredProviderFound, with the real list
    unknown = http.get(job_url(sim, job_id).replace(API, "2026-05-31-preview"), headers=AUTH)
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "NoRegisteredProviderFound"
    assert "2025-08-01" in unknown.json()["error"]["message"]
    assert http.get(job_url(sim, job_id).replace(API, "2016-12-01"), headers=AUTH).status_code == 200


def test_authentication(sim: BackupSimulator, http: requests.Session) -> None:
    job_id = sim.add_job(VAULT_ID, JobScript())
    missing = http.get(job_url(sim, job_id))
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "AuthenticationFailed"
    assert "WWW-Authenticate" in missing.headers
    wrong = http.get(job_url(sim, job_id), headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "InvalidAuthenticationToken"
    ok = http.get(job_url(sim, job_id), headers={"Authorization": "bearer sim-token"})
    assert ok.status_code == 200
    for name in ("x-ms-request-id", "x-ms-correlation-request-id", "x-ms-ratelimit-remaining-subscription-reads"):
        assert ok.headers[name]
    echoed = http.get(job_url(sim, job_id), headers={**AUTH, "x-ms-correlation-request-id": "corr-1"})
    assert echoed.headers["x-ms-correlation-request-id"] == "corr-1"
    assert sim.stats()["unauthorized"] == 2


def test_no_token_means_no_auth(http: requests.Session) -> None:
    with BackupSimulator(token=None) as open_sim:
        job_id = open_sim.add_job(VAULT_ID, JobScript())
        assert http.get(job_url(open_sim, job_id)).status_code == 200


def test_denied_vault_answers_403(sim: BackupSimulator, http: requests.Session) -> None:
    job_id = sim.add_job(VAULT_ID, JobScript())
    sim.deny_vault(VAULT_ID.upper().replace("/SUBSCRIPTIONS/", "/subscriptions/"))
    for url in (job_url(sim, job_id), f"{list_url(sim)}?api-version={API}"):
        response = http.get(url, headers=AUTH)
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["code"] == "AuthorizationFailed"
        assert "Microsoft.RecoveryServices/vaults/backupJobs/read" in error["message"]
        assert "/vaults/vault-one/backupJobs" in error["message"]
    sim.allow_vault(VAULT_ID)
    assert get_job(http, sim, job_id).status_code == 200


def test_unknown_vault_is_404(sim: BackupSimulator, http: requests.Session) -> None:
    other = VAULT_ID.replace("vault-one", "vault-two")
    response = http.get(f"{sim.base_url}{other}/backupJobs?api-version={API}", headers=AUTH)
    assert response.status_code == 404 and response.json()["error"]["code"] == "ResourceNotFound"


# -- throttling and faults -------------------------------------------------------------------------------------


def test_token_bucket_throttling_and_retry_after_violations(
    sim: BackupSimulator, clock: FakeClock, http: requests.Session
) -> None:
    job_id = sim.add_job(VAULT_ID, JobScript(duration=100))
    sim.set_faults(FaultConfig(throttle=True, bucket_size=5, refill_per_second=1.0))
    remaining = [get_job(http, sim, job_id).headers["x-ms-ratelimit-remaining-subscription-reads"] for _ in range(5)]
    assert remaining == ["4", "3", "2", "1", "0"]
    throttled = get_job(http, sim, job_id)
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
    error = throttled.json()["error"]
    assert error["code"] == "SubscriptionRequestsThrottled"
    assert f"subscription '{SUB}'" in error["message"]
    assert sim.stats()["retry_after_violations"] == 0

    clock.advance(0.5)  # inside the Retry-After window: a violation, and throttled again
    assert get_job(http, sim, job_id).status_code == 429
    assert sim.stats()["retry_after_violations"] == 1

    clock.advance(1.0)  # after the window (the second 429 said 1 s at t+0.5)
    assert get_job(http, sim, job_id).status_code == 200
    stats = sim.stats()
    assert stats["retry_after_violations"] == 1
    assert stats["throttled"] == 2
    assert stats["by_status"][429] == 2 and stats["by_status"][200] == 6
    assert stats["job_gets"][job_id] == 8


def test_faults_on_cue(sim: BackupSimulator, http: requests.Session) -> None:
    job_id = sim.add_job(VAULT_ID, JobScript())
    sim.set_faults(FaultConfig(rate_500=1.0, only_on_cue=1))
    response = get_job(http, sim, job_id)
    assert response.status_code == 500 and response.json()["error"]["code"] == "InternalServerError"
    assert get_job(http, sim, job_id).status_code == 200

    sim.set_faults(FaultConfig(rate_503=1.0, only_on_cue=2))
    assert [get_job(http, sim, job_id).status_code for _ in range(3)] == [503, 503, 200]

    sim.set_faults(FaultConfig(rate_reset=1.0, only_on_cue=1))
    with pytest.raises(requests.ConnectionError):
        get_job(http, sim, job_id)
    assert get_job(http, sim, job_id).status_code == 200

    sim.set_faults(FaultConfig(rate_truncated=1.0, only_on_cue=1))
    truncated = get_job(http, sim, job_id)
    assert truncated.status_code == 200
    with pytest.raises(ValueError):
        truncated.json()
    assert get_job(http, sim, job_id).json()["name"] == job_id

    sim.set_faults(FaultConfig(rate_429=1.0, retry_after_seconds=3, only_on_cue=1))
    limited = get_job(http, sim, job_id)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"

    faults = sim.stats()["faults"]
    assert faults["500"] == 1 and faults["503"] == 2 and faults["reset"] == 1 and faults["truncated"] == 1
    assert faults["429"] == 1


def test_random_and_slow_faults(sim: BackupSimulator, http: requests.Session) -> None:
    job_id = sim.add_job(VAULT_ID, JobScript())
    sim.set_faults(FaultConfig(rate_500=0.5))
    codes = [get_job(http, sim, job_id).status_code for _ in range(40)]
    assert 5 < codes.count(500) < 35 and codes.count(200) + codes.count(500) == 40
    sim.set_faults(FaultConfig(rate_slow=1.0, slow_seconds=0.3, only_on_cue=1))
    started = time.monotonic()
    assert get_job(http, sim, job_id).status_code == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    get_job(http, sim, job_id)
    assert time.monotonic() - started < 0.3
    with pytest.raises(ValueError):
        sim.set_faults(FaultConfig(rate_500=2.0))


def test_stats_count_requests_by_kind(sim: BackupSimulator, clock: FakeClock, http: requests.Session) -> None:
    job_id = sim.add_job(VAULT_ID, JobScript())
    op = sim.trigger_backup(VAULT_ID, operation_delay=0)
    get_job(http, sim, job_id)
    get_job(http, sim, job_id)
    http.get(f"{list_url(sim)}?api-version={API}", headers=AUTH)
    http.get(op.azure_async_operation, headers=AUTH)
    http.get(op.location, headers=AUTH)
    http.get(f"{sim.base_url}/_simulator/stats")
    stats = sim.stats()
    assert stats["total"] == 6 and stats["arm_requests"] == 5
    assert stats["by_kind"]["job_get"] == 2
    assert stats["by_kind"]["job_list"] == 1
    assert stats["by_kind"]["operation_status"] == 1
    assert stats["by_kind"]["operation_result"] == 1
    assert stats["by_kind"]["control"] == 1
    assert stats["by_status"] == {200: 5, 204: 1}
    assert stats["job_gets"] == {job_id: 2}
    sim.reset_stats()
    assert sim.stats()["total"] == 0


def test_concurrent_clients(sim: BackupSimulator) -> None:
    job_ids = [sim.add_job(VAULT_ID, JobScript(duration=100)) for _ in range(4)]
    failures: list[str] = []

    def worker(job_id: str) -> None:
        with requests.Session() as session:
            for _ in range(25):
                response = session.get(job_url(sim, job_id), headers=AUTH, timeout=5)
                if response.status_code != 200 or response.json()["name"] != job_id:
                    failures.append(response.text)

    threads = [threading.Thread(target=worker, args=(job_id,)) for job_id in job_ids for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not failures
    stats = sim.stats()
    assert stats["by_kind"]["job_get"] == 200
    assert stats["job_gets"] == dict.fromkeys(job_ids, 50)


# -- HTTP control API ------------------------------------------------------------------------------------------


def test_control_api_over_http(sim: BackupSimulator, clock: FakeClock, http: requests.Session) -> None:
    control = f"{sim.base_url}/_simulator"
    created = http.post(
        f"{control}/jobs",
        json={
            "vaultId": VAULT_ID,
            "jobType": "AzureStorageJob",
            "operation": "Backup",
            "finalStatus": "Failed",
            "durationSeconds": 2,
            "notFoundSeconds": 1,
            "jobId": "0f0e0d0c-0b0a-4908-8706-050403020100",
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["jobId"] == "0f0e0d0c-0b0a-4908-8706-050403020100"
    assert created.json()["id"].startswith("/Subscriptions/")
    assert get_job(http, sim, created.json()["jobId"]).status_code == 404
    clock.advance(2)
    assert get_job(http, sim, created.json()["jobId"]).json()["properties"]["status"] == "Failed"

    triggered = http.post(
        f"{control}/trigger", json={"vaultId": VAULT_ID, "operationDelaySeconds": 0, "operationOutcome": "Succeeded"}
    )
    assert triggered.status_code == 201
    body = triggered.json()
    assert (
        body["jobId"]
        and "/operationsStatus/" in body["azureAsyncOperation"]
        and "/operationResults/" in body["location"]
    )

    assert http.put(f"{control}/faults", json={"rate500": 1.0, "onlyOnCue": 1}).status_code == 200
    assert get_job(http, sim, body["jobId"]).status_code == 500
    assert http.put(f"{control}/faults", json={"bogus": 1}).status_code == 400
    assert http.post(f"{control}/deny", json={"vaultId": VAULT_ID}).status_code == 204
    assert get_job(http, sim, body["jobId"]).status_code == 403
    stats = http.get(f"{control}/stats").json()
    assert stats["by_status"]["403"] == 1 and stats["by_kind"]["control"] >= 4
    assert http.post(f"{control}/reset-stats").status_code == 204
    assert sim.stats()["total"] == 0
    assert http.post(f"{control}/jobs", json={"vaultId": VAULT_ID, "jobType": "Nope"}).status_code == 400


# -- server lifecycle ------------------------------------------------------------------------------------------


def test_stop_releases_the_port() -> None:
    sim = BackupSimulator()
    sim.start()
    port = int(sim.base_url.rsplit(":", 1)[1])
    session = requests.Session()
    assert session.get(f"{sim.base_url}/_simulator/health").status_code == 200  # keeps a connection open
    sim.stop()
    sim.stop()
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
    session.close()


def test_serve_prints_its_address_and_stops_on_ctrl_c() -> None:
    code = "from devtools.simulator import serve; serve(seed_demo_jobs=True)"
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        match = re.fullmatch(r"Backup REST API simulator listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        listed = requests.get(
            f"{match.group(1)}/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/demo-rg/providers"
            "/Microsoft.RecoveryServices/vaults/demo-vault/backupJobs?api-version=2025-08-01",
            headers=AUTH,
            timeout=5,
        )
        assert listed.status_code == 200 and len(listed.json()["value"]) >= 5
        process.send_signal(2)  # SIGINT
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_restore_trigger_and_more_control_endpoints(sim: BackupSimulator, http: requests.Session) -> None:
    control = f"{sim.base_url}/_simulator"
    assert http.post(f"{control}/vaults", json={"vaultId": VAULT_ID}).status_code == 204
    item = (
        f"{VAULT_ID}/backupFabrics/Azure/protectionContainers/StorageContainer;Storage;rg;st1"
        "/protectedItems/AzureFileShare;share1"
    )
    restore_body = {"properties": {"objectType": "IaasVMRestoreRequest"}}  # RestoreRequestResource (bms.json)
    response = http.post(f"{sim.base_url}{item}/recoveryPoints/123/restore?api-version={API}", json=restore_body,
                         headers=AUTH)
    assert response.status_code == 202
    assert response.headers["Location"].endswith("?api-version=2020-09-01")
    assert http.put(f"{control}/settings", json={"pageSize": 7}).json()["pageSize"] == 7 == sim.page_size
    (job_id,) = sim.job_ids(VAULT_ID)
    shown = http.get(f"{control}/job", params={"vaultId": VAULT_ID, "jobId": job_id}).json()
    assert shown["properties"]["jobType"] == "AzureStorageJob"
    assert shown["properties"]["operation"] == "Restore"
    assert shown["properties"]["entityFriendlyName"] == "share1"
    assert http.post(f"{control}/cancel", json={"vaultId": VAULT_ID, "jobId": job_id}).json() == {"cancelled": True}
    assert http.get(f"{control}/job", params={"vaultId": VAULT_ID, "jobId": "nope"}).status_code == 404
    assert http.delete(job_url(sim, job_id), headers=AUTH).status_code == 405


def test_the_control_api_sets_resource_graph_never_and_refusing(sim: BackupSimulator, http: requests.Session) -> None:
    settings = f"{sim.base_url}/_simulator/settings"
    graph = f"{sim.base_url}/providers/Microsoft.ResourceGraph/resources?api-version=2024-04-01"
    query = {"subscriptions": [VAULT_ID.split("/")[2]],
             "query": "RecoveryServicesResources | where type =~ 'microsoft.recoveryservices/vaults/backupjobs'"}
    answer = http.put(settings, json={"resourceGraphLagSeconds": "never", "resourceGraphRefuseStatus": 403}).json()
    assert answer["resourceGraphLagSeconds"] == "never" and answer["resourceGraphRefuseStatus"] == 403
    assert sim.resource_graph.lag_seconds == float("inf") and sim.resource_graph.refuse_status == 403
    refused = http.post(graph, json=query, headers=AUTH)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "AuthorizationFailed"
    answer = http.put(settings, json={"resourceGraphLagSeconds": 12, "resourceGraphRefuseStatus": None}).json()
    assert answer["resourceGraphLagSeconds"] == 12 and answer["resourceGraphRefuseStatus"] is None
    assert http.post(graph, json=query, headers=AUTH).status_code == 200
