"""Recovery Services vaults (``Microsoft.RecoveryServices``): the provider behind every job the tracker follows today.

- References: vault, job and operation ids as Azure and its clients write them, validated before they reach a URL:
  subscription, job and operation ids are GUIDs, resource group and vault names follow Azure's naming rules, and
  paths (``.../vaults/{vault}/backupJobs/{jobId}``) are rebuilt from validated parts, never copied.
- Reads: ``JobDetails_Get`` (with extendedInfo), ``BackupJobs_List`` with ``$filter`` (summaries), and operation
  status (``ProtectedItemOperationStatuses_Get``, ``BackupOperationStatuses_Get``), at ``JOBS_ARM_API_VERSION``.
- Resource Graph: the ended jobs among the tracked ones in ``RecoveryServicesResources`` (``ended_jobs_query``).
- Mapping: ``JobStatus`` to running or terminal; ``OperationStatusValues`` (``Canceled`` with one l); the event's
  ``type`` and ``subject``, errors (every job type's ``errorDetails``), tasks and property bag.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import SplitResult, quote, unquote, urlsplit

from jobs.arm import ArmClient
from jobs.domain.azure_time import duration_seconds
from jobs.domain.references import InvalidReference, JobRef, OperationRef, VaultRef, check_guid, check_name, show
from jobs.domain.results import JobState, OperationOutcome, OperationState

__all__ = [
    "DEFAULT_API_VERSION",
    "JOB_TYPES",
    "LIST_WINDOW",
    "NAMESPACE",
    "RUNNING_STATUSES",
    "TERMINAL_STATUSES",
    "JobStatus",
    "OperationStatus",
    "RecoveryServices",
    "ended_jobs_query",
    "errors_from_job",
    "failed_jobs",
    "filter_date",
    "job_of_row",
    "job_path",
    "job_resource_id",
    "list_window",
    "normalise_job_status",
    "normalise_operation_status",
    "recent_filter",
    "running_filter",
    "same_origin",
    "split_url",
]

NAMESPACE = "Microsoft.RecoveryServices"
VAULT_TYPE = "vaults"
JOBS = "backupJobs"  # the collection of a vault's jobs in ARM paths
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
# The terminal statuses in the order the Resource Graph query names them.
_TERMINAL_IN_QUERY = (JobStatus.COMPLETED, JobStatus.COMPLETED_WITH_WARNINGS, JobStatus.FAILED, JobStatus.CANCELLED)

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
    rf"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/{re.escape(NAMESPACE)}"
    rf"/{VAULT_TYPE}/(?P<vault>[^/]+)"
)
_VAULT_ID = re.compile(rf"^{_VAULT_PATH}/?$", re.IGNORECASE)
_JOB_ID = re.compile(rf"^{_VAULT_PATH}/{JOBS}/(?P<job>[^/]+)/?$", re.IGNORECASE)
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
        vault_type=VAULT_TYPE,
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


def job_resource_id(job: JobRef) -> str:
    """The job's ARM id, ``<vault id>/backupJobs/<jobId>`` (as Azure writes it, unquoted)."""
    return f"{job.vault.id}/{JOBS}/{job.job_id}"


def job_path(job: JobRef) -> str:
    """The ARM path of ``JobDetails_Get``, every variable part URL-quoted."""
    return f"{job.vault.path()}/{JOBS}/{quote(job.job_id, safe='')}"


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
    parts = split_url(url, field)
    if not same_origin(parts, arm_endpoint):
        raise InvalidReference(
            f"{field} must point at ARM_ENDPOINT ({arm_endpoint}); the tracker sends its Azure token nowhere else"
        )
    path = _decoded_path(parts.path, field)
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


# What no decoded path segment may hold: it could change the path (``/``, ``\\``, ``.``/``..``), the query or the
# fragment (``?``, ``#``), or hide a second decoding (``%``). Control characters never belong in a name either.
_UNSAFE_DECODED = re.compile(r"[/\\?#%\x00-\x1f\x7f]")


def _decoded_path(raw: str, field: str) -> str:
    """The URL's path with each segment percent-decoded once, as ARM reads it.

    azure-cli and the SDKs encode container and item names (``IaasVMContainer%3Biaasvmcontainerv2%3Brg%3Bvm``);
    decoding is done once, then the decoded segments are judged: an encoded ``/``, ``?``, ``#`` or ``\\``, a ``.``
    or ``..`` segment, or a ``%`` left after decoding (double encoding) is refused.
    """
    if "\\" in raw:
        raise InvalidReference(f"{field} has an encoded or relative path segment")
    segments = raw.split("/")
    decoded = []
    for segment in segments:
        try:
            text = unquote(segment, errors="strict")
        except UnicodeDecodeError:
            raise InvalidReference(f"{field} has a path segment that is not UTF-8 once decoded") from None
        if _UNSAFE_DECODED.search(text) or text in (".", ".."):
            raise InvalidReference(f"{field} has an encoded or relative path segment")
        decoded.append(text)
    return "/".join(decoded)


def _vault_in(field: str, match: re.Match[str]) -> VaultRef:
    try:
        return vault_from_parts(match["sub"], match["rg"], match["vault"])
    except InvalidReference as exc:
        raise InvalidReference(f"{field} names an invalid vault: {exc}") from None


def split_url(url: object, field: str) -> SplitResult:
    """A URL from a message, split: a non-empty string of at most 4096 characters, with a valid port if any."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidReference(f"{field} must be a non-empty string")
    if len(url) > 4096:
        raise InvalidReference(f"{field} is longer than 4096 characters")
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 -- a port that is not a number, or out of range, raises here
    except ValueError as exc:
        raise InvalidReference(f"{field} is not a valid URL: {exc}") from None
    return parts


def same_origin(parts: SplitResult, arm_endpoint: str, host_ok: Callable[[str, str], bool] | None = None) -> bool:
    """Whether ``parts`` is on ``arm_endpoint``: the same scheme and port, no user info, and the same host (or one
    that ``host_ok(host, endpoint_host)`` accepts). The tracker sends its Azure token nowhere else."""
    endpoint = urlsplit(arm_endpoint)
    host, endpoint_host = (parts.hostname or "").lower(), (endpoint.hostname or "").lower()
    return (
        parts.scheme.lower() == endpoint.scheme.lower()
        and (host == endpoint_host or (host_ok is not None and host_ok(host, endpoint_host)))
        and (parts.port or _default_port(parts.scheme)) == (endpoint.port or _default_port(endpoint.scheme))
        and parts.username is None
        and parts.password is None
    )


def _default_port(scheme: str) -> int:
    return 443 if scheme.lower() == "https" else 80


# -- Resource Graph ----------------------------------------------------------------------------------------------
def ended_jobs_query(job_ids: Iterable[str]) -> str:
    """KQL for the jobs among ``job_ids`` (GUIDs, validated at intake) that Resource Graph shows as ended.

    Microsoft documents ``RecoveryServicesResources`` (type ``microsoft.recoveryservices/vaults/backupjobs``) as
    holding in-progress and ended jobs of the last 14 days. The query projects ``id``, which Resource Graph needs to
    page in a stable order.
    """
    names = ", ".join(f"'{job_id.lower()}'" for job_id in job_ids)
    statuses = ", ".join(f"'{status.value}'" for status in _TERMINAL_IN_QUERY)
    return (
        "RecoveryServicesResources"
        f" | where type =~ '{NAMESPACE.lower()}/{VAULT_TYPE}/{JOBS.lower()}'"
        f" | where name in~ ({names})"
        f" | where tostring(properties.status) in~ ({statuses})"
        " | project id, name, status = tostring(properties.status)"
    )


def job_of_row(row: dict[str, Any]) -> tuple[str, str] | None:
    """``(vault id, job id)``, lower-case, of a row of ``ended_jobs_query`` (from its ``id``)."""
    vault_id, separator, job_id = str(row.get("id") or "").lower().rpartition(f"/{JOBS.lower()}/")
    return (vault_id, job_id) if separator else None


# -- mapping into the event --------------------------------------------------------------------------------------
def errors_from_job(job: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``errorDetails`` of any job type as ``{code, message, recommendations}``, plus ``title`` and ``details``.

    Per job type's error model (bms.json): ``AzureIaaSVMErrorInfo`` {errorCode int32, errorTitle, errorString,
    recommendations}, ``AzureWorkloadErrorInfo`` (the same plus additionalDetails), ``AzureStorageErrorInfo`` and
    ``VaultJobErrorInfo`` {errorCode, errorString, recommendations}, ``DpmErrorInfo`` and ``MabErrorInfo``
    {errorString, recommendations}. ``code`` is ``str(errorCode)`` when Azure gives one (non-zero), else null;
    ``errorTitle`` is "typically, the entity that the error pertains to", so it goes to ``title``, never ``code``.
    """
    properties = (job or {}).get("properties") or {}
    errors = []
    for item in properties.get("errorDetails") or []:
        if not isinstance(item, dict):
            continue
        code = item.get("errorCode")
        if isinstance(code, bool) or code in (None, "", 0, "0"):
            code = None
        error: dict[str, Any] = {
            "code": None if code is None else str(code),
            "message": str(item.get("errorString") or ""),
            "recommendations": list(item.get("recommendations") or []),
        }
        if item.get("errorTitle"):
            error["title"] = str(item["errorTitle"])
        if item.get("additionalDetails"):
            error["details"] = str(item["additionalDetails"])
        errors.append(error)
    return errors


def failed_jobs(operation: dict[str, Any] | None) -> dict[str, str]:
    """``OperationStatusJobsExtendedInfo.failedJobsError`` (``{jobId: errorCode}``): jobs Azure failed to create,
    by lower-case job id. Empty for any other operation."""
    properties = (operation or {}).get("properties")
    failed = properties.get("failedJobsError") if isinstance(properties, dict) else None
    if not isinstance(failed, dict):
        return {}
    return {str(job_id).lower(): "" if code is None else str(code) for job_id, code in failed.items() if job_id}


# A ``BackupJobs_List`` window: PowerShell refuses one longer than 30 days (JobAllowedDateTimeRangeExceeded) and
# azure-cli never sends one; neither sends an end in the future.
LIST_WINDOW = timedelta(days=30)


def list_window(since: datetime, now: datetime) -> tuple[datetime, datetime]:
    """The ``startTime``/``endTime`` of a list call: from a day before ``since``, never more than 30 days back,
    up to ``now`` (UTC, whole seconds). Jobs started before it are missing from the list and get a GET each."""
    end = now.astimezone(UTC).replace(microsecond=0)
    start = max(since.astimezone(UTC) - timedelta(days=1), end - LIST_WINDOW)
    return min(start.replace(microsecond=0), end), end


def running_filter(since: datetime, now: datetime) -> str:
    """The ``$filter`` of a list of running jobs (``JobQueryObject``): ``status eq 'InProgress'`` within
    ``list_window(since, now)``, dates as ``filter_date`` writes them."""
    start, end = list_window(since, now)
    return (f"status eq '{JobStatus.IN_PROGRESS.value}' and startTime eq '{filter_date(start)}' "
            f"and endTime eq '{filter_date(end)}'")


def recent_filter(since: datetime, now: datetime) -> str:
    """The ``$filter`` of every job started from ``since`` (at most ``LIST_WINDOW`` before ``now``) to ``now``,
    whatever its status: a watch's discovery (``RecoveryServices.list_recent_jobs``)."""
    end = now.astimezone(UTC).replace(microsecond=0)
    start = min(max(since.astimezone(UTC), end - LIST_WINDOW).replace(microsecond=0), end)
    return f"startTime eq '{filter_date(start)}' and endTime eq '{filter_date(end)}'"


def filter_date(moment: datetime) -> str:
    """``$filter`` dates as Azure Backup's clients write them: ``yyyy-MM-dd hh:mm:ss tt`` in UTC, AM/PM in English
    whatever the process locale (``strftime('%p')`` follows it)."""
    moment = moment.astimezone(UTC)
    hour12 = moment.hour % 12 or 12
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} {hour12:02d}:{moment.minute:02d}:"
            f"{moment.second:02d} {'AM' if moment.hour < 12 else 'PM'}")


# -- the provider ------------------------------------------------------------------------------------------------
class RecoveryServices:
    """The ``jobs.providers.base.Provider`` of Recovery Services vaults."""

    namespace = NAMESPACE
    vault_type = "vaults"
    cross_region = False
    lists_running_jobs = True  # list_running_jobs filters on status: one list may replace a GET per job
    api_version_setting = "JOBS_ARM_API_VERSION"
    default_api_version = DEFAULT_API_VERSION
    api_version_doc = ("api-version of the Recovery Services calls: a GA version of the backup API served in every "
                       "region (newer ones such as 2026-11-01 exist in the specs but may not be live everywhere)")

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
        return job_resource_id(job)

    @classmethod
    def recognises_operation_url(cls, url: str) -> bool:
        return True  # the namespace's default: its parse says what is wrong with any other URL

    @classmethod
    def parse_operation_url(
        cls, url: object, arm_endpoint: str, field: str = "operationUrl", vault: VaultRef | None = None
    ) -> OperationRef:
        """The URL names its vault; a ``vault`` given alongside is not needed, but one in a secondary region says
        the sender meant a cross-region restore, which this URL is not."""
        if vault is not None and vault.region:
            raise InvalidReference(
                f"crossRegionRestore is given, but {field} is not a cross-region restore operation "
                "(.../locations/<region>/backupCrrOperationsStatus/<id>)"
            )
        return parse_operation_url(url, arm_endpoint, field)

    @classmethod
    def vault_operation(cls, vault: VaultRef, operation_id: object, field: str = "operation.id") -> OperationRef:
        return vault_operation(vault, operation_id, field)

    # reads
    def get_job(self, arm: ArmClient, job: JobRef) -> dict[str, Any]:
        """JobDetails_Get: the JobResource with ``extendedInfo``."""
        return arm.get_json(job_path(job), {"api-version": self.api_version}, job.vault.subscription_id)

    def list_jobs(self, arm: ArmClient, vault: VaultRef, filter: str | None = None) -> Iterator[dict[str, Any]]:
        """BackupJobs_List: summary JobResources (no extendedInfo), page after page through ``nextLink``."""
        query = {"api-version": self.api_version}
        if filter:
            query["$filter"] = filter
        return arm.iter_pages(f"{vault.path()}/{JOBS}", query, vault.subscription_id)

    def list_running_jobs(
        self, arm: ArmClient, vault: VaultRef, since: datetime, now: datetime
    ) -> dict[str, dict[str, Any]]:
        """The vault's InProgress jobs in ``list_window(since, now)`` (at most 30 days), by lower-case jobId."""
        return {str(r.get("name") or "").lower(): r for r in self.list_jobs(arm, vault, running_filter(since, now))}

    def list_recent_jobs(self, arm: ArmClient, vault: VaultRef, since: datetime, now: datetime) -> list[dict[str, Any]]:
        """BackupJobs_List of the jobs started in ``recent_filter(since, now)``, any status (summaries)."""
        return list(self.list_jobs(arm, vault, recent_filter(since, now)))

    def get_operation(self, arm: ArmClient, operation: OperationRef) -> dict[str, Any]:
        """The operation's status (``OperationStatus``)."""
        return arm.get_json(operation.path(), {"api-version": self.api_version}, operation.vault.subscription_id)

    # Resource Graph
    resource_graph = True

    @classmethod
    def ended_jobs_query(cls, job_ids: Sequence[str]) -> str:
        return ended_jobs_query(job_ids)

    @classmethod
    def job_of_row(cls, row: dict[str, Any]) -> tuple[str, str] | None:
        return job_of_row(row)

    # mapping
    @classmethod
    def job_state(cls, resource: dict[str, Any], *, detailed: bool = True) -> JobState:
        raw = (resource.get("properties") or {}).get("status")
        status = normalise_job_status(raw)
        return JobState(
            status=status.value if status else str(raw),
            terminal=status in TERMINAL_STATUSES,
            resource=resource,
            detailed=detailed,
        )

    @classmethod
    def operation_state(cls, operation: dict[str, Any]) -> OperationState:
        raw = operation.get("status")
        status = normalise_operation_status(raw)
        properties = operation.get("properties") if isinstance(operation.get("properties"), dict) else {}
        job_ids = [properties["jobId"]] if "jobId" in properties else []
        if isinstance(properties.get("jobIds"), list):
            job_ids += [job_id for job_id in properties["jobIds"] if job_id not in job_ids]
        # Jobs Azure failed to create are named too, so that each gets its result (``failed_jobs``).
        failed = properties.get("failedJobsError")
        if isinstance(failed, dict):
            job_ids += [job_id for job_id in failed if job_id not in job_ids]
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

    @classmethod
    def failed_jobs(cls, operation: dict[str, Any] | None) -> dict[str, str]:
        return failed_jobs(operation)

    @classmethod
    def event_type(cls, result_status: str) -> str:
        return f"BackupJob.{result_status}"

    @classmethod
    def event_subject(cls, job_id: str | None, operation_id: str) -> str:
        """``backupJobs/<jobId>``; an operation that never named a job: ``backupOperations/<its id>``."""
        return f"{JOBS}/{job_id}" if job_id else f"backupOperations/{operation_id}"

    @classmethod
    def reference_fields(cls, vault: VaultRef) -> dict[str, Any]:
        return {}

    @classmethod
    def progress(cls, job: dict[str, Any] | None) -> tuple[float | None, float | None]:
        """A VM job's ``extendedInfo.estimatedRemainingDuration`` (a .NET TimeSpan, ``00:01:05``, or ISO 8601)
        and ``progressPercentage``: only JobDetails_Get carries them, never a list's summary."""
        extended = ((job or {}).get("properties") or {}).get("extendedInfo") or {}
        remaining = duration_seconds(extended.get("estimatedRemainingDuration"))
        percent = extended.get("progressPercentage")
        done = float(percent) if isinstance(percent, int | float) and 0 < percent < 100 else None
        return remaining, done

    @classmethod
    def event_fields(cls, job: dict[str, Any] | None) -> dict[str, Any]:
        properties = (job or {}).get("properties") or {}
        extended = properties.get("extendedInfo") or {}
        fields = {name: properties.get(name) for name in (
            "operation", "jobType", "backupManagementType", "entityFriendlyName", "startTime", "endTime", "duration"
        )}
        fields["errors"] = errors_from_job(job)
        fields["tasks"] = list(extended.get("tasksList") or [])
        fields["propertyBag"] = dict(extended.get("propertyBag") or {})
        # The non-localised failure text (every job type's extendedInfo but VaultJob's).
        fields["dynamicErrorMessage"] = extended.get("dynamicErrorMessage") or None
        return fields
