"""The result event: a CloudEvents 1.0 event in structured JSON mode, built with the CloudEvents SDK.

An event is a pure function of the job's stored final state and one subscriber, so a redelivery (after a crash,
by another instance) carries the same ``id`` and the same content.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from jobs.statuses import event_type

__all__ = ["CONTENT_TYPE", "build_event", "errors_from_job", "event_id", "serialize_event"]

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
_EVENT_NAMESPACE = uuid.UUID("6f1b1c1e-7d7a-4a53-9a36-0b7a3c8f0e21")


def event_id(tracking_id: str, status: str, subscriber_key: str) -> str:
    """Stable for one job, one terminal status and one subscriber."""
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{tracking_id.lower()}|{status}|{subscriber_key}"))


def errors_from_job(job: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``errorDetails`` of any job type as ``{code, message, recommendations}``.

    IaaS VM errors carry ``errorCode`` (int) and ``errorTitle``: the title is the readable code. DPM and MAB errors
    carry only ``errorString``.
    """
    properties = (job or {}).get("properties") or {}
    errors = []
    for item in properties.get("errorDetails") or []:
        if not isinstance(item, dict):
            continue
        code = item.get("errorTitle") or item.get("errorCode") or item.get("code")
        errors.append(
            {
                "code": None if code is None else str(code),
                "message": item.get("errorString") or item.get("message") or item.get("errorTitle") or "",
                "recommendations": list(item.get("recommendations") or []),
            }
        )
    return errors


def build_event(
    *,
    tracking_id: str,
    status: str,
    seen_at: datetime,
    vault_id: str,
    subscriber_key: str,
    job_id: str | None,
    job_resource_id: str | None,
    job: dict[str, Any] | None,
    errors: list[dict[str, Any]] | None = None,
    correlation_id: str | None = None,
    context: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> CloudEvent:
    """The event for one subscriber. ``errors`` overrides the job's own (for NotFound, OperationFailed)."""
    properties = (job or {}).get("properties") or {}
    extended = properties.get("extendedInfo") or {}
    data: dict[str, Any] = {
        "jobId": job_id,
        "jobResourceId": job_resource_id,
        "vaultId": vault_id,
        "status": status,
        "operation": properties.get("operation"),
        "jobType": properties.get("jobType"),
        "backupManagementType": properties.get("backupManagementType"),
        "entityFriendlyName": properties.get("entityFriendlyName"),
        "startTime": properties.get("startTime"),
        "endTime": properties.get("endTime"),
        "duration": properties.get("duration"),
        "errors": errors if errors is not None else errors_from_job(job),
        "tasks": list(extended.get("tasksList") or []),
        "propertyBag": dict(extended.get("propertyBag") or {}),
    }
    if correlation_id is not None:
        data["correlationId"] = correlation_id
    if context is not None:
        data["context"] = context
    data.update(extra or {})
    data["job"] = job
    subject = f"backupJobs/{job_id}" if job_id else f"backupOperations/{tracking_id}"
    return CloudEvent(
        attributes={
            "specversion": "1.0",
            "id": event_id(tracking_id, status, subscriber_key),
            "source": vault_id,
            "type": event_type(status),
            "subject": subject,
            "time": seen_at,
            "datacontenttype": "application/json",
        },
        data=data,
    )


def serialize_event(event: CloudEvent) -> bytes:
    """Structured JSON mode (``application/cloudevents+json``): the exact bytes sent and signed."""
    return JSONFormat().write(event)
