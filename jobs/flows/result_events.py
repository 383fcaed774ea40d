"""A result event as it goes out: built from an ended item's stored state and one subscriber, through the job's
provider, so every delivery of it (each output, webhook attempts, ``python -m jobs status``) is the same bytes.
How an event too large for a queue message goes there is the results queue's (``jobs.outputs.results_queue``).
"""

from __future__ import annotations

import json
from typing import Any

from cloudevents.core.v1.event import CloudEvent

from jobs import providers
from jobs.domain.events import build_event, event_id, serialize_event
from jobs.domain.results import OPERATION_SUCCEEDED
from jobs.domain.tracked_item import SubscriberRecord, TrackedItem

__all__ = ["SUMMARY_KIND", "SUMMARY_STATUS", "SUMMARY_TYPE", "event_bytes", "event_for", "named_its_jobs"]

# A watch's daily summary (``jobs.flows.watches``) is published as an item of its own kind: its ``resource`` is the
# summary, its event this type.
SUMMARY_KIND = "summary"
SUMMARY_STATUS = "DailySummary"
SUMMARY_TYPE = "BackupJobs.DailySummary"

def named_its_jobs(item: TrackedItem) -> bool:
    """An operation that succeeded and named its jobs: its subscribers follow the jobs, it has no event."""
    return item.kind == "operation" and item.result_status == OPERATION_SUCCEEDED


def event_for(item: TrackedItem, record: SubscriberRecord) -> dict[str, Any]:
    """The result event of an ended item for one subscriber, as a JSON-ready dict."""
    return json.loads(event_bytes(item, record))


def event_bytes(item: TrackedItem, record: SubscriberRecord) -> bytes:
    assert item.result_status is not None and item.ended_at is not None
    subscriber = record.subscriber
    if item.kind == SUMMARY_KIND:
        return serialize_event(_summary_event(item, record))
    extra = {}
    if item.kind == "operation":
        extra["operationStatus"] = item.resource
    vault = item.vault
    provider = providers.for_vault(vault)
    extra.update(provider.reference_fields(vault))  # e.g. where a cross-region restore ran
    if subscriber.watch is not None:  # a watch found the job (jobs.flows.watches)
        extra["watch"] = subscriber.watch
    job = item.resource if item.kind == "job" else None
    event = build_event(
        tracking_id=item.tracking_id,
        status=item.result_status,
        event_type=provider.event_type(item.result_status),
        subject=provider.event_subject(item.job_id, item.operation_id or item.tracking_id),
        seen_at=item.ended_at,
        vault_id=vault.id,
        subscriber_key=record.key,
        job_id=item.job_id,
        job_resource_id=provider.job_resource_id(item.job_ref()) if item.job_id else None,
        operation_id=item.operation_id,
        job=job,
        job_fields=provider.event_fields(job),
        errors=item.errors,
        correlation_id=subscriber.correlation_id,
        context=subscriber.context,
        extra=extra,
    )
    return serialize_event(event)


def _summary_event(item: TrackedItem, record: SubscriberRecord) -> CloudEvent:
    """A watch's daily summary for one subscriber: ``source`` the watch, ``subject`` the day, ``time`` its end."""
    summary = dict(item.resource or {})
    data: dict[str, Any] = {**summary}
    if record.subscriber.correlation_id is not None:
        data["correlationId"] = record.subscriber.correlation_id
    if record.subscriber.context is not None:
        data["context"] = record.subscriber.context
    return CloudEvent(attributes={
        "specversion": "1.0", "id": event_id(item.tracking_id, str(item.result_status), record.key),
        "source": f"/watches/{summary.get('watch')}", "type": SUMMARY_TYPE, "subject": f"days/{summary.get('day')}",
        "time": item.ended_at, "datacontenttype": "application/json",
    }, data=data)
