"""The Backup vault provider's mapping: statuses compared without case, unknown ones running with one WARNING each,
operations that name their job by name or full ARM id, and the Resource Graph query the simulator answers."""

from __future__ import annotations

import logging
import uuid

import pytest

from jobs.providers.data_protection import DataProtection, ended_jobs_query
from tests.conftest import fixture_json

EXAMPLE = fixture_json("GetJob.json")["responses"]["200"]["body"]


def job(status: object) -> dict:
    return {**EXAMPLE, "properties": {**EXAMPLE["properties"], "status": status}}


@pytest.mark.parametrize(
    ("status", "terminal", "event_type"),
    [("Started", False, None), ("InProgress", False, None), ("Cancelling", False, None), ("Paused", False, None),
     ("Succeeded", True, "BackupJob.Completed"), ("completed", True, "BackupJob.Completed"),
     ("CompletedWithWarnings", True, "BackupJob.CompletedWithWarnings"), ("FAILED", True, "BackupJob.Failed"),
     ("Cancelled", True, "BackupJob.Cancelled"), ("Canceled", True, "BackupJob.Cancelled")],
)
def test_job_statuses_of_both_vocabularies(status, terminal, event_type):
    state = DataProtection.job_state(job(status))
    assert (state.status, state.terminal) == (status, terminal)  # the status as Azure wrote it
    if event_type:
        assert DataProtection.event_type(status) == event_type
    assert DataProtection.event_type("TimedOut") == "BackupJob.TimedOut"


def test_an_unknown_status_is_running_with_one_warning_per_status(caplog):
    unknown = [f"Rehydrating{uuid.uuid4().hex[:6]}", f"Queued{uuid.uuid4().hex[:6]}"]  # new to this process
    with caplog.at_level(logging.WARNING, logger="jobs.providers.data_protection"):
        for status in unknown * 3:
            assert DataProtection.job_state(job(status)).terminal is False
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all(repr(status) in text for status, text in zip(unknown, warnings, strict=True))


def test_operations_name_their_job_by_name_or_full_arm_id_and_bare_results_have_ended():
    vault_status = fixture_json("GetOperationStatusVaultContext.json")["responses"]["200"]["body"]
    named = DataProtection.operation_state(
        {**vault_status, "properties": {"objectType": "OperationJobExtendedInfo", "jobId": EXAMPLE["name"]}})
    assert (named.outcome, named.job_ids, named.known) == ("succeeded", (EXAMPLE["name"],), True)
    bare = DataProtection.operation_state({"objectType": "OperationJobExtendedInfo", "jobId": EXAMPLE["id"]})
    assert (bare.outcome, bare.job_ids) == ("succeeded", (EXAMPLE["name"],))
    running = DataProtection.operation_state({**vault_status, "status": "Inprogress"})
    assert (running.outcome, running.job_ids, running.known) == ("running", (), True)
    assert DataProtection.operation_state({**vault_status, "status": "Canceled"}).outcome == "failed"
    assert DataProtection.operation_state({**vault_status, "status": "Whatever"}).known is False


def test_the_resource_graph_query_and_its_rows():
    query = ended_jobs_query([EXAMPLE["name"].upper()])
    assert "type =~ 'microsoft.dataprotection/backupvaults/backupjobs'" in query
    assert f"'{EXAMPLE['name']}'" in query and "'Succeeded'" in query and "'Completed'" in query
    vault, job_id = DataProtection.job_of_row({"id": EXAMPLE["id"].lower()})
    assert job_id == EXAMPLE["name"] and vault.endswith("/backupvaults/bugbashvaultforccyv11")


def test_the_detectors_lag_is_measured_and_assessed_per_kind_of_vault():
    from datetime import UTC, datetime, timedelta

    from devtools.memory_storage import MemoryTable
    from jobs.flows.detector_health import MIN_SAMPLES, DetectorHealth, DetectorHealthByKind
    from jobs.providers.graph import GraphDetector
    from jobs.storage.detector_log import TableDetectorLog
    from jobs.telemetry import Observer

    now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    table = MemoryTable()
    graph = GraphDetector(None)  # type: ignore[arg-type]  # kind_of and kinds ask no Resource Graph
    assert graph.kinds == ("", "dataprotection")
    backup_vault = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg/providers/" \
                   "Microsoft.DataProtection/backupVaults/bv"
    recovery_services = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg/providers/" \
                        "Microsoft.RecoveryServices/vaults/rv"
    assert (graph.kind_of(backup_vault), graph.kind_of(recovery_services)) == ("dataprotection", "")
    health = DetectorHealthByKind({kind: DetectorHealth(TableDetectorLog(table, kind), lambda: now, graph.covers,
                                                        Observer(), 30) for kind in graph.kinds}, graph.kind_of)
    for number in range(MIN_SAMPLES):  # Backup vault jobs, each told first by the detector, 5 s after their end
        health.record_end(f"{number:08d}-0000-4000-8000-000000000000-bv", backup_vault, "detector",
                          now - timedelta(seconds=5), now)
    health.settle(health.pending(), set())
    assert health.assess_round(None).state == "unproven"  # Recovery Services: nothing measured
    assert health.assessments["dataprotection"].state == "fresh"
    assert health.fresh_for(backup_vault) and not health.fresh_for(recovery_services)
    assert TableDetectorLog(table).list_samples(100) == []  # the Recovery Services record is its own
    assert len(TableDetectorLog(table, "dataprotection").list_samples(100)) == MIN_SAMPLES
    assert health.describe().startswith("unproven") and " | dataprotection: fresh" in health.describe()
