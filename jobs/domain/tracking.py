"""What one observation of Azure means for a tracked job or operation: pure decisions, no I/O.

- A job ends when Azure reports a terminal status (Completed, CompletedWithWarnings, Failed, Cancelled).
- A job still unknown to Azure (404) or unreadable (403) after the grace period ends as ``NotFound``, carrying
  Azure's error; within the grace period it is polled again (a new job may be invisible for minutes).
- A job still running at its deadline (``JOBS_MAX_TRACKING_HOURS`` or the message's ``timeoutMinutes``) ends as
  ``TimedOut``.
- An operation names its job(s) once it ``Succeeded``; ``Failed``/``Canceled`` ends it as ``OperationFailed``.
"""

from __future__ import annotations

import functools
import hashlib
import math
from datetime import UTC, datetime, timedelta
from typing import Protocol

from jobs.domain.results import OPERATION_SUCCEEDED, JobState, OperationState, ResultStatus
from jobs.domain.tracked_item import TrackedItem

__all__ = [
    "OPERATION_SUCCEEDED",
    "end_failed_job",
    "end_failed_operation",
    "end_tracking_failed",
    "end_unread",
    "next_poll_at",
    "next_vault_poll_at",
    "observe_job",
    "observe_missing",
    "observe_operation",
]



class ReadError(Protocol):
    """Azure's answer to a read that found nothing it may show (404, 403): its HTTP status, code and message."""

    status: int
    code: str
    message: str

    def as_error(self) -> dict[str, object]: ...


def observe_job(item: TrackedItem, state: JobState, now: datetime) -> bool:
    """Records a job's state; returns whether the state row changed. A terminal status needs a detailed resource."""
    changed = item.status != state.status or item.unknown_since is not None or item.resource is None
    item.status = state.status
    item.unknown_since = None
    item.last_error = None
    item.last_polled_at = now
    item.poll_count += 1
    if state.detailed or item.resource is None:  # a list item is a summary: kept only until details arrive
        item.resource = state.resource
    if state.terminal and state.detailed:
        _end(item, state.status, now)
        return True
    return _check_deadline(item, now) or changed


def observe_missing(item: TrackedItem, error: ReadError, now: datetime, grace_seconds: float) -> bool:
    """Records a 404 or 403; after the grace period the item ends as ``NotFound`` with Azure's error."""
    item.last_polled_at = now
    item.poll_count += 1
    first = item.unknown_since is None
    item.unknown_since = item.unknown_since or now
    item.last_error = {"status": error.status, "code": error.code, "message": error.message}
    if (now - item.unknown_since).total_seconds() >= grace_seconds:
        item.errors = [error.as_error()]
        _end(item, ResultStatus.NOT_FOUND.value, now)
        return True
    return _check_deadline(item, now) or first


def observe_operation(item: TrackedItem, state: OperationState, now: datetime) -> list[str]:
    """Records an operation's state; returns the jobIds it names once it succeeded (else [])."""
    item.last_polled_at = now
    item.poll_count += 1
    item.unknown_since = None
    item.resource = state.resource
    item.status = state.status
    if state.outcome == "succeeded":
        job_ids = [str(job_id) for job_id in state.job_ids if job_id]
        if job_ids:
            _end(item, OPERATION_SUCCEEDED, now)
            return job_ids
        item.errors = [{"code": "OperationNamedNoJob", "message": "the operation succeeded but names no job",
                        "recommendations": []}]
        _end(item, ResultStatus.OPERATION_FAILED.value, now)
        return []
    if state.outcome == "failed":
        end_failed_operation(item, state, now)
        return []
    _check_deadline(item, now)
    return []


def end_failed_operation(item: TrackedItem, state: OperationState, now: datetime) -> None:
    """Ends an operation that failed or was cancelled as ``OperationFailed``, carrying Azure's error."""
    error = state.error
    item.resource = state.resource
    item.status = state.status
    item.errors = [{
        "code": str(error.get("code") or f"Operation{state.status}"),
        "message": str(error.get("message") or f"the operation ended {state.status}"),
        "recommendations": [],
    }]
    _end(item, ResultStatus.OPERATION_FAILED.value, now)


def end_failed_job(item: TrackedItem, code: str, now: datetime) -> None:
    """Ends a job that its operation failed to create (``failedJobsError``) as ``OperationFailed`` with Azure's code:
    Azure will never show it, so it is not polled (``job`` stays null)."""
    item.resource = None
    item.status = ResultStatus.OPERATION_FAILED.value
    item.errors = [{
        "code": code or None,
        "message": f"Azure could not create job {item.job_id}: its operation reported error {code or 'without a code'}",
        "recommendations": ["Check the operation in the vault and trigger the job again."],
    }]
    _end(item, ResultStatus.OPERATION_FAILED.value, now)


def end_tracking_failed(item: TrackedItem, error: Exception, failing_for: float, now: datetime) -> None:
    """Ends an item the tracker could not record or publish for longer than the grace period, saying why.

    The last resource Azure returned is dropped when the failure may be its size (the result must fit where it goes);
    the event then carries ``job: null`` and the error.
    """
    item.errors = [{
        "code": "TrackingFailed",
        "message": f"the tracker could not record this job for {failing_for:.0f} s: {type(error).__name__}: "
                   f"{str(error)[:500]}",
        "recommendations": ["Check the job in the vault; the tracker's log names the error for this tracking id."],
    }]
    item.resource = None
    _end(item, ResultStatus.TRACKING_FAILED.value, now)


def end_unread(item: TrackedItem, error: ReadError, failing_since: datetime, now: datetime) -> bool:
    """Ends an item whose read failed (5xx, a timeout, an unexpected 4xx, a refused credential) at or after its
    deadline as ``TimedOut``, as a read would have; returns whether it ended. Beside the deadline's error,
    ``errors[1]`` is the last read's: Azure's code, and its status and message with when the reads began failing."""
    if not _check_deadline(item, now):
        return False
    item.errors[0]["message"] += f"; its reads have failed since {failing_since:%Y-%m-%dT%H:%M:%SZ}"
    item.errors.append({
        "code": error.code or f"HTTP{error.status}",
        "message": f"the last read failed: {error.status} {error.code}: {error.message}"[:1000],
        "recommendations": ["Check the job in the vault: the tracker could not read it before its deadline."],
    })
    return True


def next_poll_at(item: TrackedItem, now: datetime, poll_seconds: float, max_interval: float) -> datetime:
    """When to ask Azure again: every round while young or unknown, then a tenth of the job's age, capped.

    So the end of a job is learnt within about 10% of its run time, and a long job costs few reads.
    """
    if item.unknown_since is not None:
        delay = poll_seconds
    else:
        age = (now - item.created_at).total_seconds()
        delay = min(max(age / 10, poll_seconds), max(poll_seconds, max_interval))
    return min(now + timedelta(seconds=delay), max(item.deadline_at, now))


def next_vault_poll_at(item: TrackedItem, now: datetime, poll_seconds: float, interval: float) -> datetime:
    """When to ask again under vault rounds: the next point of the vault's own grid, every ``interval`` seconds.

    Every job of a vault shares the grid (points ``interval`` apart from the epoch, shifted by a stable hash of the
    vault in whole rounds so that vaults spread over the rounds), so they all fall due in the same round and one
    list of the vault's jobs answers for them all. A job Azure does not show (yet) is asked about every round, so
    that the grace period ends on time.
    """
    if item.unknown_since is not None or item.status is None:
        return min(now + timedelta(seconds=poll_seconds), max(item.deadline_at, now))
    return min(vault_grid_after(item.vault.key, now, poll_seconds, interval), max(item.deadline_at, now))


def vault_grid_after(vault_key: str, now: datetime, poll_seconds: float, interval: float) -> datetime:
    """The first point of the vault's grid strictly after ``now`` (see ``next_vault_poll_at``)."""
    step = max(float(poll_seconds), float(interval))
    rounds = max(1, int(step // max(1.0, float(poll_seconds))))
    offset = (_vault_hash(vault_key) % rounds) * float(poll_seconds)
    since_epoch = now.timestamp() - offset
    point = (math.floor(since_epoch / step) + 1) * step + offset
    return datetime.fromtimestamp(point, tz=now.tzinfo or UTC)


@functools.lru_cache(maxsize=4096)
def _vault_hash(vault_key: str) -> int:
    return int.from_bytes(hashlib.sha256(vault_key.encode("utf-8")).digest()[:4], "big")


def _check_deadline(item: TrackedItem, now: datetime) -> bool:
    if item.ended or now < item.deadline_at:
        return False
    hours = (item.deadline_at - item.created_at).total_seconds() / 3600
    item.errors = [{
        "code": "TrackingTimedOut",
        "message": f"the job was still {item.status or 'unknown'} after {hours:g} hours of tracking",
        "recommendations": ["Check the job in the vault; track it again to wait longer."],
    }]
    _end(item, ResultStatus.TIMED_OUT.value, now)
    return True


def _end(item: TrackedItem, result_status: str, now: datetime) -> None:
    item.result_status = result_status
    item.ended_at = now
