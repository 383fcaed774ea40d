"""The tracked job itself: what the tracker knows of a job (or of an operation that has not named its job yet),
its subscribers, and its row in the running index. The store maps these to and from table entities.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobs.domain.references import JobRef, OperationRef, VaultRef

__all__ = ["IndexEntry", "Subscriber", "SubscriberRecord", "TrackedItem"]


@dataclass(frozen=True)
class Subscriber:
    """What one message adds beside the job: none of the three fields makes the default subscriber."""

    correlation_id: str | None = None
    context: dict[str, Any] | None = None
    callback_url: str | None = field(default=None, repr=False)
    # The watch that found the job (``jobs.flows.watches``): its subscriber is a subscriber of its own, so a job both
    # watched and handed in is reported once to each; the event says so in ``data.watch``.
    watch: str | None = None

    @property
    def key(self) -> str:
        if self.correlation_id is None and self.context is None and self.callback_url is None and self.watch is None:
            return "default"
        fields: list[object] = [self.correlation_id, self.context, self.callback_url]
        if self.watch is not None:  # keys of handed-in subscribers stay as they were
            fields.append({"watch": self.watch})
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]


@dataclass
class TrackedItem:
    """A job (``kind='job'``) or an operation that has not named its job yet, as the tracker follows it."""

    tracking_id: str
    kind: str
    vault_id: str  # ``VaultRef.locator``: the vault id, with ``@<region>`` for a job of its secondary region
    created_at: datetime
    deadline_at: datetime
    job_id: str | None = None
    operation_id: str | None = None
    operation_path: str | None = None
    status: str | None = None
    result_status: str | None = None
    ended_at: datetime | None = None
    last_polled_at: datetime | None = None
    unknown_since: datetime | None = None
    last_error: dict[str, Any] | None = None
    failing_since: datetime | None = None  # the tracker's own failures (Table, queue, event), not Azure's answers
    resource: dict[str, Any] | None = None
    errors: list[dict[str, Any]] | None = None
    named_jobs: list[str] | None = None
    poll_count: int = 0
    # Who told the tracker first that the job ended ("detector", "list" or "get"), and how long after Azure's
    # endTime: the detector's measure (jobs.flows.detector_health).
    learned_from: str | None = None
    learned_lag_seconds: float | None = None
    # The earliest the tracker expects the job to end (``jobs.flows.end_hints``): while it is far off, the job's
    # vault need not be listed every round.
    expected_end_at: datetime | None = None
    etag: str | None = field(default=None, repr=False)

    @property
    def ended(self) -> bool:
        return self.result_status is not None

    @property
    def vault(self) -> VaultRef:
        return VaultRef.from_locator(self.vault_id)

    def job_ref(self) -> JobRef:
        return JobRef.create(self.vault, self.job_id)

    def operation_ref(self) -> OperationRef:
        return OperationRef(vault=self.vault, operation_id=str(self.operation_id), arm_path=str(self.operation_path))

    @classmethod
    def for_job(cls, job: JobRef, now: datetime, deadline: datetime) -> TrackedItem:
        return cls(tracking_id=job.key, kind="job", vault_id=job.vault.locator, job_id=job.job_id, created_at=now,
                   deadline_at=deadline)

    @classmethod
    def for_operation(cls, operation: OperationRef, now: datetime, deadline: datetime) -> TrackedItem:
        return cls(tracking_id=operation.key, kind="operation", vault_id=operation.vault.locator,
                   operation_id=operation.operation_id, operation_path=operation.path(), created_at=now,
                   deadline_at=deadline)


@dataclass
class SubscriberRecord:
    key: str
    subscriber: Subscriber
    added_at: datetime
    published_status: str | None = None


@dataclass
class IndexEntry:
    """A running job's row in the running index: all the poll round reads."""

    tracking_id: str
    kind: str
    vault_id: str  # ``VaultRef.locator``, as in ``TrackedItem``
    subscription_id: str
    next_poll_at: datetime
    lease: str = ""  # the token of the round that handed it out, until a worker has polled it
