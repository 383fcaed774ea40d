"""The provider seam: everything that differs between Azure's kinds of backup vault.

A provider owns one resource provider namespace, or a vault's jobs in its secondary region (``cross_region``):
``recovery_services`` and ``cross_region_restore`` today; ``Microsoft.DataProtection`` Backup vaults would be one more
module. The intake, store, poll round, publisher and
delivery call only this interface, through ``jobs.providers``, and never name a provider.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol

from jobs.arm import ArmClient
from jobs.domain.references import JobRef, OperationRef, VaultRef
from jobs.domain.results import JobState, OperationState

__all__ = ["Provider"]


class Provider(Protocol):
    """What a vault kind must implement. References are validated here before any of their parts reaches a URL."""

    namespace: str  # the ARM resource provider, e.g. "Microsoft.RecoveryServices"
    vault_type: str  # the vault's resource type in ids, e.g. "vaults"
    # Whether it serves a vault's jobs in its secondary region (references carry ``VaultRef.region``): one provider
    # per (namespace, cross_region) pair.
    cross_region: bool
    api_version: str

    # -- references ---------------------------------------------------------------------------------------------
    def parse_vault_id(self, resource_id: object, field: str = "vaultId") -> VaultRef: ...

    def vault_from_parts(self, subscription_id: object, resource_group: object, name: object) -> VaultRef: ...

    def parse_job_id(self, resource_id: object, field: str = "jobResourceId") -> JobRef: ...

    def recognises_operation_url(self, url: str) -> bool:
        """Whether ``url``'s path has this provider's shape (a cheap look; ``parse_operation_url`` validates)."""
        ...

    def parse_operation_url(
        self, url: object, arm_endpoint: str, field: str = "operationUrl", vault: VaultRef | None = None
    ) -> OperationRef:
        """An ``Azure-AsyncOperation`` or ``Location`` URL of a trigger call, only on ``arm_endpoint`` (or, for a
        secondary region's operation, its regional host). ``vault`` is what the message gave alongside, for URLs
        that name no vault."""
        ...

    def vault_operation(self, vault: VaultRef, operation_id: object, field: str = "operation.id") -> OperationRef:
        """The vault-level status of an operation known only by its id (an operation-status body)."""
        ...

    # -- reads (each one ARM read through the shared client and its budget) --------------------------------------
    def get_job(self, arm: ArmClient, job: JobRef) -> dict[str, Any]:
        """The job with everything a result needs (Recovery Services: extendedInfo)."""
        ...

    def list_jobs(self, arm: ArmClient, vault: VaultRef, filter: str | None = None) -> Iterator[dict[str, Any]]: ...

    def list_running_jobs(
        self, arm: ArmClient, vault: VaultRef, since: datetime, now: datetime
    ) -> dict[str, dict[str, Any]]:
        """The vault's running jobs started since ``since``, by lower-case job id (summaries, not details)."""
        ...

    def get_operation(self, arm: ArmClient, operation: OperationRef) -> dict[str, Any]: ...

    # -- mapping ------------------------------------------------------------------------------------------------
    def job_state(self, resource: dict[str, Any], *, detailed: bool = True) -> JobState: ...

    def operation_state(self, operation: dict[str, Any]) -> OperationState: ...

    def failed_jobs(self, operation: dict[str, Any] | None) -> dict[str, str]:
        """Jobs an operation names but Azure failed to create, by lower-case job id, with Azure's error code."""
        ...

    def event_type(self, result_status: str) -> str:
        """The CloudEvents ``type`` for a result status (Azure's terminal ones and the tracker's own)."""
        ...

    def event_fields(self, job: dict[str, Any] | None) -> dict[str, Any]:
        """``jobs.domain.events.JOB_FIELDS`` of the event, from the job as Azure returned it (or ``None``)."""
        ...

    def reference_fields(self, vault: VaultRef) -> dict[str, Any]:
        """Fields the event's ``data`` carries about where the job ran (e.g. ``crossRegionRestore``); often none."""
        ...
