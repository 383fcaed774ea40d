"""Cross-region restore (CRR) jobs: a Recovery Services vault's restores to its secondary region, read on that
region's passive stamp.

A CRR job belongs to a Recovery Services vault but is not under it in ARM: Azure's passive stamp (bms.json of
``specification/recoveryservicesbackup/resource-manager/Microsoft.RecoveryServices/RecoveryServicesBackupCrr``,
stable 2023-01-15) serves it at the subscription's ``locations/{region}``:

- ``POST .../locations/{region}/backupCrossRegionRestore`` (CrossRegionRestore_Trigger) answers 202 with
  ``Azure-AsyncOperation: https://{region}.management.azure.com/.../locations/{region}/backupCrrOperationsStatus/{id}``
  whose id is base64, not a GUID (TriggerCrossRegionRestore_Post.json);
- ``GET .../backupCrrOperationsStatus/{id}`` (CrrOperationStatus_Get): an ``OperationStatus`` whose
  ``properties.jobId`` names the job;
- ``POST .../locations/{region}/backupCrrJob`` with ``{"resourceId": <vault id>, "jobName": <jobId>}``
  (BackupCrrJobDetails_Get) and ``POST .../backupCrrJobs?$filter=...`` with ``{"resourceId": <vault id>}``
  (BackupCrrJobs_List, the same ``JobQueryObject`` filter as BackupJobs_List): reads, though POSTs.

Here the references carry the region (``VaultRef.region``), so the registry finds this provider from what the store
keeps; the api-version is the passive stamp's (``JOBS_CRR_API_VERSION``); the job model, its statuses and its event
fields are Recovery Services' own (the passive stamp returns the same ``JobResource``). Like azure-cli
(``track_backup_crr_operation``), the operation's status is read on ``ARM_ENDPOINT`` at a path rebuilt from the
validated region and id; the regional host is accepted in an operation URL and in a list's ``nextLink``, and
nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from jobs.arm import ArmClient
from jobs.arm.client import is_loopback_endpoint
from jobs.domain.references import InvalidReference, JobRef, OperationRef, VaultRef, check_guid, check_region, show
from jobs.domain.results import JobState, OperationState
from jobs.providers import recovery_services as rs

__all__ = [
    "DEFAULT_API_VERSION",
    "NAMESPACE",
    "PASSIVE_STAMP_API_VERSIONS",
    "CrossRegionRestore",
    "check_operation_id",
    "crr_operation",
]

NAMESPACE = rs.NAMESPACE
# The passive stamp's GA api-version: the tag package-passivestamp-2023-01-15 of its readme.md and the version of
# RecoveryServicesBackupCrr/stable/2023-01-15/bms.json. 2026-07-15 (TypeSpec) is in the specs but may not be live.
DEFAULT_API_VERSION = "2023-01-15"
# Every api-version the passive stamp has had (docs/fidelity.md says which were checked).
PASSIVE_STAMP_API_VERSIONS = ("2018-12-20", "2021-11-15", "2023-01-15", "2026-07-15")

# A CRR operation id: base64 ("MTMzMDgz...MGYw=", TriggerCrossRegionRestore_Post.json), standard or URL-safe.
_OPERATION_ID = re.compile(r"^[A-Za-z0-9+/_-]{4,1024}={0,2}$")
_OPERATION_KINDS = ("backupcrroperationsstatus", "backupcrroperationresults")


def check_operation_id(field: str, value: object) -> str:
    """A CRR operation id (base64, as Azure writes it), or ``InvalidReference`` naming ``field``."""
    if not isinstance(value, str) or not _OPERATION_ID.fullmatch(value):
        raise InvalidReference(f"{field} {show(value)} is not a cross-region restore operation id (base64)")
    return value


def _location_path(vault: VaultRef) -> str:
    if not vault.region:
        raise InvalidReference("a cross-region restore needs the vault's secondary region (crossRegionRestore.region)")
    return (
        f"/subscriptions/{quote(vault.subscription_id, safe='')}/providers/{NAMESPACE}/locations/"
        f"{quote(vault.region, safe='')}"
    )


def crr_operation(vault: VaultRef, operation_id: object, field: str = "operation.id") -> OperationRef:
    """``.../locations/{region}/backupCrrOperationsStatus/{id}`` of a vault's secondary region."""
    operation_id = check_operation_id(field, operation_id)
    path = f"{_location_path(vault)}/backupCrrOperationsStatus/{quote(operation_id, safe='')}"
    return OperationRef(vault, operation_id, path)


def _regional_host(host: str, endpoint_host: str) -> bool:
    """Whether ``host`` is ``{region}.{endpoint_host}`` for a well-formed region name."""
    prefix, dot, rest = host.partition(".")
    if not dot or rest != endpoint_host:
        return False
    try:
        check_region("host", prefix)
    except InvalidReference:
        return False
    return True


def parse_operation_url(
    url: object, arm_endpoint: str, field: str = "operationUrl", vault: VaultRef | None = None
) -> OperationRef:
    """A CRR ``Azure-AsyncOperation`` (``backupCrrOperationsStatus``) or ``Location`` (``backupCrrOperationResults``)
    URL, on ``ARM_ENDPOINT`` or its regional host, for ``vault`` (the URL names none: it must come alongside)."""
    parts = rs.split_url(url, field)
    endpoint_host = (urlsplit(arm_endpoint).hostname or "").lower()
    regional = None if is_loopback_endpoint(arm_endpoint) else _regional_host
    if not rs.same_origin(parts, arm_endpoint, regional):
        raise InvalidReference(
            f"{field} must point at ARM_ENDPOINT ({arm_endpoint}) or its regional host ({{region}}.{endpoint_host}); "
            "the tracker sends its Azure token nowhere else"
        )
    segments = parts.path.split("/")
    if segments and segments[-1] == "":
        segments = segments[:-1]
    decoded = []
    for segment in segments:
        try:
            decoded.append(unquote(segment, errors="strict"))
        except UnicodeDecodeError:
            raise InvalidReference(f"{field} has a path segment that is not UTF-8 once decoded") from None
    if (
        len(decoded) != 9
        or decoded[0] != ""
        or [decoded[i].lower() for i in (1, 3, 5)] != ["subscriptions", "providers", "locations"]
        or decoded[4].lower() != NAMESPACE.lower()
        or decoded[7].lower() not in _OPERATION_KINDS
    ):
        raise InvalidReference(
            f"{field} is not a cross-region restore operation (expected /subscriptions/<guid>/providers/"
            "Microsoft.RecoveryServices/locations/<region>/backupCrrOperationsStatus/<id>)"
        )
    subscription = check_guid(f"{field} subscription", decoded[2])
    region = check_region(f"{field} region", decoded[6])
    operation_id = check_operation_id(f"{field} operation id", decoded[8])
    if vault is None:
        raise InvalidReference(
            f"{field} is a cross-region restore operation (backupCrrOperationsStatus), which names no vault: give "
            "vaultId (or subscriptionId, resourceGroup and vaultName) alongside, for the job's reads"
        )
    if vault.subscription_id.lower() != subscription:
        raise InvalidReference(f"{field} is in subscription {subscription}, not in that of vaultId ({vault.id})")
    if vault.region and vault.region != region:
        raise InvalidReference(
            f"crossRegionRestore.region {vault.region!r} is not the region of {field} ({region!r})"
        )
    return crr_operation(vault.in_region(region), operation_id, f"{field} operation id")


class CrossRegionRestore:
    """The ``jobs.providers.base.Provider`` of a Recovery Services vault's jobs in its secondary region."""

    namespace = NAMESPACE
    vault_type = "vaults"
    cross_region = True
    lists_running_jobs = True  # list_running_jobs filters on status: one list may replace a GET per job
    api_version_setting = "JOBS_CRR_API_VERSION"
    default_api_version = DEFAULT_API_VERSION
    api_version_doc = ("api-version of the cross-region restore calls (`backupCrrJob`, `backupCrrJobs`, "
                       "`backupCrrOperationsStatus`): the passive stamp is a service of its own, with its own versions "
                       "(2018-12-20, 2021-11-15, 2023-01-15; 2026-07-15 is in the specs but may not be live); the "
                       "active stamp's, such as `2025-08-01`, are refused")

    def __init__(self, api_version: str | None = None) -> None:
        self.api_version = api_version or self.default_api_version

    # references
    @classmethod
    def parse_vault_id(cls, resource_id: object, field: str = "vaultId") -> VaultRef:
        return rs.parse_vault_id(resource_id, field)

    @classmethod
    def vault_from_parts(cls, subscription_id: object, resource_group: object, name: object) -> VaultRef:
        return rs.vault_from_parts(subscription_id, resource_group, name)

    @classmethod
    def parse_job_id(cls, resource_id: object, field: str = "jobResourceId") -> JobRef:
        raise InvalidReference(
            f"{field}: a cross-region restore job's id names no vault; give jobId, vaultId and crossRegionRestore"
        )

    @classmethod
    def job_resource_id(cls, job: JobRef) -> str:
        """The location-scoped id Azure gives a CRR job (GetCrrJob_Post.json):
        ``/subscriptions/<sub>/providers/Microsoft.RecoveryServices/locations/<region>/backupJobs/<jobId>``."""
        vault = job.vault
        return (f"/subscriptions/{vault.subscription_id}/providers/{vault.namespace}/locations/{vault.region}"
                f"/{rs.JOBS}/{job.job_id}")

    @classmethod
    def recognises_operation_url(cls, url: str) -> bool:
        try:
            path = urlsplit(url).path.lower() if isinstance(url, str) else ""
        except ValueError:
            return False
        return any(f"/{kind}/" in path for kind in _OPERATION_KINDS)

    @classmethod
    def parse_operation_url(
        cls, url: object, arm_endpoint: str, field: str = "operationUrl", vault: VaultRef | None = None
    ) -> OperationRef:
        return parse_operation_url(url, arm_endpoint, field, vault)

    @classmethod
    def vault_operation(cls, vault: VaultRef, operation_id: object, field: str = "operation.id") -> OperationRef:
        return crr_operation(vault, operation_id, field)

    # reads: POSTs with the vault in the body, counted in the read budget like any GET
    def get_job(self, arm: ArmClient, job: JobRef) -> dict[str, Any]:
        """BackupCrrJobDetails_Get: the JobResource (with extendedInfo) from the secondary region."""
        vault = job.vault
        return arm.post_json(
            f"{_location_path(vault)}/backupCrrJob", {"api-version": self.api_version}, vault.subscription_id,
            {"resourceId": vault.id, "jobName": job.job_id},
        )

    def list_jobs(self, arm: ArmClient, vault: VaultRef, filter: str | None = None) -> Iterator[dict[str, Any]]:
        """BackupCrrJobs_List: the vault's CRR jobs (summaries), page after page through ``nextLink``."""
        query = {"api-version": self.api_version}
        if filter:
            query["$filter"] = filter
        return arm.iter_post_pages(
            f"{_location_path(vault)}/backupCrrJobs", query, vault.subscription_id, {"resourceId": vault.id},
            region=vault.region,
        )

    def list_running_jobs(
        self, arm: ArmClient, vault: VaultRef, since: datetime, now: datetime
    ) -> dict[str, dict[str, Any]]:
        """The InProgress CRR jobs in ``recovery_services.list_window`` (the same JobQueryObject filter)."""
        return {str(r.get("name") or "").lower(): r for r in self.list_jobs(arm, vault, rs.running_filter(since, now))}

    def list_recent_jobs(self, arm: ArmClient, vault: VaultRef, since: datetime, now: datetime) -> list[dict[str, Any]]:
        """BackupCrrJobs_List of the CRR jobs started in ``recovery_services.recent_filter`` (the same filter)."""
        return list(self.list_jobs(arm, vault, rs.recent_filter(since, now)))

    def get_operation(self, arm: ArmClient, operation: OperationRef) -> dict[str, Any]:
        """CrrOperationStatus_Get on ARM_ENDPOINT (as azure-cli reads it)."""
        return arm.get_json(operation.path(), {"api-version": self.api_version}, operation.vault.subscription_id)

    # Resource Graph: not asked for the secondary region's jobs (their vault's schedule finds them)
    resource_graph = False

    @classmethod
    def ended_jobs_query(cls, job_ids: Sequence[str]) -> str:
        raise NotImplementedError("Resource Graph is not asked for cross-region restore jobs")

    @classmethod
    def job_of_row(cls, row: dict[str, Any]) -> tuple[str, str] | None:
        return None

    # mapping: the same JobResource and OperationStatus models as Recovery Services
    @classmethod
    def job_state(cls, resource: dict[str, Any], *, detailed: bool = True) -> JobState:
        return rs.RecoveryServices.job_state(resource, detailed=detailed)

    @classmethod
    def operation_state(cls, operation: dict[str, Any]) -> OperationState:
        return rs.RecoveryServices.operation_state(operation)

    @classmethod
    def failed_jobs(cls, operation: dict[str, Any] | None) -> dict[str, str]:
        return rs.RecoveryServices.failed_jobs(operation)

    @classmethod
    def event_type(cls, result_status: str) -> str:
        return rs.RecoveryServices.event_type(result_status)

    @classmethod
    def event_subject(cls, job_id: str | None, operation_id: str) -> str:
        return rs.RecoveryServices.event_subject(job_id, operation_id)

    @classmethod
    def event_fields(cls, job: dict[str, Any] | None) -> dict[str, Any]:
        return rs.RecoveryServices.event_fields(job)

    @classmethod
    def progress(cls, job: dict[str, Any] | None) -> tuple[float | None, float | None]:
        return rs.RecoveryServices.progress(job)

    @classmethod
    def reference_fields(cls, vault: VaultRef) -> dict[str, Any]:
        """``data.crossRegionRestore``: how a consumer tells a CRR job's event, and where it ran."""
        return {"crossRegionRestore": {"region": vault.region}}
