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
  Resource Manager's resource lists (a watch's vaults; Microsoft.Resources api-versions, ``_resources.py``):
    GET  /subscriptions/{s}[/resourceGroups/{rg}]/resources?$filter=resourceType eq '...'   Resources_List
  the passive stamp (cross-region restore, ``_crr.py``; its own api-versions, 2018-12-20 ... 2026-07-15):
    POST /subscriptions/{s}/providers/Microsoft.RecoveryServices/locations/{region}/backupCrossRegionRestore
    GET  .../locations/{region}/backupCrrOperationsStatus/{base64 id} | backupCrrOperationResults/{base64 id}
    POST .../locations/{region}/backupCrrJob   {"resourceId", "jobName"}          BackupCrrJobDetails_Get
    POST .../locations/{region}/backupCrrJobs[?$filter=...] {"resourceId"}        BackupCrrJobs_List (nextLink POSTed)
    POST /providers/Microsoft.ResourceGraph/resources           Resource Graph: the tracker's backup-job query only,
                                                                ``resource_graph.lag_seconds`` behind the jobs
                                                                (``math.inf``: never an end), or every query
                                                                refused with ``resource_graph.refuse_status``,
                                                                $skipToken paging, x-ms-user-quota-* headers

Control API (no auth), for a simulator in another process (``python -m jobs simulate``):
    POST /_simulator/vaults        {"vaultId"}                                                   -> 204
    POST /_simulator/jobs          {"vaultId", "jobType", "operation", "finalStatus", "durationSeconds",
                                    "notFoundSeconds", "cancellingSeconds", "entityFriendlyName", "jobId",
                                    "propertyBag"}
                                   -> 201 {"jobId", "id"}
    POST /_simulator/crr-jobs      {"vaultId", "region"} + the job fields above -> 201 {"jobId", "region"}
    POST /_simulator/crr-trigger   {"vaultId", "region", "operationDelaySeconds", "operationOutcome", ...}
                                   -> 201 as /trigger, with a base64 operationId
    POST /_simulator/trigger       same + "operationDelaySeconds", "operationOutcome", "containerName",
                                   "protectedItemName" -> 201 {"operationId", "azureAsyncOperation", "location",
                                   "retryAfter", "jobId", "vaultId"}
    PUT  /_simulator/faults        FaultConfig fields in camelCase (rate429, rate500, onlyOnCue, ...) -> 200 config
    GET  /_simulator/faults | /_simulator/stats | /_simulator/health
    POST /_simulator/reset-stats   -> 204
    POST /_simulator/deny | /_simulator/allow   {"vaultId"} -> 204
    POST /_simulator/cancel        {"vaultId", "jobId"} -> 200 {"cancelled": bool}
    PUT  /_simulator/settings      {"pageSize", "operationRetryAfterSeconds", "resourceGraphLagSeconds" (or "never"),
                                    "resourceGraphRefuseStatus" (or null)} -> 200
    GET  /_simulator/job?vaultId=...&jobId=...  -> 200 JobResource (as job_resource())
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import TextIO

from ._model import FaultConfig, JobScript, TriggeredOperation
from ._simulator import BackupSimulator

__all__ = [
    "DEMO_SCRIPTS",
    "DEMO_VAULT_ID",
    "BackupSimulator",
    "ControlError",
    "FaultConfig",
    "JobScript",
    "TriggeredOperation",
    "add_job_remote",
    "seed_demo_jobs",
    "serve",
]

DEMO_VAULT_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/demo-rg"
    "/providers/Microsoft.RecoveryServices/vaults/demo-vault"
)


DEMO_SCRIPTS = [
    JobScript("AzureIaaSVMJob", "Backup", "Completed", duration=20.0, entity_friendly_name="vm-web01"),
    JobScript("AzureIaaSVMJob", "Backup", "Failed", duration=15.0, entity_friendly_name="vm-db01"),
    JobScript("AzureWorkloadJob", "Backup", "CompletedWithWarnings", duration=25.0),
    JobScript("AzureStorageJob", "Backup", "Completed", duration=10.0, not_found_for=5.0),
    JobScript("MabJob", "Backup", "Cancelled", duration=30.0, cancelling_for=5.0),
    JobScript("AzureIaaSVMJob", "Restore", "Completed", duration=40.0, entity_friendly_name="vm-web01"),
]


class ControlError(RuntimeError):
    """The simulator's control API could not be reached or refused the request (one line)."""


def seed_demo_jobs(sim: BackupSimulator, vault_id: str = DEMO_VAULT_ID) -> list[str]:
    """A handful of jobs of different types and outcomes in ``vault_id``; returns their ids (oldest first)."""
    return [sim.add_job(vault_id, script) for script in DEMO_SCRIPTS]


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = "sim-token",
    seed_demo_jobs: bool = False,
    out: TextIO | None = None,
) -> None:
    """Run the simulator in the foreground (``python -m jobs simulate``) until Ctrl-C.

    Prints where it listens, the demo vault (and each seeded job with its outcome), the settings to paste, and
    ready commands: ``python -m jobs track ...`` and ``python -m jobs simulate add-job ...``.
    """
    out = out or sys.stdout
    stopping = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        # Its own handlers, as `python -m jobs run` and `azurite` have: Ctrl-C and SIGTERM stop it even when it was
        # started with SIGINT ignored (a shell's background job passes that on to its children).
        previous = {sig: signal.signal(sig, lambda *_: stopping.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    sim = BackupSimulator(token=token)
    sim.start(host, port)
    try:
        sim.add_vault(DEMO_VAULT_ID)
        ids = _seed(sim) if seed_demo_jobs else []
        lines = [f"Backup REST API simulator listening on {sim.base_url}",
                 f"vault: {DEMO_VAULT_ID}"]
        for job_id, script in zip(ids, DEMO_SCRIPTS[: len(ids)], strict=True):
            lines.append(f"  job {DEMO_VAULT_ID}/backupJobs/{job_id}  {script.job_type} {script.operation}: "
                         f"ends {script.final_status} after {script.duration:g} s")
        lines += ["settings for the tracker (paste into the shell that runs it):",
                  f"  export ARM_ENDPOINT={sim.base_url} JOBS_ARM_TOKEN={token or 'none'}"]
        if ids:
            lines.append(f"track one: python -m jobs track {DEMO_VAULT_ID}/backupJobs/{ids[0]}")
        port_option = "" if sim.base_url.endswith(":8765") else f" --url {sim.base_url}"
        lines.append(f"make a job: python -m jobs simulate add-job{port_option} --outcome Failed --duration 30")
        lines.append("Ctrl-C to stop.")
        print("\n".join(lines), file=out, flush=True)
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
        for sig, handler in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, handler)


def add_job_remote(
    url: str,
    *,
    vault_id: str | None = None,
    final_status: str = "Completed",
    duration: float = 30.0,
    not_found_for: float = 0.0,
    job_type: str = "AzureIaaSVMJob",
    operation: str = "Backup",
    timeout: float = 10.0,
) -> dict[str, str]:
    """``POST /_simulator/jobs`` on a simulator in another process; returns ``{"jobId", "id"}``."""
    import requests

    body = {"vaultId": vault_id or DEMO_VAULT_ID, "jobType": job_type, "operation": operation,
            "finalStatus": final_status, "durationSeconds": duration, "notFoundSeconds": not_found_for}
    try:
        answer = requests.post(f"{url.rstrip('/')}/_simulator/jobs", json=body, timeout=timeout)
    except requests.RequestException:
        raise ControlError(f"cannot reach the simulator at {url}: is 'python -m jobs simulate' running?") from None
    if answer.status_code != 201:
        raise ControlError(f"the simulator at {url} refused the job: {answer.status_code} {answer.text[:200]}")
    return dict(answer.json())


_seed = seed_demo_jobs
