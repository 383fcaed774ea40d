"""Simulated Recovery Services state: vaults, jobs (lifecycle + JobResource payloads), operations, $filter, paging.

Lifecycles run on the simulator's ``clock`` (seconds, monotonic or virtual); the timestamps inside payloads are the
``wall_clock`` reading taken when the job was created plus the elapsed clock time.

Choices where Azure leaves room (documented here, relied on by tests):
- A running job carries no ``endTime`` (as GetJobDetails.json / ListJobs.json show), not ``0001-01-01``.
- ``duration`` is ISO 8601 (``PT9.8782791S``) for every jobType, as the newer spec examples show.
- ``extendedInfo.estimatedRemainingDuration`` is a .NET TimeSpan string (``00:01:05``): the spec types it as a plain
  string, unlike ``duration`` (format: duration). Not verified.
- ``actionsInfo`` is ``[1]`` (``JobSupportedAction`` Cancellable as an integer) on Backup/Restore jobs, terminal ones
  too, as seed-job-response.json (a Completed IaaS VM job recorded from Azure) shows.
- ``duration`` of IaaS VM jobs is the .NET TimeSpan form (``00:20:23.0896697``, seed-job-response.json); other job
  types keep ISO 8601 (GetJobDetails.json of 2026-11-01). Which types use which form is not verified.
- IaaS VM jobs carry ``containerName``, ``isUserTriggered`` and ``extendedInfo.internalPropertyBag``, and their tasks
  the ``AzureIaaSVMJobTaskDetails`` fields (bms.json 2026-11-01): startTime, endTime, instanceId,
  progressPercentage, taskExecutionDetails. A failed job's extendedInfo carries ``dynamicErrorMessage`` (every
  type's ``*JobExtendedInfo`` but VaultJob's). Values are plausible, not verified.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import random
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from . import _catalog as cat
from ._formats import (
    CLIENT_FILTER_DATE,
    MIN_DATE_OPERATION,
    MIN_DATE_TASK,
    dotnet_timespan,
    dotnet_url_encode,
    format_timestamp,
    iso_duration,
    parse_filter_date,
    ticks_of,
    timespan_string,
)

PAYLOADS = Path(__file__).with_name("payloads")


@cache
def _load(name: str) -> dict[str, Any]:
    with (PAYLOADS / name).open(encoding="utf-8") as fh:
        return json.load(fh)


def template(name: str) -> dict[str, Any]:
    """A deep copy of a fixture (payloads/ holds verbatim copies of shared/fixtures)."""
    return copy.deepcopy(_load(name))


def _api_version_of(url: str) -> str:
    match = re.search(r"api-version=([0-9A-Za-z-]+)", url)
    return match.group(1) if match else "2016-12-01"


# Values that the real service writes and that we take from the fixtures rather than invent.
TRIGGER_API_VERSION = _api_version_of(
    _load("TriggerBackup_Post.json")["responses"]["202"]["headers"]["Azure-AsyncOperation"]
)  # 2016-12-01
RESTORE_API_VERSION = _api_version_of(
    _load("TriggerRestore_RestoreDisks_IaasVMRestoreRequest.json")["responses"]["202"]["headers"]["Location"]
)  # 2020-09-01
TRIGGER_RETRY_AFTER = int(_load("TriggerBackup_Post.json")["responses"]["202"]["headers"]["Retry-After"])  # 60
NEXT_LINK_API_VERSION = _api_version_of(
    _load("ListJobsWithStartTimeAndEndTimeFilters.json")["responses"]["200"]["body"]["nextLink"]
)  # 2017-07-01
JOB_RESOURCE_TYPE = _load("GetJobDetails.json")["responses"]["200"]["body"]["type"]
OPERATION_OBJECT_TYPE = _load("ProtectedItemOperationStatus.json")["responses"]["200"]["body"]["properties"][
    "objectType"
]
assert _load("ProtectedItem_Delete_OperationStatus.json")["responses"]["200"]["body"]["endTime"] == MIN_DATE_OPERATION


@dataclass
class JobScript:
    """How one simulated job behaves. Times are seconds on the simulator's ``clock``."""

    job_type: str = "AzureIaaSVMJob"
    operation: str = "Backup"
    final_status: str = "Completed"
    duration: float = 5.0
    not_found_for: float = 0.0
    entity_friendly_name: str | None = None
    job_id: str | None = None
    cancelling_for: float = 0.0
    # Entries added to ``extendedInfo.propertyBag`` (e.g. one very large value, for the queue size limits).
    property_bag: dict[str, str] = field(default_factory=dict)
    # JobDetails_Get answers 500 CloudInternalError for this long once the job is visible (seen for fresh jobs).
    internal_error_for: float = 0.0
    user_triggered: bool = True  # isUserTriggered of IaaS VM jobs: on demand (True) or scheduled
    # How far off Azure's own estimate of a VM job's length is: ``estimatedRemainingDuration`` counts down from
    # ``duration * estimate_error`` (1: exact; Azure's accuracy is not documented, the bench draws it).
    estimate_error: float = 1.0
    # Backup vault jobs (``_dpp``): the data source (blob, disk, aks, postgresql, mysql, adls, postgresql-single;
    # None: disk) and the status vocabulary ("spec": Started/Succeeded as the examples show; "described":
    # InProgress/Completed as the spec's description says).
    data_source: str | None = None
    status_words: str = "spec"

    def validate(self) -> None:
        if self.job_type not in cat.JOB_TYPES:
            raise ValueError(f"job_type must be one of {', '.join(cat.JOB_TYPES)}, not {self.job_type!r}")
        if self.final_status not in cat.TERMINAL_STATUSES:
            raise ValueError(
                f"final_status must be one of {', '.join(cat.TERMINAL_STATUSES)}, not {self.final_status!r}"
            )
        if not self.operation or not isinstance(self.operation, str):
            raise ValueError("operation must be a non-empty string")
        for name in ("duration", "not_found_for", "cancelling_for", "internal_error_for", "estimate_error"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value < 0 or math.isnan(value):
                raise ValueError(f"{name} must be a number >= 0, not {value!r}")
        if self.job_id is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", self.job_id):
            raise ValueError(f"job_id {self.job_id!r} is not usable in a URL path segment")
        if not isinstance(self.property_bag, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.property_bag.items()
        ):
            raise ValueError("property_bag must map strings to strings")


@dataclass
class FaultConfig:
    """Transient failures injected into ARM (non-control) requests. Rates are probabilities per request."""

    throttle: bool = False
    bucket_size: int = 250
    refill_per_second: float = 25.0
    rate_429: float = 0.0
    retry_after_seconds: int = 1
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_reset: float = 0.0
    rate_truncated: float = 0.0
    rate_slow: float = 0.0
    slow_seconds: float = 0.0
    only_on_cue: int = 0

    def validate(self) -> None:
        for name in ("rate_429", "rate_500", "rate_503", "rate_reset", "rate_truncated", "rate_slow"):
            value = getattr(self, name)
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be within 0..1, not {value!r}")
        if self.rate_429 + self.rate_500 + self.rate_503 + self.rate_reset + self.rate_truncated > 1.0 + 1e-9:
            raise ValueError("rate_429 + rate_500 + rate_503 + rate_reset + rate_truncated must not exceed 1")
        if self.bucket_size < 1:
            raise ValueError("bucket_size must be >= 1")
        if self.refill_per_second <= 0:
            raise ValueError("refill_per_second must be > 0")
        if self.retry_after_seconds < 1:
            raise ValueError("retry_after_seconds must be >= 1")
        if self.slow_seconds < 0 or self.only_on_cue < 0:
            raise ValueError("slow_seconds and only_on_cue must be >= 0")


@dataclass(frozen=True)
class TriggeredOperation:
    """What a Backups_Trigger (or Restores_Trigger) POST hands back, plus what the simulator knows."""

    operation_id: str
    azure_async_operation: str
    location: str
    retry_after: int
    job_id: str | None
    vault_id: str


_VAULT_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.recoveryservices"
    r"/vaults/(?P<vault>[^/]+)/?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class VaultRef:
    subscription: str
    resource_group: str
    name: str

    @classmethod
    def parse(cls, vault_id: str) -> VaultRef:
        match = _VAULT_ID.match(vault_id.strip())
        if not match:
            raise ValueError(
                "vault_id must look like /subscriptions/<sub>/resourceGroups/<rg>/providers/"
                f"Microsoft.RecoveryServices/vaults/<name>, not {vault_id!r}"
            )
        return cls(unquote(match["sub"]), unquote(match["rg"]), unquote(match["vault"]))

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.subscription.lower(), self.resource_group.lower(), self.name.lower())

    def path(self, subscriptions: str = "subscriptions") -> str:
        return (
            f"/{subscriptions}/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.RecoveryServices/vaults/{self.name}"
        )

    @property
    def vault_id(self) -> str:
        return self.path()


@dataclass
class Vault:
    ref: VaultRef
    jobs: dict[str, Job] = field(default_factory=dict)  # key: job id lower-case
    # Set for the vault's jobs in its secondary region (cross-region restores, served by ``_crr``).
    region: str | None = None
    operations: dict[str, Operation] = field(default_factory=dict)  # key: operation id lower-case
    unprotected_items: set[tuple[str, str]] = field(default_factory=set)  # (container, item) lower-case
    _order: list[Job] = field(default_factory=list, repr=False, compare=False)

    def in_list_order(self) -> list[Job]:
        """Every job of the vault in BackupJobs_List's order (``sort_key``: newest first), visible or not. Jobs are
        only ever added, and a job's place never changes: sorted again only when one was added."""
        if len(self._order) != len(self.jobs):
            self._order = sorted(self.jobs.values(), key=sort_key)
        return self._order


class Job:
    """One backup job and its scripted lifecycle.

    Timeline (elapsed ``x`` = clock - t0): invisible (404) while ``x < not_found_for`` or ``x < 0`` (a job created by
    a trigger appears when its operation succeeds); ``InProgress`` until ``stop_at``; ``Cancelling`` from ``stop_at``
    to ``end_at`` for cancelled jobs; the final status from ``end_at``. Tasks split a plan span ``plan`` evenly and
    progress one after another.
    """

    graph_type = "microsoft.recoveryservices/vaults/backupjobs"  # its type in Resource Graph

    def __init__(
        self,
        vault: Vault,
        script: JobScript,
        job_id: str,
        seq: int,
        t0: float,
        wall0: datetime,
        seed: int,
    ) -> None:
        self.vault = vault
        self.script = script
        self.job_id = job_id
        self.seq = seq
        self.t0 = t0
        self.wall0 = wall0
        self.start_ticks = ticks_of(wall0)
        self._stamps: dict[float, str] = {}
        self._fixed_parts: tuple[dict[str, Any], dict[str, Any], bool] | None = None
        self._body: dict[str, Any] | None = None
        rng = random.Random(f"{seed}:{job_id.lower()}")
        issue = cat.pick_issue(script.job_type, script.final_status, rng)
        friendly = script.entity_friendly_name or cat.default_friendly_name(script.job_type, rng, vault.ref.name)
        self.traits = cat.JobTraits(
            friendly_name=friendly,
            activity_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            tick=rng.randint(1, 9),
            backup_size_mb=rng.randint(200, 90_000),
        )
        self.traits.extras = cat.extra_properties(script.job_type, rng, friendly)
        self.tasks = cat.task_names(script.job_type, script.operation)
        self.final_status = script.final_status
        self.issue = issue
        duration = float(script.duration)
        n = len(self.tasks)
        self.end_at = duration
        self.fail_index: int | None = None
        if self.final_status == "Failed":
            k = min(self.issue.task_index if self.issue else 0, max(n - 1, 0))
            self.fail_index = k if n else None
            self.plan = duration * n / (k + 1) if n else duration
            self.stop_at = duration
        elif self.final_status == "Cancelled":
            cancel_point = max(0.0, duration - float(script.cancelling_for))
            self.stop_at = cancel_point
            self.plan = 2 * cancel_point if cancel_point > 0 else max(duration, 1.0)
        else:
            self.plan = duration
            self.stop_at = duration

    # -- lifecycle --------------------------------------------------------------------------------------------

    @property
    def job_type(self) -> str:
        return self.script.job_type

    @property
    def operation(self) -> str:
        return self.script.operation

    def elapsed(self, now: float) -> float:
        return now - self.t0

    def visible(self, now: float) -> bool:
        x = self.elapsed(now)
        return x >= 0 and x >= self.script.not_found_for

    def internal_error(self, now: float) -> bool:
        """Whether JobDetails_Get answers 500 CloudInternalError now (the job's first moments, a JobScript option)."""
        return self.elapsed(now) < self.script.not_found_for + self.script.internal_error_for

    def status(self, now: float) -> str:
        x = self.elapsed(now)
        if x >= self.end_at:
            return self.final_status
        if self.final_status == "Cancelled" and x >= self.stop_at:
            return "Cancelling"
        return "InProgress"

    def cancel(self, now: float, cancelling_for: float) -> bool:
        """JobCancellations_Trigger: a running job goes Cancelling, then Cancelled. False if not cancellable."""
        if self.status(now) != "InProgress":
            return False
        x = max(0.0, self.elapsed(now))
        self.final_status = "Cancelled"
        self.issue = None
        self.fail_index = None
        self.stop_at = x
        self.end_at = x + cancelling_for
        return True

    def timestamp(self, offset: float) -> str:
        # The same few offsets (start, end, task boundaries) are rendered on every read: each once.
        stamp = self._stamps.get(offset)
        if stamp is None:
            stamp = self._stamps[offset] = format_timestamp(self.wall0 + timedelta(seconds=offset), self.traits.tick)
        return stamp

    # -- payloads ---------------------------------------------------------------------------------------------

    @property
    def resource_id(self) -> str:
        if self.vault.region is not None:
            # A cross-region restore job: location-scoped, lower-case provider (GetCrrJob_Post.json).
            return (f"/subscriptions/{self.vault.ref.subscription}/providers/microsoft.recoveryservices/locations/"
                    f"{self.vault.region}/backupJobs/{self.job_id}")
        # Azure writes "/Subscriptions/" in job ids (GetJobDetails.json, ListJobs.json).
        return f"{self.vault.ref.path('Subscriptions')}/backupJobs/{self.job_id}"

    def _task_states(self, now: float) -> list[tuple[str, float, float, float]]:
        """(status, duration, start offset, end offset) per task."""
        x = max(0.0, self.elapsed(now))
        status = self.status(now)
        terminal = status in cat.TERMINAL_STATUSES
        n = len(self.tasks)
        w = min(x, self.stop_at)
        out: list[tuple[str, float, float, float]] = []
        for i in range(n):
            start, end = i * self.plan / n, (i + 1) * self.plan / n
            if self.fail_index is not None and i > self.fail_index:
                out.append(("NotStarted", 0.0, -1, -1))
                continue
            if terminal and self.final_status in ("Completed", "CompletedWithWarnings"):
                out.append(("Completed", end - start, start, end))
                continue
            if terminal and self.fail_index is not None and i == self.fail_index:
                out.append(("Failed", self.end_at - start, start, self.end_at))
                continue
            if w >= end:
                out.append(("Completed", end - start, start, end))
            elif terminal and self.final_status == "Cancelled":
                began = w >= start
                out.append(("Cancelled", (w - start) if began else 0.0, start if began else -1, w if began else -1))
            elif w >= start:
                out.append(("InProgress", w - start, start, -1))
            else:
                out.append(("NotStarted", 0.0, -1, -1))
        return out

    def _tasks_list(self, now: float) -> list[dict[str, Any]]:
        shape = cat.TASK_SHAPE[self.job_type]
        items: list[dict[str, Any]] = []
        for name, (status, dur, start, end) in zip(self.tasks, self._task_states(now), strict=True):
            if shape == "iaas":  # GetJobDetails.json's keys plus the rest of AzureIaaSVMJobTaskDetails (bms.json)
                done = 100.0 if status == "Completed" else (round(100.0 * dur * len(self.tasks) / self.plan, 2)
                                                           if self.plan > 0 and status == "InProgress" else 0.0)
                items.append({
                    "taskId": name,
                    "startTime": self.timestamp(start) if start >= 0 else MIN_DATE_TASK,
                    "endTime": self.timestamp(end) if end >= 0 else MIN_DATE_TASK,
                    "instanceId": self.traits.activity_id,
                    "duration": dotnet_timespan(dur),
                    "status": status,
                    "progressPercentage": min(done, 100.0),
                    "taskExecutionDetails": f"{int(self.traits.backup_size_mb * done / 100)} MB / "
                                            f"{self.traits.backup_size_mb} MB" if name.startswith("Transfer") else "",
                })
            elif shape == "simple":
                items.append({"taskId": name, "status": status})
            else:
                items.append(
                    {
                        "taskId": name,
                        "startTime": self.timestamp(start) if start >= 0 else MIN_DATE_TASK,
                        "endTime": self.timestamp(end) if end >= 0 else MIN_DATE_TASK,
                        "duration": iso_duration(dur),
                        "status": status,
                    }
                )
        return items

    def _extended_info(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        bag = cat.property_bag(
            self.job_type, self.operation, self.traits, status in ("Completed", "CompletedWithWarnings")
        )
        bag.update(self.script.property_bag)
        if self.job_type == "VaultJob":
            return {"propertyBag": bag}
        info: dict[str, Any] = {"propertyBag": bag, "tasksList": self._tasks_list(now)}
        if self.job_type in cat.IAAS_TYPES:
            info["internalPropertyBag"] = {"isIncrementalBackup": "true"} if self.operation == "Backup" else {}
        if status == "Failed" and self.issue is not None:
            info["dynamicErrorMessage"] = cat.dynamic_message(self.issue, self.traits.friendly_name)
        if self.job_type in cat.IAAS_TYPES and status in ("InProgress", "Cancelling"):
            w = min(max(0.0, self.elapsed(now)), self.stop_at)
            pct = min(99.0, 100.0 * w / self.plan) if self.plan > 0 else 0.0
            info["progressPercentage"] = round(pct, 2)
            if status == "InProgress":
                info["estimatedRemainingDuration"] = timespan_string(
                    max(0.0, self.plan * self.script.estimate_error - w))
        return info

    def resource(self, now: float, extended: bool) -> dict[str, Any]:
        """The JobResource: with ``extended`` as JobDetails_Get returns it, else as a BackupJobs_List item."""
        status = self.status(now)
        x = max(0.0, self.elapsed(now))
        terminal = status in cat.TERMINAL_STATUSES
        head, tail, cancellable = self._fixed_properties()
        props: dict[str, Any] = {**head, "status": status, "startTime": self.timestamp(0.0)}
        if terminal:
            props["endTime"] = self.timestamp(self.end_at)
        props["activityId"] = self.traits.activity_id
        seconds = self.end_at if terminal else x
        props["duration"] = dotnet_timespan(seconds) if self.job_type in cat.IAAS_TYPES else iso_duration(seconds)
        if cancellable:
            props["actionsInfo"] = [1]  # JobSupportedAction.Cancellable, an integer (seed-job-response.json)
        props.update(tail)
        if extended:
            if terminal and self.issue is not None:
                props["errorDetails"] = [cat.render_issue(self.job_type, self.issue, self.traits.friendly_name)]
            props["extendedInfo"] = self._extended_info(now)
        # The fixture's top-level fields in its order (name, type, id), then the properties built above.
        return {**self._fixed_body(), "properties": props}

    def _fixed_properties(self) -> tuple[dict[str, Any], dict[str, Any], bool]:
        """What never changes in the job's properties, worked out once: the fields before ``status``, those after
        ``duration`` (the type's extras), and whether it lists ``actionsInfo``."""
        if self._fixed_parts is None:
            head = {"jobType": self.job_type, "entityFriendlyName": self.traits.friendly_name,
                    "backupManagementType": cat.MANAGEMENT_TYPE[self.job_type], "operation": self.operation}
            tail = dict(self.traits.extras)
            if self.job_type in cat.IAAS_TYPES:
                tail["containerName"] = f"iaasvmcontainerv2;{self.vault.ref.resource_group};{self.traits.friendly_name}"
                if self.job_type == "AzureIaaSVMJob":
                    tail["isUserTriggered"] = self.script.user_triggered
            cancellable = self.job_type != "VaultJob" and self.operation in ("Backup", "Restore", "CrossRegionRestore")
            self._fixed_parts = (head, tail, cancellable)
        return self._fixed_parts

    def _fixed_body(self) -> dict[str, Any]:
        if self._body is None:
            body = {key: value for key, value in _load("GetJobDetails.json")["responses"]["200"]["body"].items()
                    if key != "properties"}
            body.update(name=self.job_id, type=JOB_RESOURCE_TYPE, id=self.resource_id)
            self._body = body
        return self._body


class Operation:
    """An asynchronous operation (trigger backup/restore, cancel job) and its OperationStatus."""

    def __init__(
        self,
        op_id: str,
        vault: Vault,
        t0: float,
        wall0: datetime,
        delay: float,
        outcome: str,
        job_id: str | None,
        kind: str,
        item_path: str | None,
        tick: int,
        failed_jobs: dict[str, str] | None = None,
    ) -> None:
        self.op_id = op_id
        self.vault = vault
        self.t0 = t0
        self.wall0 = wall0
        self.delay = delay
        self.outcome = outcome
        self.job_id = job_id
        self.kind = kind  # "backup" | "restore" | "cancel"
        self.item_path = item_path  # .../protectionContainers/{c}/protectedItems/{i} for trigger operations
        self.tick = tick
        self.failed_jobs = dict(failed_jobs or {})  # {jobId: errorCode}: jobs this operation failed to create

    def status(self, now: float) -> str:
        return "InProgress" if now - self.t0 < self.delay else self.outcome

    def error(self) -> dict[str, str]:
        # Plausible codes (UserErrorBackupOperationInProgress is a documented Azure Backup error; the Canceled one is
        # not verified).
        if self.outcome == "Canceled":
            return {"code": "BMSUserErrorOperationCancelled", "message": "The operation was cancelled."}
        if self.kind == "restore":
            return {
                "code": "UserErrorRestoreOperationInProgress",
                "message": "Another restore operation is in progress for this item. Retry after it completes.",
            }
        if self.kind == "cancel":
            return {
                "code": "BMSUserErrorJobNotCancellable",
                "message": "The job can't be cancelled in its current state.",
            }
        return {
            "code": "UserErrorBackupOperationInProgress",
            "message": "Taking backup is not allowed as backup operation is already in progress.",
        }

    def payload(self, now: float) -> dict[str, Any]:
        """OperationStatus, key order as in seed-operation-response.json."""
        status = self.status(now)
        body: dict[str, Any] = {
            "id": self.op_id,
            "name": self.op_id,
            "status": status,
            "startTime": format_timestamp(self.wall0, self.tick),
            "endTime": MIN_DATE_OPERATION
            if status == "InProgress"
            else format_timestamp(self.wall0 + timedelta(seconds=self.delay), self.tick),
        }
        if status == "Succeeded" and self.failed_jobs:
            # OperationStatusJobsExtendedInfo (bms.json): jobIds, and failedJobsError {jobId: errorCode}.
            body["properties"] = {
                "objectType": "OperationStatusJobsExtendedInfo",
                "jobIds": [self.job_id] if self.job_id is not None else [],
                "failedJobsError": dict(self.failed_jobs),
            }
        elif status == "Succeeded" and self.job_id is not None:
            body["properties"] = {"objectType": OPERATION_OBJECT_TYPE, "jobId": self.job_id}
        elif status in ("Failed", "Canceled"):
            body["error"] = self.error()
        return body


# -- $filter ------------------------------------------------------------------------------------------------------

_CLAUSE = re.compile(r"^\s*(?P<field>[A-Za-z]+)\s+eq\s+'(?P<value>[^']*)'\s*$", re.IGNORECASE)
_FILTER_FIELDS = {
    "status": "status",
    "operation": "operation",
    "backupmanagementtype": "backupManagementType",
    "jobid": "jobId",
    "starttime": "startTime",
    "endtime": "endTime",
}
_ENUMS = {
    "status": cat.JOB_STATUSES,
    "operation": cat.JOB_OPERATIONS,
    "backupManagementType": cat.BACKUP_MANAGEMENT_TYPES,
}


MAX_FILTER_RANGE = timedelta(days=30)
# Clock skew allowed between the caller and the service before an endTime counts as "in the future" (a choice).
FUTURE_TOLERANCE = timedelta(hours=1)


class FilterError(ValueError):
    """A $filter the service would reject with 400."""


@dataclass
class JobFilter:
    equals: dict[str, str] = field(default_factory=dict)  # field -> lower-case value
    start: datetime | None = None
    end: datetime | None = None

    @classmethod
    def parse(cls, text: str | None, wall_now: datetime | None = None) -> JobFilter:
        """Azure's clients send ``startTime``/``endTime`` as ``yyyy-MM-dd hh:mm:ss tt``, never more than 30 days apart
        and never ending in the future (azure-cli custom.py list_jobs; PowerShell GetAzureRmRecoveryServicesBackupJob
        refuses a longer range with JobAllowedDateTimeRangeExceeded). The service's own answer to anything else is
        not verified: 400 BMSUserErrorInvalidInput here."""
        result = cls()
        if text is None or not text.strip():
            return result
        for clause in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
            match = _CLAUSE.match(clause)
            if not match:
                raise FilterError(f"Unsupported clause in $filter: '{clause.strip()}'. Use <field> eq '<value>'.")
            name = _FILTER_FIELDS.get(match["field"].lower())
            value = match["value"]
            if name is None:
                raise FilterError(
                    f"'{match['field']}' can't be used in $filter. Supported: status, operation, "
                    "backupManagementType, jobId, startTime, endTime."
                )
            if name in ("startTime", "endTime"):
                if not CLIENT_FILTER_DATE.match(value):
                    raise FilterError(f"Invalid {name} in $filter: '{value}'. Use yyyy-MM-dd hh:mm:ss tt.")
                try:
                    moment = parse_filter_date(value)
                except ValueError as exc:
                    raise FilterError(f"Invalid {name} in $filter: '{value}'.") from exc
                if name == "startTime":
                    result.start = moment
                else:
                    result.end = moment
                continue
            allowed = _ENUMS.get(name)
            if allowed is not None and value.lower() not in {a.lower() for a in allowed}:
                raise FilterError(f"Invalid value '{value}' for {name} in $filter.")
            result.equals[name] = value.lower()
        if result.start and result.end and result.start > result.end:
            raise FilterError("startTime must not be later than endTime in $filter.")
        if result.start and result.end and result.end - result.start > MAX_FILTER_RANGE:
            raise FilterError("The time range between startTime and endTime in $filter can't exceed 30 days.")
        if wall_now is not None and result.end and result.end > wall_now + FUTURE_TOLERANCE:
            raise FilterError("endTime in $filter can't be in the future.")
        return result

    def matches(self, job: Job, now: float) -> bool:
        facts = {
            "status": job.status(now),
            "operation": job.operation,
            "backupManagementType": cat.MANAGEMENT_TYPE[job.job_type],
            "jobId": job.job_id,
        }
        for name, value in self.equals.items():
            if facts[name].lower() != value:
                return False
        if self.start is not None and job.wall0 < self.start:
            return False
        return not (self.end is not None and job.wall0 > self.end)


# -- paging (continuation token shaped like the fixture's Azure Table ContinuationToken) ----------------------

_TOKEN_TEMPLATE = (
    '<?xml version="1.0" encoding="utf-16"?>\r\n<ContinuationToken>\r\n  <ContinuationToken>\r\n'
    "    <Version>2.0</Version>\r\n    <Type>Table</Type>\r\n"
    "    <NextPartitionKey>{pk}</NextPartitionKey>\r\n    <NextRowKey>{rk}</NextRowKey>\r\n"
    "    <TargetLocation>Primary</TargetLocation>\r\n  </ContinuationToken>\r\n</ContinuationToken>"
)


def _table_key(text: str) -> str:
    encoded = base64.b64encode(text.encode()).decode().replace("=", "-")
    return f"1!{len(encoded)}!{encoded}"


def sort_key(job: Job) -> tuple[int, int]:
    """Newest first: larger start ticks first, then later creation."""
    return (-job.start_ticks, -job.seq)


def make_skip_token(vault: Vault, last: Job) -> str:
    row = f"jobsstarttimeindex_0_{last.start_ticks}_{last.seq}_{last.job_id}"
    return _TOKEN_TEMPLATE.format(pk=_table_key(vault.ref.name.lower()), rk=_table_key(row))


def parse_skip_token(token: str) -> tuple[int, int]:
    """The sort key of the last item of the previous page. Raises ValueError if the token is not ours."""
    match = re.search(r"<NextRowKey>1!\d+!([^<]+)</NextRowKey>", token)
    if not match:
        raise ValueError("no NextRowKey")
    row = base64.b64decode(match.group(1).replace("-", "=")).decode()
    parts = row.split("_")
    if len(parts) < 5 or parts[0] != "jobsstarttimeindex":
        raise ValueError("bad row key")
    return (-int(parts[2]), -int(parts[3]))


def next_link(base_url: str, vault: Vault, filter_text: str | None, token: str) -> str:
    query = f"api-version={NEXT_LINK_API_VERSION}"
    if filter_text:
        query += "&%24filter=" + dotnet_url_encode(filter_text)
    query += "&%24skiptoken=" + dotnet_url_encode(token)
    return f"{base_url}{vault.ref.path('subscriptions')}/backupJobs?{query}"
