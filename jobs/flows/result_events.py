"""A result event as it goes out: built from an ended item's stored state and one subscriber, through the job's
provider, so every delivery of it (each output, webhook attempts, ``python -m jobs status``) is the same bytes.
How an event too large for a queue message goes there is the results queue's (``jobs.outputs.results_queue``).
"""

from __future__ import annotations

import json
from typing import Any

from jobs import providers
from jobs.domain.events import build_event, serialize_event
from jobs.domain.results import OPERATION_SUCCEEDED
from jobs.domain.tracked_item import SubscriberRecord, TrackedItem

__all__ = ["event_bytes", "event_for", "named_its_jobs"]

def named_its_jobs(item: TrackedItem) -> bool:
    """An operation that succeeded and named its jobs: its subscribers follow the jobs, it has no event."""
    return item.kind == "operation" and item.result_status == OPERATION_SUCCEEDED


def event_for(item: TrackedItem, record: SubscriberRecord) -> dict[str, Any]:
    """The result event of an ended item for one subscriber, as a JSON-ready dict."""
    return json.loads(event_bytes(item, record))


def event_bytes(item: TrackedItem, record: SubscriberRecord) -> bytes:
    assert item.result_status is not None and item.ended_at is not None
    subscriber = record.subscriber
    extra = {}
    if item.kind == "operation":
        extra["operationStatus"] = item.resource
    vault = item.vault
    provider = providers.for_vault(vault)
    extra.update(provider.reference_fields(vault))  # e.g. where a cross-region restore ran
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
