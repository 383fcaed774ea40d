"""What a provider reports about a job or an operation, and the results the tracker concludes itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

__all__ = ["OPERATION_SUCCEEDED", "JobState", "OperationOutcome", "OperationState", "ResultStatus"]

OPERATION_SUCCEEDED = "Succeeded"  # result of an operation that named its jobs: no event of its own


class ResultStatus(StrEnum):
    """Statuses the tracker itself concludes, beside Azure's terminal ones."""

    TIMED_OUT = "TimedOut"
    NOT_FOUND = "NotFound"
    OPERATION_FAILED = "OperationFailed"
    TRACKING_FAILED = "TrackingFailed"  # the tracker itself could not record or publish the job for too long


@dataclass(frozen=True)
class JobState:
    """A job as one read of Azure showed it, mapped by its provider.

    ``status`` is Azure's status in its canonical spelling (or as sent, when the API does not define it);
    ``terminal`` says the job has ended; ``detailed`` is false for a list item, a summary without extendedInfo.
    """

    status: str
    terminal: bool
    resource: dict[str, Any]
    detailed: bool = True


# Where an operation stands: still running, succeeded (it names its jobs), or failed (or was cancelled).
OperationOutcome = Literal["running", "succeeded", "failed"]


@dataclass(frozen=True)
class OperationState:
    """An operation's status, mapped by its provider: still running, succeeded or failed.

    ``job_ids`` are the jobs it names so far (an operation may name its job before it succeeds); ``error`` is
    Azure's error of a failed operation; ``known`` is false for a status the API does not define.
    """

    status: str
    outcome: OperationOutcome
    resource: dict[str, Any]
    job_ids: tuple[Any, ...] = ()
    error: dict[str, Any] = field(default_factory=dict)
    known: bool = True
