"""Job statuses as Azure reports them, and the result types the tracker publishes."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "JOB_TYPES",
    "RUNNING_STATUSES",
    "TERMINAL_STATUSES",
    "JobStatus",
    "OperationStatus",
    "ResultStatus",
    "event_type",
    "normalise_job_status",
    "normalise_operation_status",
]


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


class ResultStatus(StrEnum):
    """Statuses the tracker itself concludes, beside Azure's terminal ones."""

    TIMED_OUT = "TimedOut"
    NOT_FOUND = "NotFound"
    OPERATION_FAILED = "OperationFailed"


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


def event_type(status: str) -> str:
    """The CloudEvents ``type`` for a terminal status: ``BackupJob.<status>``."""
    return f"BackupJob.{status}"
