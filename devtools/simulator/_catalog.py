"""Per-jobType facts: backupManagementType, task names, extra properties and realistic error details.

Schema facts (field names and types per jobType) come from the Recovery Services ``bms.json`` spec
(see shared/research/azure-backup-api.md, section 2). The *values* below (error codes, titles, messages,
recommendations, task names for non-IaaS types) are plausible renderings of what Azure Backup reports, modelled on the
error codes in the Azure Backup troubleshooting docs; they are NOT verified against live responses. Only the IaaS VM
task names ("Take Snapshot", "Transfer data to vault") and property-bag keys ("VM Name", "Backup Size") appear in the
fixtures.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SPEC_EXCERPT = Path(__file__).with_name("payloads") / "bms-job-types.json"


def spec_job_types(path: Path = SPEC_EXCERPT) -> tuple[str, ...]:
    """The ``jobType`` discriminator values of the Recovery Services spec (``bms.json``): every definition that
    extends ``Job``, in the spec's order (payloads/SOURCES.md says which version)."""
    definitions = json.loads(path.read_text(encoding="utf-8"))["definitions"]
    if definitions["Job"].get("discriminator") != "jobType":
        raise ValueError(f"{path.name}: Job is not told apart by jobType")
    return tuple(
        definition["x-ms-discriminator-value"]
        for definition in definitions.values()
        if {"$ref": "#/definitions/Job"} in definition.get("allOf", [])
    )


# What Azure says a job may be, not what the tracker knows: a job type the tracker lacks shows up in its tests.
JOB_TYPES = spec_job_types()

IAAS_TYPES = frozenset({"AzureIaaSVMJob", "AzureIaaSVMJobV2"})
TERMINAL_STATUSES = ("Completed", "CompletedWithWarnings", "Failed", "Cancelled")
JOB_STATUSES = ("Invalid", "InProgress", "Completed", "Failed", "CompletedWithWarnings", "Cancelled", "Cancelling")
JOB_OPERATIONS = (
    "Invalid",
    "Register",
    "UnRegister",
    "ConfigureBackup",
    "Backup",
    "Restore",
    "DisableBackup",
    "DeleteBackupData",
    "CrossRegionRestore",
    "Undelete",
    "UpdateCustomerManagedKey",
)
BACKUP_MANAGEMENT_TYPES = (
    "Invalid",
    "AzureIaasVM",
    "MAB",
    "DPM",
    "AzureBackupServer",
    "AzureSql",
    "AzureStorage",
    "AzureWorkload",
    "DefaultBackup",
)
OPERATION_OUTCOMES = ("Succeeded", "Failed", "Canceled")

MANAGEMENT_TYPE = {
    "AzureIaaSVMJob": "AzureIaasVM",
    "AzureIaaSVMJobV2": "AzureIaasVM",
    "AzureStorageJob": "AzureStorage",
    "AzureWorkloadJob": "AzureWorkload",
    "DpmJob": "DPM",
    "MabJob": "MAB",
    # Not verified: vault-level jobs (e.g. UpdateCustomerManagedKey) are not tied to a workload.
    "VaultJob": "DefaultBackup",
}

# Task shape per jobType (bms.json): "iaas" {taskId, duration, status} as GetJobDetails.json;
# "simple" {taskId, status}; "timed" {taskId, startTime, endTime, duration, status}; "none": no tasksList.
TASK_SHAPE = {
    "AzureIaaSVMJob": "iaas",
    "AzureIaaSVMJobV2": "iaas",
    "AzureStorageJob": "simple",
    "AzureWorkloadJob": "simple",
    "DpmJob": "timed",
    "MabJob": "timed",
    "VaultJob": "none",
}

_TASKS: dict[str, dict[str, list[str]]] = {
    "iaas": {
        "Backup": ["Take Snapshot", "Transfer data to vault"],
        "Restore": ["Transfer data"],
        "CrossRegionRestore": ["Transfer data"],
    },
    "AzureStorageJob": {"Backup": ["Take Snapshot"], "Restore": ["Transfer data"]},
    "AzureWorkloadJob": {"Backup": ["Transfer data to vault"], "Restore": ["Transfer data"]},
    "timed": {"Backup": ["Backup"], "Restore": ["Recover"]},
}


def task_names(job_type: str, operation: str) -> list[str]:
    shape = TASK_SHAPE[job_type]
    if shape == "none":
        return []
    table = _TASKS.get(job_type) or _TASKS.get(shape) or {}
    return list(table.get(operation, []))


def default_friendly_name(job_type: str, rng: random.Random, vault_name: str) -> str:
    n = rng.randint(1, 99)
    if job_type in IAAS_TYPES:
        return f"vm-app{n:02d}"
    if job_type == "AzureStorageJob":
        return f"fileshare{n:02d}"
    if job_type == "AzureWorkloadJob":
        return f"sqldb{n:02d}"
    if job_type == "DpmJob":
        return f"dpm-datasource{n:02d}"
    if job_type == "MabJob":
        return f"FILESERVER{n:02d}"
    return vault_name


@dataclass(frozen=True)
class Issue:
    """One entry of ``errorDetails`` (stored in the superset shape; rendered per jobType)."""

    code: int
    title: str
    message: str
    recommendations: tuple[str, ...]
    additional_details: str = ""
    task_index: int = 0  # the task during which a failure happens


def _i(code: int, title: str, message: str, *recs: str, task: int = 0, extra: str = "") -> Issue:
    return Issue(code, title, message, tuple(recs), extra, task)


# Plausible failure/warning catalog per jobType (not verified, see module docstring).
FAILURES: dict[str, list[Issue]] = {
    "iaas": [
        _i(
            400244,
            "UserErrorGuestAgentStatusUnavailable",
            "VM Agent unable to communicate with Azure Backup",
            "Ensure the VM agent is installed and running on the virtual machine and that it is the latest version.",
            "Ensure the virtual machine has outbound connectivity to Azure Backup and Azure Storage endpoints.",
        ),
        _i(
            400252,
            "ExtensionSnapshotFailedNoNetwork",
            "Snapshot operation failed due to no network connectivity on the virtual machine",
            "Ensure that the VM has network connectivity and that it can reach Azure Storage.",
            "Retry the backup operation after resolving the connectivity issue.",
        ),
        _i(
            400193,
            "UserErrorVmNotFoundV2",
            "The virtual machine doesn't exist anymore",
            "Stop protection of the virtual machine with Retain Data or Delete Data if it was deleted intentionally.",
            task=0,
        ),
    ],
    "AzureStorageJob": [
        _i(
            300013,
            "UserErrorFileShareEndpointUnreachable",
            "Storage networking rules are not allowing the Azure Backup service to access the file share",
            "Allow trusted Microsoft services to access the storage account in its firewall settings.",
        ),
        _i(
            300037,
            "UserErrorStorageAccountNotFound",
            "The storage account hosting the file share could not be found",
            "Ensure the storage account exists and has not been moved to another resource group or subscription.",
        ),
    ],
    "AzureWorkloadJob": [
        _i(
            590001,
            "UserErrorSQLNoSysadminMembership",
            "Azure Backup doesn't have sysadmin privileges on the SQL Server instance",
            "Add the NT SERVICE\\AzureWLBackupPluginSvc account to the sysadmin role of the SQL Server instance.",
            extra="Error reported by SQL Server: The server principal is not able to access the database under the "
            "current security context.",
        ),
        _i(
            590027,
            "UserErrorParentFullBackupMissing",
            "A full backup of the database is missing, so a log or differential backup can't be taken",
            "Trigger an ad-hoc full backup, then retry the operation.",
            extra="Log chain break detected for the database.",
        ),
    ],
    "DpmJob": [
        _i(
            0,
            "",
            "The replica of the data source is inconsistent. (ID: 3106)",
            "Run a synchronization job with consistency check.",
        ),
    ],
    "MabJob": [
        _i(
            0,
            "",
            "The Microsoft Azure Recovery Services Agent was unable to connect to the Azure Backup service. "
            "(ID: 100050)",
            "Check the network settings and make sure the agent can reach the Azure Backup endpoints, then retry.",
        ),
    ],
    "VaultJob": [
        _i(
            100184,
            "UserErrorKeyVaultPermissionsNotConfigured",
            "The vault's managed identity doesn't have the required permissions on the key vault",
            "Grant the vault's managed identity Get, List, Wrap Key and Unwrap Key permissions on the key vault.",
        ),
    ],
}

WARNINGS: dict[str, list[Issue]] = {
    "iaas": [
        _i(
            400262,
            "ExtensionVssWriterInBadStateWarning",
            "Application-consistent snapshot could not be taken because a VSS writer is in a bad state; a "
            "file-system consistent snapshot was taken instead",
            "Restart the VSS writers that are in a bad state (vssadmin list writers) and retry the backup.",
        ),
    ],
    "AzureStorageJob": [
        _i(
            300210,
            "UserErrorSnapshotDeletionPending",
            "The backup completed, but older snapshots could not be cleaned up",
            "No action is needed; cleanup is retried in the next backup.",
        ),
    ],
    "AzureWorkloadJob": [
        _i(
            590110,
            "UserErrorSQLDatabaseLogTruncationSkipped",
            "Backup completed, but log truncation was skipped for the database",
            "Check the SQL Server error log for the reason, and ensure no other tool is taking log backups.",
            extra="Log truncation is handled by SQL Server after the next log backup.",
        ),
    ],
    "DpmJob": [
        _i(0, "", "Some data could not be protected because files were in use. (ID: 30189)", "Retry the job."),
    ],
    "MabJob": [
        _i(
            0,
            "",
            "Some files could not be backed up because they were deleted or locked during the backup. (ID: 30195)",
            "Review the list of failed files in the job's error file and retry the backup.",
        ),
    ],
    "VaultJob": [
        _i(
            100190,
            "UserErrorCmkUpdatePartiallyCompleted",
            "The encryption key was updated, but some protected items still use the previous key",
            "Retry the operation to update the remaining items.",
        ),
    ],
}


def _catalog_key(job_type: str) -> str:
    return "iaas" if job_type in IAAS_TYPES else job_type


def pick_issue(job_type: str, final_status: str, rng: random.Random) -> Issue | None:
    if final_status == "Failed":
        return rng.choice(FAILURES[_catalog_key(job_type)])
    if final_status == "CompletedWithWarnings":
        return rng.choice(WARNINGS[_catalog_key(job_type)])
    return None


def dynamic_message(issue: Issue, entity: str) -> str:
    """``extendedInfo.dynamicErrorMessage``: the non-localised failure text (plausible, not verified)."""
    name = issue.title or "Error"
    return f"{name}: {issue.message} ({entity})"


def render_issue(job_type: str, issue: Issue, entity: str = "") -> dict[str, Any]:
    """One ``errorDetails`` item in the shape of the jobType (AzureIaaSVMErrorInfo, DpmErrorInfo, ...).

    ``errorCode`` is the int32; ``errorTitle`` is "typically, the entity that the error pertains to" (bms.json
    AzureIaaSVMErrorInfo / AzureWorkloadErrorInfo): the job's entity name, not the code's name."""
    recs = list(issue.recommendations)
    if job_type in IAAS_TYPES:
        return {
            "errorCode": issue.code,
            "errorTitle": entity or issue.title,
            "errorString": issue.message,
            "recommendations": recs,
        }
    if job_type == "AzureWorkloadJob":
        return {
            "errorCode": issue.code,
            "errorString": issue.message,
            "errorTitle": entity or issue.title,
            "recommendations": recs,
            "additionalDetails": issue.additional_details,
        }
    if job_type in ("DpmJob", "MabJob"):
        return {"errorString": issue.message, "recommendations": recs}
    # AzureStorageErrorInfo and VaultJobErrorInfo
    return {"errorCode": issue.code, "errorString": issue.message, "recommendations": recs}


@dataclass
class JobTraits:
    """Per-job constants drawn once from the job's own RNG (so payloads are stable between polls)."""

    friendly_name: str
    activity_id: str
    tick: int
    backup_size_mb: int
    extras: dict[str, Any] = field(default_factory=dict)


def extra_properties(job_type: str, rng: random.Random, friendly_name: str) -> dict[str, Any]:
    """Type-specific summary properties (present in list items and GET)."""
    n = rng.randint(1, 9)
    if job_type in IAAS_TYPES:
        return {"virtualMachineVersion": "Compute"}
    if job_type == "AzureStorageJob":
        return {"storageAccountName": f"stbackupdata{n:02d}", "storageAccountVersion": "MicrosoftStorage"}
    if job_type == "AzureWorkloadJob":
        return {"workloadType": "SQLDataBase"}
    if job_type == "DpmJob":
        return {
            "dpmServerName": f"DPMSERVER{n:02d}.contoso.com",
            "containerName": f"DPMSERVER{n:02d}.contoso.com",
            "containerType": "DPMContainer",
            "workloadType": "SQLDB",
        }
    if job_type == "MabJob":
        return {"mabServerName": friendly_name, "mabServerType": "Windows", "workloadType": "FileFolder"}
    return {}


def property_bag(job_type: str, operation: str, traits: JobTraits, terminal_ok: bool) -> dict[str, str]:
    """``extendedInfo.propertyBag``: sizes appear once the data transfer finished."""
    name = traits.friendly_name
    size = f"{traits.backup_size_mb} MB"
    if job_type in IAAS_TYPES:
        bag = {"VM Name": name}
        if operation == "Backup" and terminal_ok:
            bag["Backup Size"] = size
        if operation in ("Restore", "CrossRegionRestore"):
            bag["Job Type"] = "Recover disks"
            bag["Target Storage Account Name"] = "strestorestaging01"
        return bag
    if job_type == "AzureStorageJob":
        bag = {"File Share Name": name, "Storage Account Name": traits.extras.get("storageAccountName", "")}
        if terminal_ok and operation == "Backup":
            bag["Data Transferred (in MB)"] = str(traits.backup_size_mb)
        return bag
    if job_type == "AzureWorkloadJob":
        bag = {"Database Name": name, "Backup Type": "Full" if operation == "Backup" else operation}
        if terminal_ok:
            bag["Data Transferred (in MB)"] = str(traits.backup_size_mb)
        return bag
    if job_type in ("DpmJob", "MabJob"):
        bag = {"Data Source": name}
        if terminal_ok:
            bag["Data Transferred"] = size
        return bag
    return {"Operation": operation}
