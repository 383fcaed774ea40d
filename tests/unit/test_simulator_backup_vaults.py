"""The simulator's Backup vaults, as the Data Protection spec and its examples show them: strict api-versions, no
$filter, nextLink paging, both status vocabularies, operations of two scopes with base64 ids naming their job by
name or full ARM id."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from devtools.simulator import BackupSimulator, JobScript
from tests.conftest import fixture_json, wait_until

BV = ("/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/backup-rg/providers/"
      "Microsoft.DataProtection/backupVaults/bv-prod")
VERSION = "2025-09-01"


def get(sim: BackupSimulator, path: str) -> tuple[int, Any]:
    url = path if path.startswith("http") else sim.base_url + path
    request = urllib.request.Request(url, headers={"Authorization": "Bearer sim-token"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
            return response.status, json.loads(body) if body else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture
def sim():
    with BackupSimulator(token="sim-token") as simulator:
        simulator.add_vault(BV)
        yield simulator


def test_jobs_as_jobs_get_shows_them_in_both_vocabularies_and_api_versions_are_strict(sim):
    spec = sim.add_job(BV, JobScript(job_type="AzureStorageJob", duration=0.2, data_source="blob"))
    described = sim.add_job(BV, JobScript(job_type="AzureStorageJob", duration=0.2, status_words="described"))
    example = fixture_json("GetJob.json")["responses"]["200"]["body"]
    status, job = get(sim, f"{BV}/backupJobs/{spec}?api-version={VERSION}")
    assert status == 200 and job["properties"]["status"] == "Started"
    assert job["type"] == example["type"] and "/Backupvaults/" in job["id"]
    assert set(example["properties"]) <= set(job["properties"]) | {"extendedInfo"}
    assert get(sim, f"{BV}/backupJobs/{described}?api-version={VERSION}")[1]["properties"]["status"] == "InProgress"
    assert wait_until(lambda: get(sim, f"{BV}/backupJobs/{spec}?api-version={VERSION}")[1]["properties"]["status"]
                      == "Succeeded", 5)
    assert get(sim, f"{BV}/backupJobs/{described}?api-version={VERSION}")[1]["properties"]["status"] == "Completed"
    status, error = get(sim, f"{BV}/backupJobs/{spec}?api-version=2025-08-01")  # a Recovery Services version
    assert status == 400 and error["error"]["code"] == "NoRegisteredProviderFound"


def test_the_list_takes_no_filter_and_pages_by_next_link(sim):
    sim.page_size = 2
    jobs = {sim.add_job(BV, JobScript(job_type="AzureStorageJob", duration=60)) for _ in range(5)}
    status, error = get(sim, f"{BV}/backupJobs?api-version={VERSION}&$filter=status%20eq%20'InProgress'")
    assert status == 400 and "no $filter" in error["error"]["message"]
    seen, url, pages = [], f"{BV}/backupJobs?api-version={VERSION}", 0
    while url:
        status, page = get(sim, url)
        assert status == 200
        seen += [item["name"] for item in page["value"]]
        assert all("extendedInfo" not in item["properties"] for item in page["value"])
        url, pages = page.get("nextLink"), pages + 1
    assert sorted(seen) == sorted(jobs) and pages == 3


@pytest.mark.parametrize(("scope", "form"), [("vault", "name"), ("location", "id")])
def test_operations_of_both_scopes_name_their_job(sim, scope, form):
    op = sim.trigger_backup(BV, JobScript(job_type="AzureStorageJob"), operation_delay=0.2,
                            backup_vault_scope=scope, job_id_form=form)
    base64.b64decode(op.operation_id, validate=True)
    assert ("/locations/" in op.azure_async_operation) is (scope == "location")
    status, running = get(sim, op.azure_async_operation)
    assert status == 200 and running["status"] == "Inprogress" and "properties" not in running
    assert get(sim, op.location)[0] == 202
    assert wait_until(lambda: get(sim, op.azure_async_operation)[1]["status"] == "Succeeded", 5)
    done = get(sim, op.azure_async_operation)[1]
    job_id = done["properties"]["jobId"]
    assert done["status"] == "Succeeded" and done["properties"]["objectType"] == "OperationJobExtendedInfo"
    assert job_id == (op.job_id if form == "name" else sim.job_resource(BV, op.job_id)["id"])
    assert get(sim, op.location)[1] == done["properties"]
