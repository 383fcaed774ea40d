"""Recovery Services vaults (``Microsoft.RecoveryServices``): the provider behind every job the tracker follows today.

- References: vault, job and operation ids as Azure and its clients write them, validated before they reach a URL:
  subscription, job and operation ids are GUIDs, resource group and vault names follow Azure's naming rules, and
  paths are rebuilt from validated parts, never copied.
- Reads: ``JobDetails_Get`` (with extendedInfo), ``BackupJobs_List`` with ``$filter`` (summaries), and operation
  status (``ProtectedItemOperationStatuses_Get``, ``BackupOperationStatuses_Get``), at ``JOBS_ARM_API_VERSION``.
- Mapping: ``JobStatus`` to running or terminal; ``OperationStatusValues`` (``Canceled`` with one l); the event's
  ``type``, errors (every job type's ``errorDetails``), tasks and property bag.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlsplit

from jobs.arm import ArmClient
from jobs.domain.references import InvalidReference, JobRef, OperationRef, VaultRef, check_guid, check_name, show
from jobs.domain.results import JobState, OperationOutcome, OperationState

__all__ = [
    "DEFAULT_API_VERSION",
    "JOB_TYPES",
    "NAMESPACE",
    "RUNNING_STATUSES",
    "TERMINAL_STATUSES",
    "JobStatus",
    "OperationStatus",
    "RecoveryServices",
    "errors_from_job",
    "normalise_job_status",
    "normalise_operation_status",
]

NAMESPACE = "Microsoft.RecoveryServices"
# A GA api-version of the Recovery Services backup API, served in every public region (see the README).
DEFAULT_API_VERSION = "2025-08-01"


# -- statuses ----------------------------------------------------------------------------------------------------
class JobStatus(StrEnum):
    """``JobStatus`` of the Recovery Services API (a plain string on the wire)."""

    IN_PROGRESS = "InProgress"
    CANCELLING = "Cancelling"
    COMPLETED = "Completed"
    COMPLETED_WITH_WARNINGS = "CompletedWithWarnings"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    INVALID = "Invalid"


class OperationStatus(StrEnum):
    """``OperationStatusValues``: note ``Canceled`` with one l, unlike the job status."""

    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELED = "Canceled"
    INVALID = "Invalid"


TERMINAL_STATUSES = frozenset(
    {JobStatus.COMPLETED, JobStatus.COMPLETED_WITH_WARNINGS, JobStatus.FAILED, JobStatus.CANCELLED}
)
RUNNING_STATUSES = frozenset({JobStatus.IN_PROGRESS, JobStatus.CANCELLING})

# The ``jobType`` discriminator values of the Recovery Services Job model.
JOB_TYPES = (
    "AzureIaaSVMJob",
    "AzureIaaSVMJobV2",
    "AzureStorageJob",
    "AzureWorkloadJob",
    "DpmJob",
    "MabJob",
    "VaultJob",
)

_JOB_BY_LOWER = {status.value.lower(): status for status in JobStatus}
_OPERATION_BY_LOWER = {status.value.lower(): status for status in OperationStatus}
_OPERATION_BY_LOWER["cancelled"] = OperationStatus.CANCELED


def normalise_job_status(value: object) -> JobStatus | None:
    """Azure's job status in its canonical spelling, or ``None`` for a value the API does not define."""
    return _JOB_BY_LOWER.get(value.lower()) if isinstance(value, str) else None


def normalise_operation_status(value: object) -> OperationStatus | None:
    return _OPERATION_BY_LOWER.get(value.lower()) if isinstance(value, str) else None


# -- references --------------------------------------------------------------------------------------------------
# Resource group: 1-90 characters, letters (Unicode), digits, underscores, parentheses, hyphens and periods,
# not ending in a period.
_RESOURCE_GROUP = re.compile(r"^[-\w.()]{1,90}$")
# Recovery Services vault: 2-50 characters, letters, digits and hyphens, starting with a letter.
_VAULT = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,49}$")
# Backup fabric, container and protected item names, e.g. "IaasVMContainer;iaasvmcontainerv2;rg;vm".
_BACKUP_NAME = re.compile(r"^[-\w;.()$:]{1,260}$")

_VAULT_PATH = (
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.RecoveryServices"
    r"/vaults/(?P<vault>[^/]+)"
)
_VAULT_ID = re.compile(rf"^{_VAULT_PATH}/?$", re.IGNORECASE)
_JOB_ID = re.compile(rf"^{_VAULT_PATH}/backupJobs/(?P<job>[^/]+)/?$", re.IGNORECASE)
_ITEM_OPERATION = re.compile(
    rf"^{_VAULT_PATH}/backupFabrics/(?P<fabric>[^/]+)/protectionContainers/(?P<container>[^/]+)"
    r"/protectedItems/(?P<item>[^/]+)/(?P<kind>operationsStatus|operationResults)/(?P<op>[^/]+)/?$",
    re.IGNORECASE,
)
_VAULT_OPERATION = re.compile(
    rf"^{_VAULT_PATH}/(?P<kind>backupOperations|backupOperationResults)/(?P<op>[^/]+)/?$", re.IGNORECASE
)


def parse_vault_id(resource_id: object, field: str = "vaultId") -> VaultRef:
    if not isinstance(resource_id, str):
        raise InvalidReference(f"{field} must be a string, got {show(resource_id)}")
    match = _VAULT_ID.fullmatch(resource_id.strip())
    if not match:
        raise InvalidReference(
            f"{field} {show(resource_id)} is not a Recovery Services vault id "
            "(/subscriptions/<guid>/resourceGroups/<rg>/providers/Microsoft.RecoveryServices/vaults/<name>)"
        )
    return vault_from_parts(match["sub"], match["rg"], match["vault"])


def vault_from_parts(subscription_id: object, resource_group: object, name: object) -> VaultRef:
    return VaultRef(
        subscription_id=check_guid("subscriptionId", subscription_id),
        resource_group=check_name(
            "resourceGroup",
            resource_group,
            _RESOURCE_GROUP,
            "1-90 letters, digits, underscores, parentheses, hyphens and periods, not ending in a period",
        ),
        name=check_name("vaultName", name, _VAULT, "2-50 letters, digits and hyphens, starting with a letter"),
        namespace=NAMESPACE,
        vault_type="vaults",
    )


def parse_job_id(resource_id: object, field: str = "jobResourceId") -> JobRef:
    if not isinstance(resource_id, str):
        raise InvalidReference(f"{field} must be a string, got {show(resource_id)}")
    match = _JOB_ID.fullmatch(resource_id.strip())
    if not match:
        raise InvalidReference(
            f"{field} {show(resource_id)} is not a backup job id "
            "(/subscriptions/<guid>/resourceGroups/<rg>/providers/Microsoft.RecoveryServices/vaults/<name>"
            "/backupJobs/<guid>)"
        )
    return JobRef.create(vault_from_parts(match["sub"], match["rg"], match["vault"]), match["job"], field)


def vault_operation(vault: VaultRef, operation_id: object, field: str = "operation.id") -> OperationRef:
    """A vault's ``backupOperations/{id}``: the status of an operation known only by its id."""
    operation_id = check_guid(field, operation_id)
    return OperationRef(vault, operation_id, f"{vault.path()}/backupOperations/{quote(operation_id, safe='')}")


def item_operation(vault: VaultRef, fabric: str, container: str, item: str, operation_id: str) -> OperationRef:
    """A protected item's ``operationsStatus/{id}``: what ``Azure-AsyncOperation`` of a trigger points at."""
    path = (
        f"{vault.path()}/backupFabrics/{quote(fabric, safe=';')}/protectionContainers/{quote(container, safe=';')}"
        f"/protectedItems/{quote(item, safe=';')}/operationsStatus/{quote(operation_id, safe='')}"
    )
    return OperationRef(vault, operation_id, path)


def parse_operation_url(url: object, arm_endpoint: str, field: str = "operationUrl") -> OperationRef:
    """Accepts only URLs on ``arm_endpoint`` that point at an operation of a Recovery Services vault.

    Either a protected item's ``operationsStatus/{id}`` (what ``Azure-AsyncOperation`` of a backup or restore
    trigger points at) or a vault's ``backupOperations/{id}``. A ``Location`` URL (``operationResults``) is turned
    into the matching status URL, since only the status names the jobId.
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidReference(f"{field} must be a non-empty string")
    if len(url) > 4096:
        raise InvalidReference(f"{field} is longer than 4096 characters")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise InvalidReference(f"{field} is not a valid URL: {exc}") from None
    endpoint = urlsplit(arm_endpoint)
    if (
        parts.scheme.lower() != endpoint.scheme.lower()
        or (parts.hostname or "").lower() != (endpoint.hostname or "").lower()
        or (port or _default_port(parts.scheme)) != (endpoint.port or _default_port(endpoint.scheme))
        or parts.username is not None
        or parts.password is not None
    ):
        raise InvalidReference(
            f"{field} must point at ARM_ENDPOINT ({arm_endpoint}); the tracker sends its Azure token nowhere else"
        )
    path = parts.path
    if "%" in path or "\\" in path or "/../" in path or "/./" in path:
        raise InvalidReference(f"{field} has an encoded or relative path segment")
    if match := _ITEM_OPERATION.fullmatch(path):
        vault = _vault_in(field, match)
        names = [
            check_name(f"{field} {part} name", match[part], _BACKUP_NAME, "letters, digits and ;._-()$: only")
            for part in ("fabric", "container", "item")
        ]
        return item_operation(vault, *names, check_guid(f"{field} operation id", match["op"]))
    if match := _VAULT_OPERATION.fullmatch(path):
        vault = _vault_in(field, match)
        return vault_operation(vault, match["op"], f"{field} operation id")
    raise InvalidReference(
        f"{field} is not an operation of a Recovery Services vault (expected .../protectedItems/<item>/"
        "operationsStatus/<id>, .../operationResults/<id> or .../vaults/<vault>/backupOperations/<id>)"
    )


def _vault_in(field: str, match: re.Match[str]) -> VaultRef:
    try:
        return vault_from_parts(match["sub"], match["rg"], match["vault"])
    except InvalidReference as exc:
        raise InvalidReference(f"{field} names an invalid vault: {exc}") from None


def _default_port(scheme: str) -> int:
    return 443 if scheme.lower() == "https" else 80


# -- mapping into the event --------------------------------------------------------------------------------------
def errors_from_job(job: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``errorDetails`` of any job type as ``{code, message, recommendations}``.

    IaaS VM errors carry ``errorCode`` (int) and ``errorTitle``: the title is the readable code. DPM and MAB errors
    carry only ``errorString``.
    """
    properties = (job or {}).get("properties") or {}
    errors = []
    for item in properties.get("errorDetails") or []:
        if not isinstance(item, dict):
            continue
        code = item.get("errorTitle") or item.get("errorCode") or item.get("code")
        errors.append(
            {
                "code": None if code is None else str(code),
                "message": item.get("errorString") or item.get("message") or item.get("errorTitle") or "",
                "recommendations": list(item.get("recommendations") or []),
            }
        )
    return errors


def _filter_date(moment: datetime) -> str:
    """``$filter`` dates as Azure Backup takes them: ``yyyy-MM-dd hh:mm:ss AM`` (UTC)."""
    return moment.strftime("%Y-%m-%d %I:%M:%S %p")


# -- the provider ------------------------------------------------------------------------------------------------
class RecoveryServices:
    """The ``jobs.providers.base.Provider`` of Recovery Services vaults."""

    namespace = NAMESPACE
    vault_type = "vaults"

    def __init__(self, api_version: str = DEFAULT_API_VERSION) -> None:
        self.api_version = api_version

    # references
    def parse_vault_id(self, resource_id: object, field: str = "vaultId") -> VaultRef:
        return parse_vault_id(resource_id, field)

    def vault_from_parts(self, subscription_id: object, resource_group: object, name: object) -> VaultRef:
        return vault_from_parts(subscription_id, resource_group, name)

    def parse_job_id(self, resource_id: object, field: str = "jobResourceId") -> JobRef:
        return parse_job_id(resource_id, field)

    def parse_operation_url(self, url: object, arm_endpoint: str, field: str = "operationUrl") -> OperationRef:
        return parse_operation_url(url, arm_endpoint, field)

    def vault_operation(self, vault: VaultRef, operation_id: object, field: str = "operation.id") -> OperationRef:
        return vault_operation(vault, operation_id, field)

    # reads
    def get_job(self, arm: ArmClient, job: JobRef) -> dict[str, Any]:
        """JobDetails_Get: the JobResource with ``extendedInfo``."""
        return arm.get_json(job.path(), {"api-version": self.api_version}, job.vault.subscription_id)

    def list_jobs(self, arm: ArmClient, vault: VaultRef, filter: str | None = None) -> Iterator[dict[str, Any]]:
        """BackupJobs_List: summary JobResources (no extendedInfo), page after page through ``nextLink``."""
        query = {"api-version": self.api_version}
        if filter:
            query["$filter"] = filter
        return arm.iter_pages(f"{vault.path()}/backupJobs", query, vault.subscription_id)

    def list_running_jobs(
        self, arm: ArmClient, vault: VaultRef, since: datetime, now: datetime
    ) -> dict[str, dict[str, Any]]:
        """The vault's InProgress jobs since a day before ``since``, by lower-case jobId."""
        earliest = since - timedelta(days=1)
        latest = now + timedelta(days=1)
        filter = (
            f"status eq '{JobStatus.IN_PROGRESS.value}' and startTime eq '{_filter_date(earliest)}' "
            f"and endTime eq '{_filter_date(latest)}'"
        )
        return {str(r.get("name") or "").lower(): r for r in self.list_jobs(arm, vault, filter)}

    def get_operation(self, arm: ArmClient, operation: OperationRef) -> dict[str, Any]:
        """The operation's status (``OperationStatus``)."""
        return arm.get_json(operation.path(), {"api-version": self.api_version}, operation.vault.subscription_id)

    # mapping
    def job_state(self, resource: dict[str, Any], *, detailed: bool = True) -> JobState:
        raw = (resource.get("properties") or {}).get("status")
        status = normalise_job_status(raw)
        return JobState(
            status=status.value if status else str(raw),
            terminal=status in TERMINAL_STATUSES,
            resource=resource,
            detailed=detailed,
        )

    def operation_state(self, operation: dict[str, Any]) -> OperationState:
        raw = operation.get("status")
        status = normalise_operation_status(raw)
        properties = operation.get("properties") if isinstance(operation.get("properties"), dict) else {}
        job_ids = [properties["jobId"]] if "jobId" in properties else []
        if isinstance(properties.get("jobIds"), list):
            job_ids += [job_id for job_id in properties["jobIds"] if job_id not in job_ids]
        outcome: OperationOutcome
        if status == OperationStatus.SUCCEEDED:
            outcome = "succeeded"
        elif status in (OperationStatus.FAILED, OperationStatus.CANCELED):
            outcome = "failed"
        else:
            outcome = "running"
        error = operation.get("error")
        return OperationState(
            status=status.value if status else str(raw),
            outcome=outcome,
            resource=operation,
            job_ids=tuple(job_ids),
            error=error if isinstance(error, dict) else {},
            known=status is not None,
        )

    def event_type(self, result_status: str) -> str:
        return f"BackupJob.{result_status}"

    def event_fields(self, job: dict[str, Any] | None) -> dict[str, Any]:
        properties = (job or {}).get("properties") or {}
        extended = properties.get("extendedInfo") or {}
        fields = {name: properties.get(name) for name in (
            "operation", "jobType", "backupManagementType", "entityFriendlyName", "startTime", "endTime", "duration"
        )}
        fields["errors"] = errors_from_job(job)
        fields["tasks"] = list(extended.get("tasksList") or [])
        fields["propertyBag"] = dict(extended.get("propertyBag") or {})
        return fields
