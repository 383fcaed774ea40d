"""Backup vaults (``Microsoft.DataProtection``): the jobs of Azure Blobs, Managed Disks, AKS, PostgreSQL and MySQL
flexible servers and Data Lake Storage backups.

Facts from ``specification/dataprotection/resource-manager/Microsoft.DataProtection/DataProtection/stable/2025-09-01``
of Azure/azure-rest-api-specs (``dataprotection.json`` and its examples):

- Jobs: ``GET .../backupVaults/{vault}/backupJobs/{jobId}`` (Jobs_Get, an ``AzureBackupJobResource``) and
  ``GET .../backupVaults/{vault}/backupJobs`` (Jobs_List: no ``$filter``, the vault's whole recent history, paged by
  ``nextLink``). Azure writes the type ``Microsoft.DataProtection/Backupvaults/backupJobs``: ids compare without case.
- ``status`` is a plain string, described as InProgress, Completed, Failed, Cancelled, CompletedWithWarnings,
  Cancelling, Paused, while the examples show ``Started`` and ``Succeeded``: the mapping is defensive, and a status
  it does not know is running, with one WARNING per status (``job_state``).
- Operations: an ad-hoc backup or a restore answers 202 with ``Azure-AsyncOperation`` at the vault's
  ``operationStatus/{base64 id}`` or the location's (``/subscriptions/{s}/providers/Microsoft.DataProtection/
  locations/{location}/operationStatus/{id}``, naming no vault: the vault comes alongside), and ``Location`` at an
  ``operationResults/{id}`` (of the vault, a backup instance or the location). A finished operation's ``properties``
  (or the result's body) are ``{"objectType": "OperationJobExtendedInfo", "jobId": ...}``, where ``jobId`` is the
  job's name or its full ARM id. Operation statuses (``Inprogress``, ``Succeeded``, ``Failed``, ``Canceled``)
  compare without case.
- Resource Graph holds these jobs (``RecoveryServicesResources``, type
  ``microsoft.dataprotection/backupvaults/backupjobs``: Microsoft's list of Resource Graph tables, and
  ``Search-AzDataProtectionJobInAzGraph`` / ``az dataprotection job list-from-resourcegraph`` query it).
- Events: the same CloudEvent types as Recovery Services; ``data.status`` as Azure wrote it; errors from
  ``UserFacingError``; tasks from ``extendedInfo.subTasks``; ``dataSourceName``, ``dataSourceType`` and
  ``vaultKind`` (``BackupVault``) beside the common fields (docs/reference.md, "Backup vault jobs").
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

from jobs.arm import ArmClient
from jobs.domain.references import (
    InvalidReference,
    JobRef,
    OperationRef,
    VaultRef,
    check_guid,
    check_name,
    check_region,
    is_guid,
    show,
)
from jobs.domain.results import JobState, OperationOutcome, OperationState
from jobs.providers import recovery_services as rs

__all__ = [
    "DEFAULT_API_VERSION",
    "NAMESPACE",
    "RUNNING_STATUSES",
    "TERMINAL_STATUSES",
    "VAULT_KIND",
    "DataProtection",
    "errors_from_job",
    "job_status",
]

log = logging.getLogger(__name__)

NAMESPACE = "Microsoft.DataProtection"
VAULT_TYPE = "backupVaults"
JOBS = "backupJobs"
VAULT_KIND = "BackupVault"  # ``data.vaultKind`` of these jobs' events
# A GA api-version (stable/2025-09-01, the version of Microsoft's "Jobs - Get" REST page), served in every public
# region; the spec's readme lists 2026-03-01 and 2026-06-01 too, which may not be live everywhere yet.
DEFAULT_API_VERSION = "2025-09-01"

# Job statuses, lower-case: what ended, as what (the canonical spelling is only for the event's type), and what runs.
_TERMINAL = {
    "completed": "Completed",
    "succeeded": "Completed",  # the examples' spelling (ListJobs.json)
    "completedwithwarnings": "CompletedWithWarnings",
    "failed": "Failed",
    "cancelled": "Cancelled",
    "canceled": "Cancelled",
}
_RUNNING = frozenset({"inprogress", "started", "cancelling", "paused", "notstarted", "queued"})
TERMINAL_STATUSES = frozenset(_TERMINAL)
RUNNING_STATUSES = _RUNNING
# Terminal statuses in the Resource Graph query (``in~`` compares without case).
_TERMINAL_IN_QUERY = ("Completed", "Succeeded", "CompletedWithWarnings", "Failed", "Cancelled", "Canceled")

_OPERATION_OUTCOMES: dict[str, OperationOutcome] = {
    "inprogress": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "failed",
    "cancelled": "failed",
}
OPERATION_JOB_INFO = "OperationJobExtendedInfo"

_warned: set[str] = set()
_warned_lock = threading.Lock()


def _warn_once(kind: str, value: object) -> None:
    key = f"{kind}:{value!r}"
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning("Backup vault %s %s is not one the tracker knows: taken as still running", kind, show(value))


def job_status(value: object) -> tuple[bool, str | None]:
    """``(terminal, canonical terminal status)`` of a job status, compared without case; an unknown status is
    running (one WARNING per status)."""
    lower = value.lower() if isinstance(value, str) else None
    if lower in _TERMINAL:
        return True, _TERMINAL[lower]
    if lower not in _RUNNING:
        _warn_once("job status", value)
    return False, None


# -- references --------------------------------------------------------------------------------------------------
_RESOURCE_GROUP = re.compile(r"^[-\w.()]{1,90}$")
# Backup vault: 2-50 letters, digits and hyphens, starting with a letter (Azure's naming rules).
_VAULT = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,49}$")
# A backup instance name ("harshitbi1", "testInstance1", "<server>-<db>-<guid>").
_INSTANCE = re.compile(r"^[-\w.]{1,260}$")
# Operation ids are base64 ("MjkxOTMy...Mjg="), standard or URL-safe; a GUID is accepted too.
_OPERATION_ID = re.compile(r"^[A-Za-z0-9+/_-]{4,1024}={0,2}$")

_NS = re.escape(NAMESPACE)
_VAULT_PATH = (rf"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/{_NS}"
               rf"/{VAULT_TYPE}/(?P<vault>[^/]+)")
_VAULT_ID = re.compile(rf"^{_VAULT_PATH}/?$", re.IGNORECASE)
_JOB_ID = re.compile(rf"^{_VAULT_PATH}/{JOBS}/(?P<job>[^/]+)/?$", re.IGNORECASE)
_VAULT_OPERATION = re.compile(
    rf"^{_VAULT_PATH}(?:/backupInstances/(?P<instance>[^/]+))?/(?P<kind>operationStatus|operationResults)"
    r"/(?P<op>[^/]+)/?$",
    re.IGNORECASE,
)
_LOCATION_OPERATION = re.compile(
    rf"^/subscriptions/(?P<sub>[^/]+)/providers/{_NS}/locations/(?P<location>[^/]+)"
    r"/(?P<kind>operationStatus|operationResults)/(?P<op>[^/]+)/?$",
    re.IGNORECASE,
)
_SHAPE = ("/subscriptions/<guid>/resourceGroups/<rg>/providers/Microsoft.DataProtection/backupVaults/<name>")


def check_operation_id(field: str, value: object) -> str:
    """A Backup vault operation id (base64, as Azure writes it), or ``InvalidReference`` naming ``field``."""
    if not isinstance(value, str) or not _OPERATION_ID.fullmatch(value):
        raise InvalidReference(f"{field} {show(value)} is not a Backup vault operation id (base64)")
    return value


def vault_from_parts(subscription_id: object, resource_group: object, name: object) -> VaultRef:
    return VaultRef(
        subscription_id=check_guid("subscriptionId", subscription_id),
        resource_group=check_name("resourceGroup", resource_group, _RESOURCE_GROUP,
                                  "1-90 letters, digits, underscores, parentheses, hyphens and periods, not ending "
                                  "in a period"),
        name=check_name("vaultName", name, _VAULT, "2-50 letters, digits and hyphens, starting with a letter"),
        namespace=NAMESPACE,
        vault_type=VAULT_TYPE,
    )


def parse_vault_id(resource_id: object, field: str = "vaultId") -> VaultRef:
    if not isinstance(resource_id, str):
        raise InvalidReference(f"{field} must be a string, got {show(resource_id)}")
    match = _VAULT_ID.fullmatch(resource_id.strip())
    if not match:
        raise InvalidReference(f"{field} {show(resource_id)} is not a Backup vault id ({_SHAPE})")
    return _vault_in(field, match)


def parse_job_id(resource_id: object, field: str = "jobResourceId") -> JobRef:
    if not isinstance(resource_id, str):
        raise InvalidReference(f"{field} must be a string, got {show(resource_id)}")
    match = _JOB_ID.fullmatch(resource_id.strip())
    if not match:
        raise InvalidReference(f"{field} {show(resource_id)} is not a Backup vault job id ({_SHAPE}/backupJobs/<guid>)")
    return JobRef.create(_vault_in(field, match), match["job"], field)


def _vault_in(field: str, match: re.Match[str]) -> VaultRef:
    try:
        return vault_from_parts(match["sub"], match["rg"], match["vault"])
    except InvalidReference as exc:
        raise InvalidReference(f"{field} names an invalid vault: {exc}") from None


def job_path(job: JobRef) -> str:
    return f"{job.vault.path()}/{JOBS}/{quote(job.job_id, safe='')}"


def vault_operation(vault: VaultRef, operation_id: object, field: str = "operation.id") -> OperationRef:
    """The vault's ``operationStatus/{id}`` (OperationStatusBackupVaultContext_Get)."""
    operation_id = _operation_id(field, operation_id)
    return OperationRef(vault, operation_id, f"{vault.path()}/operationStatus/{quote(operation_id, safe='')}")


def location_operation(vault: VaultRef, location: str, operation_id: str) -> OperationRef:
    """The location's ``operationStatus/{id}`` (OperationStatus_Get), for a job of ``vault``."""
    path = (f"/subscriptions/{quote(vault.subscription_id, safe='')}/providers/{NAMESPACE}/locations/"
            f"{quote(location, safe='')}/operationStatus/{quote(operation_id, safe='')}")
    return OperationRef(vault, operation_id, path)


def _operation_id(field: str, value: object) -> str:
    """An operation id as it comes in an operation-status body: its ``name``, or the last segment of its ``id``."""
    if isinstance(value, str) and "/" in value and value.lower().startswith("/subscriptions/"):
        value = unquote(value.rstrip("/").rsplit("/", 1)[-1])
    return check_operation_id(field, value)


def parse_operation_url(
    url: object, arm_endpoint: str, field: str = "operationUrl", vault: VaultRef | None = None
) -> OperationRef:
    """An ``Azure-AsyncOperation`` (``operationStatus``) or ``Location`` (``operationResults``) URL of a Backup
    vault's operation, on ``arm_endpoint`` only. The vault's own (or a backup instance's) is read at the vault's
    ``operationStatus``; a location's names no vault, which must come alongside (``vault``)."""
    parts = rs.split_url(url, field)
    if not rs.same_origin(parts, arm_endpoint):
        raise InvalidReference(
            f"{field} must point at ARM_ENDPOINT ({arm_endpoint}); the tracker sends its Azure token nowhere else"
        )
    path = _decoded_path(parts.path, field)
    if match := _VAULT_OPERATION.fullmatch(path):
        found = _vault_in(field, match)
        if match["instance"] is not None:
            check_name(f"{field} backup instance name", match["instance"], _INSTANCE, "letters, digits and -_. only")
        if vault is not None and vault.key != found.key:
            raise InvalidReference(f"{field} is an operation of {found.id}, not of the vault given ({vault.id})")
        return vault_operation(found, match["op"], f"{field} operation id")
    if match := _LOCATION_OPERATION.fullmatch(path):
        subscription = check_guid(f"{field} subscription", match["sub"])
        location = check_region(f"{field} location", match["location"])
        operation_id = check_operation_id(f"{field} operation id", match["op"])
        if vault is None:
            raise InvalidReference(
                f"{field} is a location's operation (.../locations/<location>/operationStatus/<id>), which names no "
                "vault: give vaultId (or subscriptionId, resourceGroup and vaultName) alongside, for the job's reads"
            )
        if vault.namespace.lower() != NAMESPACE.lower():
            raise InvalidReference(f"{field} is a Backup vault operation, but vaultId is not a Backup vault "
                                   f"({vault.id})")
        if vault.subscription_id.lower() != subscription:
            raise InvalidReference(f"{field} is in subscription {subscription}, not in that of vaultId ({vault.id})")
        return location_operation(vault, location, operation_id)
    raise InvalidReference(
        f"{field} is not an operation of a Backup vault (expected .../backupVaults/<vault>/operationStatus/<id>, "
        ".../operationResults/<id>, or /subscriptions/<guid>/providers/Microsoft.DataProtection/locations/"
        "<location>/operationStatus/<id>)"
    )


_UNSAFE_DECODED = re.compile(r"[/\\?#%\x00-\x1f\x7f]")


def _decoded_path(raw: str, field: str) -> str:
    """The path with each segment percent-decoded once; encoded separators, ``.``/``..`` and double encoding are
    refused (as for Recovery Services URLs)."""
    if "\\" in raw:
        raise InvalidReference(f"{field} has an encoded or relative path segment")
    decoded = []
    for segment in raw.split("/"):
        try:
            text = unquote(segment, errors="strict")
        except UnicodeDecodeError:
            raise InvalidReference(f"{field} has a path segment that is not UTF-8 once decoded") from None
        if _UNSAFE_DECODED.search(text) or text in (".", ".."):
            raise InvalidReference(f"{field} has an encoded or relative path segment")
        decoded.append(text)
    return "/".join(decoded)


def _job_name(value: object) -> object:
    """An ``OperationJobExtendedInfo.jobId``: a job's name, or its full ARM id (whose last segment is the name)."""
    if isinstance(value, str) and value.strip().lower().startswith("/subscriptions/"):
        try:
            return parse_job_id(value, "operation jobId").job_id
        except InvalidReference:
            return value  # refused where it is used, naming the field
    return value


# -- mapping into the event --------------------------------------------------------------------------------------
def _user_facing_error(item: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    error: dict[str, Any] = {
        "code": None if item.get("code") in (None, "") else str(item["code"]),
        "message": str(item.get("message") or ""),
        "recommendations": [str(action) for action in item.get("recommendedAction") or [] if action],
    }
    details = [d for d in item.get("details") or [] if isinstance(d, dict)]
    if details and depth < 3:
        error["details"] = [_user_facing_error(detail, depth + 1) for detail in details]
    for name in ("target", "isRetryable", "isUserError"):
        if item.get(name) is not None:
            error[name] = item[name]
    return error


def errors_from_job(job: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``errorDetails`` (``UserFacingError``) as ``{code, message, recommendations}`` (``recommendedAction``), plus
    ``details`` (the nested ``UserFacingError``s, mapped the same way), ``target``, ``isRetryable`` and
    ``isUserError`` when Azure gives them."""
    properties = (job or {}).get("properties") or {}
    return [_user_facing_error(item) for item in properties.get("errorDetails") or [] if isinstance(item, dict)]


# -- the provider ------------------------------------------------------------------------------------------------
class DataProtection:
    """The ``jobs.providers.base.Provider`` of Backup vaults."""

    namespace = NAMESPACE
    vault_type = VAULT_TYPE
    cross_region = False
    api_version_setting = "JOBS_DATAPROTECTION_API_VERSION"
    default_api_version = DEFAULT_API_VERSION
    api_version_doc = ("api-version of the Backup vault calls (`Microsoft.DataProtection`: Jobs_Get, operation "
                       "status): a GA version served in every region (newer ones such as 2026-06-01 exist in the "
                       "specs but may not be live everywhere)")
    # Jobs_List has no $filter: a list pages through the vault's whole recent history. The benchmark
    # (docs/benchmark.md, "Backup vaults") shows a GET per due job costs fewer reads: the poll worker never lists.
    lists_running_jobs = False

    def __init__(self, api_version: str | None = None) -> None:
        self.api_version = api_version or self.default_api_version

    # references
    @classmethod
    def parse_vault_id(cls, resource_id: object, field: str = "vaultId") -> VaultRef:
        return parse_vault_id(resource_id, field)

    @classmethod
    def vault_from_parts(cls, subscription_id: object, resource_group: object, name: object) -> VaultRef:
        return vault_from_parts(subscription_id, resource_group, name)

    @classmethod
    def parse_job_id(cls, resource_id: object, field: str = "jobResourceId") -> JobRef:
        return parse_job_id(resource_id, field)

    @classmethod
    def job_resource_id(cls, job: JobRef) -> str:
        return f"{job.vault.id}/{JOBS}/{job.job_id}"

    @classmethod
    def recognises_operation_url(cls, url: str) -> bool:
        return True

    @classmethod
    def parse_operation_url(
        cls, url: object, arm_endpoint: str, field: str = "operationUrl", vault: VaultRef | None = None
    ) -> OperationRef:
        if vault is not None and vault.region:
            raise InvalidReference(
                f"crossRegionRestore is given, but {field} is a Backup vault operation (cross-region restores are "
                "tracked for Recovery Services vaults only)"
            )
        return parse_operation_url(url, arm_endpoint, field, vault)

    @classmethod
    def vault_operation(cls, vault: VaultRef, operation_id: object, field: str = "operation.id") -> OperationRef:
        return vault_operation(vault, operation_id, field)

    # reads
    def get_job(self, arm: ArmClient, job: JobRef) -> dict[str, Any]:
        """Jobs_Get: the AzureBackupJobResource, with extendedInfo and errorDetails."""
        return arm.get_json(job_path(job), {"api-version": self.api_version}, job.vault.subscription_id)

    def list_jobs(self, arm: ArmClient, vault: VaultRef, filter: str | None = None) -> Iterator[dict[str, Any]]:
        """Jobs_List: the vault's recent jobs, page after page through ``nextLink`` (no ``$filter``: Azure has none;
        ``filter`` must be None)."""
        if filter:
            raise ValueError("Jobs_List of a Backup vault takes no $filter")
        return arm.iter_pages(f"{vault.path()}/{JOBS}", {"api-version": self.api_version}, vault.subscription_id)

    def list_recent_jobs(self, arm: ArmClient, vault: VaultRef, since: datetime, now: datetime) -> list[dict[str, Any]]:
        """What a watch discovers: the jobs of the vault's whole list (every page: Azure documents no order and no
        filter) that started since ``since``, at most 30 days back, whatever their status."""
        start = max(since, now - timedelta(days=30))
        recent = []
        for resource in self.list_jobs(arm, vault):
            started = _parse_time((resource.get("properties") or {}).get("startTime"))
            if started is not None and started >= start:
                recent.append(resource)
        return recent

    def list_running_jobs(
        self, arm: ArmClient, vault: VaultRef, since: datetime, now: datetime
    ) -> dict[str, dict[str, Any]]:
        """The running jobs among the vault's whole list, started within ``recovery_services.list_window``."""
        start, _ = rs.list_window(since, now)
        running: dict[str, dict[str, Any]] = {}
        for resource in self.list_jobs(arm, vault):
            properties = resource.get("properties") or {}
            started = _parse_time(properties.get("startTime"))
            if started is not None and started < start:
                continue
            if not job_status(properties.get("status"))[0]:
                running[str(resource.get("name") or "").lower()] = resource
        return running

    def get_operation(self, arm: ArmClient, operation: OperationRef) -> dict[str, Any]:
        """The operation's status (``OperationResource``), of the vault or of the location."""
        return arm.get_json(operation.path(), {"api-version": self.api_version}, operation.vault.subscription_id)

    # Resource Graph: RecoveryServicesResources holds Backup vault jobs too
    resource_graph = True

    @classmethod
    def ended_jobs_query(cls, job_ids: Sequence[str]) -> str:
        return ended_jobs_query(job_ids)

    @classmethod
    def job_of_row(cls, row: dict[str, Any]) -> tuple[str, str] | None:
        vault_id, separator, job_id = str(row.get("id") or "").lower().rpartition(f"/{JOBS.lower()}/")
        return (vault_id, job_id) if separator else None

    # mapping
    @classmethod
    def job_state(cls, resource: dict[str, Any], *, detailed: bool = True) -> JobState:
        raw = (resource.get("properties") or {}).get("status")
        terminal, _ = job_status(raw)
        return JobState(status=str(raw), terminal=terminal, resource=resource, detailed=detailed)

    @classmethod
    def operation_state(cls, operation: dict[str, Any]) -> OperationState:
        """An ``OperationResource`` (``status``, ``properties``: ``OperationJobExtendedInfo``), or the bare
        ``OperationJobExtendedInfo`` an operation's result returns (it has ended: it names its job)."""
        raw = operation.get("status")
        properties = operation.get("properties") if isinstance(operation.get("properties"), dict) else {}
        if raw is None and operation.get("objectType") == OPERATION_JOB_INFO:
            raw, properties = "Succeeded", operation
        outcome = _OPERATION_OUTCOMES.get(raw.lower()) if isinstance(raw, str) else None
        if outcome is None and raw is not None:
            _warn_once("operation status", raw)
        job_ids = [_job_name(properties["jobId"])] if properties.get("jobId") else []
        error = operation.get("error")
        return OperationState(
            status=str(raw),
            outcome=outcome or "running",
            resource=operation,
            job_ids=tuple(job_ids),
            error=error if isinstance(error, dict) else {},
            known=outcome is not None,
        )

    @classmethod
    def failed_jobs(cls, operation: dict[str, Any] | None) -> dict[str, str]:
        return {}  # OperationJobExtendedInfo names one job, never jobs Azure failed to create

    @classmethod
    def event_type(cls, result_status: str) -> str:
        """``BackupJob.Completed`` for Completed and Succeeded, ``BackupJob.Cancelled`` for either spelling, and so
        on; the tracker's own statuses (TimedOut, NotFound...) as they are."""
        return f"BackupJob.{_TERMINAL.get(result_status.lower(), result_status)}"

    @classmethod
    def event_subject(cls, job_id: str | None, operation_id: str) -> str:
        """``backupJobs/<jobId>``; an operation that never named a job: ``operationStatus/<its id>``."""
        return f"{JOBS}/{job_id}" if job_id else f"operationStatus/{operation_id}"

    @classmethod
    def reference_fields(cls, vault: VaultRef) -> dict[str, Any]:
        return {"vaultKind": VAULT_KIND}

    @classmethod
    def progress(cls, job: dict[str, Any] | None) -> tuple[float | None, float | None]:
        """``AzureBackupJob`` carries no estimate of its remainder nor a percentage done."""
        return None, None

    @classmethod
    def event_fields(cls, job: dict[str, Any] | None) -> dict[str, Any]:
        """The common fields from an ``AzureBackupJob``, and the data source's name and type."""
        properties = (job or {}).get("properties") or {}
        extended = properties.get("extendedInfo") or {}
        return {
            "operation": properties.get("operation"),
            "jobType": None,  # no job types: dataSourceType says what was backed up
            "backupManagementType": None,
            "entityFriendlyName": properties.get("backupInstanceFriendlyName") or properties.get("dataSourceName"),
            "startTime": properties.get("startTime"),
            "endTime": properties.get("endTime"),
            "duration": properties.get("duration"),
            "errors": errors_from_job(job),
            "tasks": [task for task in extended.get("subTasks") or [] if isinstance(task, dict)],
            "propertyBag": {str(k): v for k, v in (extended.get("additionalDetails") or {}).items()},
            "dynamicErrorMessage": None,
            "dataSourceName": properties.get("dataSourceName"),
            "dataSourceType": properties.get("dataSourceType"),
        }


def ended_jobs_query(job_ids: Iterable[str]) -> str:
    """KQL for the Backup vault jobs among ``job_ids`` that Resource Graph shows as ended (``RecoveryServicesResources``
    holds them with type ``microsoft.dataprotection/backupvaults/backupjobs``); projects ``id``."""
    names = ", ".join(f"'{job_id.lower()}'" for job_id in job_ids if is_guid(job_id))
    statuses = ", ".join(f"'{status}'" for status in _TERMINAL_IN_QUERY)
    return (
        "RecoveryServicesResources"
        f" | where type =~ '{NAMESPACE.lower()}/{VAULT_TYPE.lower()}/{JOBS.lower()}'"
        f" | where name in~ ({names})"
        f" | where tostring(properties.status) in~ ({statuses})"
        " | project id, name, status = tostring(properties.status)"
    )


def _parse_time(value: object) -> datetime | None:
    """An ISO 8601 time as Azure writes it (``2021-03-17T11:11:50.5595259Z``: seven fraction digits), in UTC."""
    if not isinstance(value, str):
        return None
    match = re.fullmatch(r"\s*(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?\s*", value)
    if not match:
        return None
    try:
        moment = datetime.fromisoformat(match[1] + (match[2] or "")[:7])  # microseconds at most
    except ValueError:
        return None
    zone = match[3] or "Z"
    offset = timedelta(0) if zone == "Z" else timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])) * (
        1 if zone[0] == "+" else -1)
    return moment.replace(tzinfo=UTC) - offset
