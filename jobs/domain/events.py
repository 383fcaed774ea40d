"""The result event: a CloudEvents 1.0 event in structured JSON mode, built with the CloudEvents SDK.

An event is a pure function of the job's stored final state and one subscriber, so a redelivery (after a crash,
by another instance) carries the same ``id`` and the same content. What the event says about the job itself
(``type``, operation, job type, errors, tasks, property bag) is mapped by the job's provider; this module only
assembles it, and gives every duration one form: ISO 8601 (``iso_duration``), whatever form Azure wrote (Azure's
own text stays in ``data.job``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import isodate
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from jobs.domain.azure_time import parse_duration

__all__ = ["CONTENT_TYPE", "JOB_FIELDS", "build_event", "event_id", "iso_duration", "serialize_event"]

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
_EVENT_NAMESPACE = uuid.UUID("6f1b1c1e-7d7a-4a53-9a36-0b7a3c8f0e21")
# What a provider maps from the job into ``data``, in this order (``jobs.providers.base.Provider.event_fields``).
JOB_FIELDS = (
    "operation", "jobType", "backupManagementType", "entityFriendlyName", "startTime", "endTime", "duration",
    "errors", "tasks", "propertyBag", "dynamicErrorMessage",
)


def iso_duration(value: Any) -> str | None:
    """A job's or task's duration as ISO 8601 (``PT20M23.08967S``, ``P1DT2H3M4S``, ``P0D``), from either form Azure
    writes (``jobs.domain.azure_time.parse_duration``), normalised by ``isodate`` to microseconds. ``None`` for none,
    a negative duration, or text that is neither."""
    duration = parse_duration(value)
    return None if duration is None else str(isodate.duration_isoformat(duration))


def _with_iso_duration(task: Any) -> Any:
    if isinstance(task, dict) and "duration" in task:
        return {**task, "duration": iso_duration(task["duration"])}
    return task


def event_id(tracking_id: str, status: str, subscriber_key: str) -> str:
    """Stable for one job, one terminal status and one subscriber."""
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{tracking_id.lower()}|{status}|{subscriber_key}"))


def build_event(
    *,
    tracking_id: str,
    status: str,
    event_type: str,
    subject: str,
    seen_at: datetime,
    vault_id: str,
    subscriber_key: str,
    job_id: str | None,
    job_resource_id: str | None,
    operation_id: str | None = None,
    job: dict[str, Any] | None,
    job_fields: dict[str, Any],
    errors: list[dict[str, Any]] | None = None,
    correlation_id: str | None = None,
    context: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> CloudEvent:
    """The event for one subscriber.

    ``event_type``, ``subject`` and ``job_fields`` (``JOB_FIELDS``, from ``job``, then any fields of the provider's
    own, such as a Backup vault job's ``dataSourceName``) are the job's provider's;
    ``errors`` overrides the job's own errors (for NotFound, OperationFailed).
    """
    data: dict[str, Any] = {"jobId": job_id, "jobResourceId": job_resource_id, "vaultId": vault_id, "status": status}
    data.update({name: job_fields.get(name) for name in JOB_FIELDS})
    data["errors"] = errors if errors is not None else list(job_fields.get("errors") or [])
    data["duration"] = iso_duration(data["duration"])
    data["tasks"] = [_with_iso_duration(task) for task in job_fields.get("tasks") or []]
    data["propertyBag"] = dict(job_fields.get("propertyBag") or {})
    data.update({name: value for name, value in job_fields.items() if name not in data})  # a provider's own fields
    if correlation_id is not None:
        data["correlationId"] = correlation_id
    if context is not None:
        data["context"] = context
    data.update(extra or {})
    data["job"] = job
    return CloudEvent(
        attributes={
            "specversion": "1.0",
            "id": event_id(tracking_id, status, subscriber_key),
            "source": vault_id,
            "type": event_type,
            "subject": subject,
            "time": seen_at,
            "datacontenttype": "application/json",
        },
        data=data,
    )


def serialize_event(event: CloudEvent) -> bytes:
    """Structured JSON mode (``application/cloudevents+json``): the exact bytes sent and signed."""
    return JSONFormat().write(event)
