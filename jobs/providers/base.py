"""The provider seam: everything that differs between Azure's kinds of backup vault.

A provider owns one resource provider namespace, or a vault's jobs in its secondary region (``cross_region``):
``recovery_services``, ``cross_region_restore`` and ``data_protection`` (Backup vaults); a further kind is one more
module and one line in ``jobs.providers.PROVIDERS``. The intake, store, poll round, publisher and delivery call only
this interface, through ``jobs.providers``, and never name a provider.

What needs no settings (references, ids, mapping, the Resource Graph query) is a class method: the registry's
module-level functions use the classes themselves. Reads need the api-version, so they are methods of an instance
that ``jobs.providers.Providers`` builds from the settings (``api_version_setting``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, ClassVar, Protocol

from jobs.arm import ArmClient
from jobs.domain.references import JobRef, OperationRef, VaultRef
from jobs.domain.results import JobState, OperationState

__all__ = ["Provider"]


class Provider(Protocol):
    """What a vault kind must implement. References are validated here before any of their parts reaches a URL."""

    namespace: ClassVar[str]  # the ARM resource provider, e.g. "Microsoft.RecoveryServices"
    vault_type: ClassVar[str]  # the vault's resource type in ids, e.g. "vaults"
    # Whether it serves a vault's jobs in its secondary region (references carry ``VaultRef.region``): one provider
    # per (namespace, cross_region) pair.
    cross_region: ClassVar[bool]
    # The setting that holds the api-version of its reads, its default, and one line for the settings table.
    api_version_setting: ClassVar[str]
    default_api_version: ClassVar[str]
    api_version_doc: ClassVar[str]
    api_version: str  # of this instance: the setting's value

    def __init__(self, api_version: str | None = None) -> None: ...

    # -- references ---------------------------------------------------------------------------------------------
    @classmethod
    def parse_vault_id(cls, resource_id: object, field: str = "vaultId") -> VaultRef: ...

    @classmethod
    def vault_from_parts(cls, subscription_id: object, resource_group: object, name: object) -> VaultRef: ...

    @classmethod
    def parse_job_id(cls, resource_id: object, field: str = "jobResourceId") -> JobRef: ...

    @classmethod
    def job_resource_id(cls, job: JobRef) -> str:
        """The job's ARM id as Azure writes it (the event's ``jobResourceId``)."""
        ...

    @classmethod
    def recognises_operation_url(cls, url: str) -> bool:
        """Whether ``url``'s path has this provider's shape (a cheap look; ``parse_operation_url`` validates)."""
        ...

    @classmethod
    def parse_operation_url(
        cls, url: object, arm_endpoint: str, field: str = "operationUrl", vault: VaultRef | None = None
    ) -> OperationRef:
        """An ``Azure-AsyncOperation`` or ``Location`` URL of a trigger call, only on ``arm_endpoint`` (or, for a
        secondary region's operation, its regional host). ``vault`` is what the message gave alongside, for URLs
        that name no vault."""
        ...

    @classmethod
    def vault_operation(cls, vault: VaultRef, operation_id: object, field: str = "operation.id") -> OperationRef:
        """The vault-level status of an operation known only by its id (an operation-status body)."""
        ...

    # -- reads (each one ARM read through the shared client and its budget, at ``self.api_version``) ----------
    def get_job(self, arm: ArmClient, job: JobRef) -> dict[str, Any]:
        """The job with everything a result needs (Recovery Services: extendedInfo)."""
        ...

    def list_jobs(self, arm: ArmClient, vault: VaultRef, filter: str | None = None) -> Iterator[dict[str, Any]]: ...

    def list_running_jobs(
        self, arm: ArmClient, vault: VaultRef, since: datetime, now: datetime
    ) -> dict[str, dict[str, Any]]:
        """The vault's running jobs started since ``since``, by lower-case job id (summaries, not details)."""
        ...

    # Whether the poll worker may use ``list_running_jobs`` in place of a GET per due job (the poll policy then
    # decides when): False where the list cannot be filtered and costs more than it saves (Backup vaults).
    lists_running_jobs: ClassVar[bool]

    def list_recent_jobs(self, arm: ArmClient, vault: VaultRef, since: datetime, now: datetime) -> list[dict[str, Any]]:
        """The vault's jobs that started since ``since`` (at most 30 days back), whatever their status, as summaries
        (``job_state(..., detailed=False)`` reads them; each has ``name``, the job id, and its start and end):
        what a watch discovers (``jobs.flows.watches``). A list read through ``arm`` (its pages), never a GET each."""
        ...

    def get_operation(self, arm: ArmClient, operation: OperationRef) -> dict[str, Any]: ...

    # -- Resource Graph (``jobs.providers.graph``): the query of its own table, and reading its rows -----------
    resource_graph: ClassVar[bool]  # whether Resource Graph holds this kind's jobs (else the rest is not asked)

    @classmethod
    def ended_jobs_query(cls, job_ids: Sequence[str]) -> str:
        """KQL for the jobs among ``job_ids`` (lower-case GUIDs) that Resource Graph shows as ended, projecting
        ``id``."""
        ...

    @classmethod
    def job_of_row(cls, row: dict[str, Any]) -> tuple[str, str] | None:
        """``(vault locator, job id)``, lower-case, of a row of that query; ``None`` for a row it cannot read."""
        ...

    # -- mapping ------------------------------------------------------------------------------------------------
    @classmethod
    def job_state(cls, resource: dict[str, Any], *, detailed: bool = True) -> JobState: ...

    @classmethod
    def operation_state(cls, operation: dict[str, Any]) -> OperationState: ...

    @classmethod
    def failed_jobs(cls, operation: dict[str, Any] | None) -> dict[str, str]:
        """Jobs an operation names but Azure failed to create, by lower-case job id, with Azure's error code."""
        ...

    @classmethod
    def event_type(cls, result_status: str) -> str:
        """The CloudEvents ``type`` for a result status (Azure's terminal ones and the tracker's own)."""
        ...

    @classmethod
    def event_subject(cls, job_id: str | None, operation_id: str) -> str:
        """The CloudEvents ``subject``: the job's, or that of an operation that never named a job."""
        ...

    @classmethod
    def event_fields(cls, job: dict[str, Any] | None) -> dict[str, Any]:
        """``jobs.domain.events.JOB_FIELDS`` of the event, from the job as Azure returned it (or ``None``)."""
        ...

    @classmethod
    def progress(cls, job: dict[str, Any] | None) -> tuple[float | None, float | None]:
        """What Azure says of a running job's progress, where it says it (Recovery Services: a VM job's detailed
        ``extendedInfo``): ``(estimated remaining seconds, percent done)``, each ``None`` when not said."""
        ...

    @classmethod
    def reference_fields(cls, vault: VaultRef) -> dict[str, Any]:
        """Fields the event's ``data`` carries about where the job ran (e.g. ``crossRegionRestore``); often none."""
        ...
