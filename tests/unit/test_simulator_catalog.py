"""The simulator's catalogue of job types comes from Azure's spec (an excerpt of bms.json in payloads/), not from the
tracker's constants: so the tracker is checked against what Azure defines, not against itself."""

from __future__ import annotations

import ast
import json
import random
from pathlib import Path

from devtools.simulator import BackupSimulator, JobScript
from devtools.simulator import _catalog as cat
from jobs.providers.recovery_services import JOB_TYPES as TRACKER_JOB_TYPES

SIMULATOR = Path(__file__).resolve().parents[2] / "devtools" / "simulator"
VAULT = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
         "Microsoft.RecoveryServices/vaults/v")


def test_the_catalogue_is_the_specs_job_discriminator() -> None:
    assert cat.JOB_TYPES == ("AzureIaaSVMJob", "AzureIaaSVMJobV2", "AzureStorageJob", "AzureWorkloadJob", "DpmJob",
                             "MabJob", "VaultJob")
    for job_type in cat.JOB_TYPES:  # the simulator can render each: its management type, tasks and issues
        assert job_type in cat.MANAGEMENT_TYPE and job_type in cat.TASK_SHAPE
        assert cat.pick_issue(job_type, "Failed", random.Random(1)) is not None


def test_the_catalogue_reads_the_spec_excerpt(tmp_path: Path) -> None:
    spec = json.loads(cat.SPEC_EXCERPT.read_text(encoding="utf-8"))
    spec["definitions"]["NewJob"] = {"type": "object", "allOf": [{"$ref": "#/definitions/Job"}],
                                     "x-ms-discriminator-value": "NewJob"}
    spec["definitions"]["NotAJob"] = {"type": "object", "allOf": [{"$ref": "#/definitions/ProtectedItem"}],
                                      "x-ms-discriminator-value": "NotAJob"}
    changed = tmp_path / "bms-job-types.json"
    changed.write_text(json.dumps(spec), encoding="utf-8")
    assert cat.spec_job_types(changed) == (*cat.JOB_TYPES, "NewJob")


def test_the_tracker_knows_every_job_type_azure_defines() -> None:
    assert set(TRACKER_JOB_TYPES) == set(cat.JOB_TYPES)


def test_a_job_of_a_type_azure_does_not_define_is_refused() -> None:
    sim = BackupSimulator()
    assert sim.add_job(VAULT, JobScript(job_type="VaultJob"))
    try:
        sim.add_job(VAULT, JobScript(job_type="AzureSqlJob"))
    except ValueError as exc:
        assert "job_type must be one of AzureIaaSVMJob" in str(exc)
    else:
        raise AssertionError("a job type outside the spec was accepted")


def test_the_simulator_takes_nothing_from_the_trackers_providers() -> None:
    imported = []
    for path in sorted(SIMULATOR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jobs."):
                imported.append((path.name, node.module))
            elif isinstance(node, ast.Import):
                imported += [(path.name, alias.name) for alias in node.names if alias.name.startswith("jobs")]
    # Only the transport seam it is served through (in process): never the tracker's constants.
    assert {module for _, module in imported} <= {"jobs.arm.transport"}, imported
