"""A result event as it goes out: built from an ended item's stored state and one subscriber, through the job's
provider, so every delivery of it (results queue, webhook attempts, ``python -m jobs status``) is the same.

A queue message holds 64 KiB (``jobs.storage.queue_messages``); webhooks take any size. An event too large for the
queue goes there as a pointer (``pointer_event``): ``data.job`` is null, ``data.truncated`` is true and the reader
fetches the job from ``data.jobResourceId``; if that is not enough, the next large fields (``TRUNCATED_FIELDS``) are
null too, in order. It is a function of the whole event, so it is the same on every delivery.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from jobs import providers
from jobs.domain.events import build_event, serialize_event
from jobs.domain.results import OPERATION_SUCCEEDED
from jobs.domain.tracked_item import SubscriberRecord, TrackedItem
from jobs.storage.queue_messages import fits

__all__ = ["TRUNCATED_FIELDS", "event_bytes", "event_for", "named_its_jobs", "pointer_event", "queue_event_text"]

# Nulled in this order until the event fits: the JobResource first (everything in it can be read again from
# ``jobResourceId``), then what the provider mapped from it, then the subscriber's context (up to 16 KB).
TRUNCATED_FIELDS = ("job", "propertyBag", "tasks", "errors", "operationStatus", "context")


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


def pointer_event(event: dict[str, Any], fit: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """``event`` as a queue message can hold it: whole when ``fit`` accepts it, else with ``data.truncated`` true
    and ``data.job`` null, then the next of ``TRUNCATED_FIELDS`` null, until ``fit`` accepts it."""
    if fit(event):
        return event
    data = {**event["data"], "truncated": True}
    pointer = {**event, "data": data}
    for name in TRUNCATED_FIELDS:
        if name in data:
            data[name] = None
            if fit(pointer):
                break
    return pointer


def queue_event_text(body: bytes) -> str:
    """The results queue's message for an event (``event_bytes``): the event as is, or its pointer form."""
    text = body.decode("utf-8")
    if fits(text):
        return text
    return json.dumps(pointer_event(json.loads(text), lambda event: fits(json.dumps(event))))
