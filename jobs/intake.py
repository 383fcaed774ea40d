"""Intake messages: every shape of the contract, decoded and validated into a ``TrackRequest``.

A message that cannot be used raises ``IntakeRejected`` whose reason is one sentence naming the field.
This module only parses: it touches no storage and no network (DNS aside, for callback URL checks).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jobs.callback_urls import AllowedHosts, CallbackUrlRejected, check_callback_url
from jobs.references import InvalidReference, JobRef, OperationRef, VaultRef
from jobs.statuses import OperationStatus, normalise_operation_status

__all__ = [
    "MAX_CONTEXT_BYTES",
    "FailedOperation",
    "IntakeRejected",
    "Subscriber",
    "TrackRequest",
    "decode_message_text",
    "parse_message",
]

MAX_CONTEXT_BYTES = 16 * 1024
MAX_MESSAGE_BYTES = 64 * 1024
MAX_CORRELATION_ID = 1024
MAX_TIMEOUT_MINUTES = 90 * 24 * 60
# Deeper JSON is refused: Python's json recurses per level, so a message nested ~1000 deep would crash the parser
# (or, a little shallower, every later json.dumps of its context) instead of being rejected.
MAX_JSON_DEPTH = 100


class IntakeRejected(ValueError):
    """A message that cannot be accepted. ``str(exc)`` is the reason that goes to the rejected queue."""


@dataclass(frozen=True)
class Subscriber:
    """What one message adds beside the job: none of the three fields makes the default subscriber."""

    correlation_id: str | None = None
    context: dict[str, Any] | None = None
    callback_url: str | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        if self.correlation_id is None and self.context is None and self.callback_url is None:
            return "default"
        canonical = json.dumps(
            [self.correlation_id, self.context, self.callback_url], sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]


@dataclass(frozen=True)
class FailedOperation:
    """An operation that already ended ``Failed`` or ``Canceled``: its result goes out at once."""

    vault: VaultRef
    operation_id: str
    status: str
    operation: dict[str, Any]

    @property
    def key(self) -> str:
        return OperationRef(vault=self.vault, operation_id=self.operation_id).key


@dataclass(frozen=True)
class TrackRequest:
    """What an accepted message asks for: jobs to track, an operation to follow, or a failed operation."""

    subscriber: Subscriber
    jobs: tuple[JobRef, ...] = ()
    operation: OperationRef | None = None
    failed_operation: FailedOperation | None = None
    timeout_minutes: float | None = None


def decode_message_text(body: bytes | str) -> str:
    """The message as text: UTF-8 JSON or a bare id, as plain text or base64-encoded."""
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    if len(raw) > MAX_MESSAGE_BYTES * 2:
        raise IntakeRejected(f"message is {len(raw)} bytes, more than a queue message can hold")
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise IntakeRejected("message is neither UTF-8 text nor base64 of it") from None
    if not text:
        raise IntakeRejected("message is empty")
    if text[0] in "{[\"/" or text in ("null", "true", "false"):
        return text
    try:
        decoded = base64.b64decode(text, validate=True).decode("utf-8").strip()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return text  # not base64: judged as plain text below
    return decoded or text


def parse_message(
    body: bytes | str,
    *,
    arm_endpoint: str,
    allowed_hosts: AllowedHosts,
    resolve: Callable[[str, int], list[str]] | None = None,
) -> TrackRequest:
    text = decode_message_text(body)
    if text.startswith("/"):
        return TrackRequest(subscriber=Subscriber(), jobs=(_job_from_id(text, "message"),))
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise IntakeRejected(
            "message is not JSON (or a job resource id): expected an object with jobId and vaultId, "
            "jobResourceId, operation or operationUrl"
        ) from None
    except ValueError:  # e.g. an integer longer than Python converts
        raise IntakeRejected("message holds a JSON value that cannot be read (such as a number too long)") from None
    except RecursionError:
        raise IntakeRejected(f"message is JSON nested more than {MAX_JSON_DEPTH} levels deep") from None
    if _deeper_than(value, MAX_JSON_DEPTH):
        where = "message"
        if isinstance(value, dict):
            where = next((k for k in ("context", "operation") if _deeper_than(value.get(k), MAX_JSON_DEPTH - 1)),
                         where)
        raise IntakeRejected(f"{where} is JSON nested more than {MAX_JSON_DEPTH} levels deep")
    if isinstance(value, str):
        return TrackRequest(subscriber=Subscriber(), jobs=(_job_from_id(value, "message"),))
    if not isinstance(value, dict):
        raise IntakeRejected(f"message must be a JSON object or a job resource id, got JSON {type(value).__name__}")
    subscriber = _subscriber(value, allowed_hosts, resolve)
    timeout = _timeout(value)
    try:
        if "jobResourceId" in value:
            return TrackRequest(subscriber, jobs=(_job_from_id(value["jobResourceId"], "jobResourceId"),),
                                timeout_minutes=timeout)
        if "operationUrl" in value:
            operation = OperationRef.parse_url(value["operationUrl"], arm_endpoint)
            return TrackRequest(subscriber, operation=operation, timeout_minutes=timeout)
        if "operation" in value:
            return _from_operation(value, subscriber, timeout)
        if "jobId" in value:
            return TrackRequest(subscriber, jobs=(JobRef.create(_vault(value), value["jobId"]),),
                                timeout_minutes=timeout)
    except InvalidReference as exc:
        raise IntakeRejected(str(exc)) from None
    raise IntakeRejected(
        "message names no job: expected jobId with vaultId (or subscriptionId, resourceGroup and vaultName), "
        "jobResourceId, operation with vaultId, or operationUrl"
    )


def _deeper_than(value: object, limit: int) -> bool:
    """Whether JSON ``value`` nests lists and objects more than ``limit`` levels deep (without recursing)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def _job_from_id(value: object, field_name: str) -> JobRef:
    try:
        return JobRef.parse(value, field_name)
    except InvalidReference as exc:
        raise IntakeRejected(str(exc)) from None


def _vault(value: dict[str, Any]) -> VaultRef:
    if "vaultId" in value:
        return VaultRef.parse(value["vaultId"])
    missing = [name for name in ("subscriptionId", "resourceGroup", "vaultName") if name not in value]
    if missing:
        raise InvalidReference(
            "vaultId is missing, and so is " + ", ".join(missing) + " (give vaultId, or all three of "
            "subscriptionId, resourceGroup and vaultName)"
        )
    return VaultRef.from_parts(value["subscriptionId"], value["resourceGroup"], value["vaultName"])


def _from_operation(value: dict[str, Any], subscriber: Subscriber, timeout: float | None) -> TrackRequest:
    operation = value["operation"]
    if not isinstance(operation, dict):
        raise InvalidReference("operation must be the operation-status JSON object Azure returned")
    vault = _vault(value)
    status = normalise_operation_status(operation.get("status"))
    if status is None:
        raise InvalidReference(f"operation.status {operation.get('status')!r} is not an operation status")
    properties = operation.get("properties") if isinstance(operation.get("properties"), dict) else {}
    operation_id = operation.get("name") or operation.get("id")
    if status in (OperationStatus.FAILED, OperationStatus.CANCELED):
        op = OperationRef.for_vault(vault, operation_id, "operation.name")
        return TrackRequest(
            subscriber,
            failed_operation=FailedOperation(vault, op.operation_id, status.value, operation),
            timeout_minutes=timeout,
        )
    job_ids: list[object] = []
    if "jobId" in properties:
        job_ids.append(properties["jobId"])
    if isinstance(properties.get("jobIds"), list):
        job_ids.extend(properties["jobIds"])
    if job_ids:
        jobs = tuple(dict.fromkeys(JobRef.create(vault, job_id, "operation.properties.jobId") for job_id in job_ids))
        return TrackRequest(subscriber, jobs=jobs, timeout_minutes=timeout)
    if status == OperationStatus.SUCCEEDED:
        raise InvalidReference("operation Succeeded but names no job (no properties.jobId or properties.jobIds)")
    # Still running: follow it through the vault's backupOperations/{id} until it names its job.
    return TrackRequest(
        subscriber, operation=OperationRef.for_vault(vault, operation_id, "operation.name"), timeout_minutes=timeout
    )


def _subscriber(
    value: dict[str, Any], allowed_hosts: AllowedHosts, resolve: Callable[[str, int], list[str]] | None
) -> Subscriber:
    correlation_id = value.get("correlationId")
    if correlation_id is not None and (not isinstance(correlation_id, str) or len(correlation_id) > MAX_CORRELATION_ID):
        raise IntakeRejected(f"correlationId must be a string of at most {MAX_CORRELATION_ID} characters")
    context = value.get("context")
    if context is not None:
        if not isinstance(context, dict):
            raise IntakeRejected("context must be a JSON object")
        size = len(json.dumps(context, separators=(",", ":")).encode("utf-8"))
        if size > MAX_CONTEXT_BYTES:
            raise IntakeRejected(f"context is {size} bytes, more than the {MAX_CONTEXT_BYTES} allowed")
    callback_url = value.get("callbackUrl")
    if callback_url is not None:
        if not isinstance(callback_url, str):
            raise IntakeRejected("callbackUrl must be a string")
        try:
            kwargs = {"resolve": resolve} if resolve is not None else {}
            check_callback_url(callback_url, allowed_hosts, **kwargs)
        except CallbackUrlRejected as exc:
            raise IntakeRejected(exc.reason) from None
    return Subscriber(correlation_id=correlation_id, context=context, callback_url=callback_url)


def _timeout(value: dict[str, Any]) -> float | None:
    timeout = value.get("timeoutMinutes")
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= MAX_TIMEOUT_MINUTES:
        raise IntakeRejected(
            f"timeoutMinutes must be a positive number of minutes up to {MAX_TIMEOUT_MINUTES}, got {timeout!r}"
        )
    return float(timeout)
