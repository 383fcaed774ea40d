"""Backup REST API simulator: a loopback HTTP server that behaves like Azure Resource Manager for the Recovery
Services backup-job endpoints (JobDetails_Get, BackupJobs_List, Backups_Trigger, operation status/results,
JobCancellations_Trigger), with scripted job lifecycles, ARM throttling and injectable faults.

    from devtools.simulator import BackupSimulator, JobScript, FaultConfig

    with BackupSimulator() as sim:               # token "sim-token"; base_url = http://127.0.0.1:PORT
        job_id = sim.add_job(vault_id, JobScript(final_status="Failed", duration=2))
        op = sim.trigger_backup(vault_id)        # op.azure_async_operation, op.location, op.job_id

ARM endpoints served (paths case-insensitive, ``api-version`` required, ``Authorization: Bearer <token>``):
    GET  .../vaults/{v}/backupJobs/{jobId}                      JobDetails_Get (with extendedInfo, errorDetails)
    GET  .../vaults/{v}/backupJobs[?$filter=...&$skiptoken=...] BackupJobs_List (summary items, nextLink paging)
    POST .../vaults/{v}/backupJobs/{jobId}/cancel               JobCancellations_Trigger
    GET  .../vaults/{v}/backupJobs/{jobId}/operationResults/{op}
    GET  .../vaults/{v}/backupOperations/{op}                   BackupOperationStatuses_Get
    GET  .../vaults/{v}/backupOperationResults/{op}
    POST .../protectedItems/{i}/backup                          Backups_Trigger (202 + Azure-AsyncOperation/Location)
    POST .../protectedItems/{i}/recoveryPoints/{rp}/restore     Restores_Trigger
    GET  .../protectedItems/{i}/operationsStatus/{op}           ProtectedItemOperationStatuses_Get
    GET  .../protectedItems/{i}/operationResults/{op}           202 while running, 204 done, 400 + error if failed

Control API (no auth), for a simulator in another process (``python -m jobs simulate``):
    POST /_simulator/vaults        {"vaultId"}                                                   -> 204
    POST /_simulator/jobs          {"vaultId", "jobType", "operation", "finalStatus", "durationSeconds",
                                    "notFoundSeconds", "cancellingSeconds", "entityFriendlyName", "jobId"}
                                   -> 201 {"jobId", "id"}
    POST /_simulator/trigger       same + "operationDelaySeconds", "operationOutcome", "containerName",
                                   "protectedItemName" -> 201 {"operationId", "azureAsyncOperation", "location",
                                   "retryAfter", "jobId", "vaultId"}
    PUT  /_simulator/faults        FaultConfig fields in camelCase (rate429, rate500, onlyOnCue, ...) -> 200 config
    GET  /_simulator/faults | /_simulator/stats | /_simulator/health
    POST /_simulator/reset-stats   -> 204
    POST /_simulator/deny | /_simulator/allow   {"vaultId"} -> 204
    POST /_simulator/cancel        {"vaultId", "jobId"} -> 200 {"cancelled": bool}
    PUT  /_simulator/settings      {"pageSize", "operationRetryAfterSeconds"} -> 200
    GET  /_simulator/job?vaultId=...&jobId=...  -> 200 JobResource (as job_resource())
"""

from __future__ import annotations

import time

from ._model import FaultConfig, JobScript, TriggeredOperation
from ._simulator import BackupSimulator

__all__ = [
    "DEMO_VAULT_ID",
    "BackupSimulator",
    "FaultConfig",
    "JobScript",
    "TriggeredOperation",
    "seed_demo_jobs",
    "serve",
]

DEMO_VAULT_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/demo-rg"
    "/providers/Microsoft.RecoveryServices/vaults/demo-vault"
)


def seed_demo_jobs(sim: BackupSimulator, vault_id: str = DEMO_VAULT_ID) -> list[str]:
    """A handful of jobs of different types and outcomes in ``vault_id``; returns their ids (oldest first)."""
    scripts = [
        JobScript("AzureIaaSVMJob", "Backup", "Completed", duration=20.0, entity_friendly_name="vm-web01"),
        JobScript("AzureIaaSVMJob", "Backup", "Failed", duration=15.0, entity_friendly_name="vm-db01"),
        JobScript("AzureWorkloadJob", "Backup", "CompletedWithWarnings", duration=25.0),
        JobScript("AzureStorageJob", "Backup", "Completed", duration=10.0, not_found_for=5.0),
        JobScript("MabJob", "Backup", "Cancelled", duration=30.0, cancelling_for=5.0),
        JobScript("AzureIaaSVMJob", "Restore", "Completed", duration=40.0, entity_friendly_name="vm-web01"),
    ]
    return [sim.add_job(vault_id, script) for script in scripts]


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = "sim-token",
    seed_demo_jobs: bool = False,
) -> None:
    """Run the simulator in the foreground (``python -m jobs simulate``) until Ctrl-C.

    Prints one line: ``Backup REST API simulator listening on http://127.0.0.1:PORT``.
    """
    sim = BackupSimulator(token=token)
    sim.start(host, port)
    try:
        if seed_demo_jobs:
            _seed(sim)
        print(f"Backup REST API simulator listening on {sim.base_url}", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()


_seed = seed_demo_jobs
