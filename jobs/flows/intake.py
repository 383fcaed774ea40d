"""The intake: every message shape of the contract, decoded and validated, and the jobs it names put on record.

- ``parse_message`` turns a message into a ``TrackRequest``, or raises ``IntakeRejected`` whose reason is one
  sentence naming the field. It touches no storage and no network (DNS aside, for callback URL checks); ids are
  parsed by the provider of the vault they name (``jobs.providers``).
- ``Intake`` records what a request asks for, through ``Subscriptions`` (a ``state`` row per job or operation, its
  subscriber, its row in the running index); it sends what cannot be used to the rejected queue with its reason;
  an item that has already ended goes to the publisher at once.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jobs import providers
from jobs.config import Settings
from jobs.domain.references import InvalidReference, JobRef, OperationRef, VaultRef
from jobs.domain.results import OperationState
from jobs.domain.tracked_item import Subscriber, TrackedItem
from jobs.domain.tracking import end_failed_job, end_failed_operation
from jobs.flows.publisher import Publisher
from jobs.flows.result_events import named_its_jobs
from jobs.flows.subscriptions import Subscriptions
from jobs.storage import StorageAccount
from jobs.storage.queue_messages import fit_record, send_output
from jobs.telemetry import Observer
from jobs.webhooks.callback_urls import AllowedHosts, CallbackUrlRejected, check_callback_url

__all__ = [
    "INTAKE_FIELDS",
    "MAX_CONTEXT_BYTES",
    "Acceptance",
    "FailedOperation",
    "Intake",
    "IntakeRejected",
    "Subscriber",
    "TrackRequest",
    "decode_message_text",
    "parse_message",
]

log = logging.getLogger(__name__)

MAX_CONTEXT_BYTES = 16 * 1024
MAX_MESSAGE_BYTES = 64 * 1024
MAX_PEEK_BYTES = 1024 * 1024  # a larger message is refused for its size without being parsed
MAX_CORRELATION_ID = 1024
MAX_TIMEOUT_MINUTES = 90 * 24 * 60
# Deeper JSON is refused: Python's json recurses per level, so a message nested ~1000 deep would crash the parser
# (or, a little shallower, every later json.dumps of its context) instead of being rejected.
MAX_JSON_DEPTH = 100


# The fields of an intake message, top level: a reason that starts with one of them (or a dotted path under one)
# names it, which ``IntakeRejected.field`` reports (``POST /api/jobs`` puts it in its problem+json answer).
INTAKE_FIELDS = (
    "jobId", "vaultId", "subscriptionId", "resourceGroup", "vaultName", "jobResourceId", "operation", "operationUrl",
    "correlationId", "context", "callbackUrl", "timeoutMinutes",
)


class IntakeRejected(ValueError):
    """A message that cannot be accepted. ``str(exc)`` is the reason that goes to the rejected queue."""

    @property
    def field(self) -> str:
        """The field the reason names (``jobId``, ``operation.status``...), or ``message`` for the whole message."""
        first = re.match(r"[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)*", str(self))
        name = first[0] if first else ""
        return name if name.split(".")[0] in INTAKE_FIELDS else "message"


@dataclass(frozen=True)
class FailedOperation:
    """An operation that already ended ``Failed`` or ``Canceled``: its result goes out at once."""

    ref: OperationRef
    state: OperationState  # ``resource`` is the operation-status JSON as Azure returned it


@dataclass(frozen=True)
class TrackRequest:
    """What an accepted message asks for: jobs to track, an operation to follow, or a failed operation."""

    subscriber: Subscriber
    jobs: tuple[JobRef, ...] = ()
    operation: OperationRef | None = None
    failed_operation: FailedOperation | None = None
    timeout_minutes: float | None = None
    # Jobs of ``jobs`` that the operation failed to create (``failedJobsError``), by lower-case id: Azure's code.
    failed_jobs: dict[str, str] = field(default_factory=dict)


def decode_message_text(body: bytes | str) -> str:
    """The message as text: UTF-8 JSON or a bare id, as plain text or base64-encoded."""
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    if len(raw) > MAX_MESSAGE_BYTES * 2:
        _check_context_of_large(raw)  # what the caller can fix, when that is what makes it too large
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


def _check_context_of_large(raw: bytes) -> None:
    """A message too large because of its ``context`` (a ``POST /api/jobs`` body may be larger than a queue message)
    is refused for its context, the documented limit the caller can act on. Only a plain JSON object up to
    ``MAX_PEEK_BYTES`` is looked into."""
    if len(raw) > MAX_PEEK_BYTES or not raw.lstrip().startswith(b"{"):
        return
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return
    if isinstance(value, dict) and isinstance(value.get("context"), dict):
        _check_context(value["context"])


def _check_context(context: dict[str, Any]) -> None:
    size = len(json.dumps(context, separators=(",", ":")).encode("utf-8"))
    if size > MAX_CONTEXT_BYTES:
        raise IntakeRejected(f"context is {size} bytes, more than the {MAX_CONTEXT_BYTES // 1024} KB "
                             f"({MAX_CONTEXT_BYTES} bytes) a context may have")


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
            job = _job_from_id(value["jobResourceId"], "jobResourceId")
            vault = _in_region(job.vault, value)
            return TrackRequest(subscriber, jobs=(JobRef(vault, job.job_id),), timeout_minutes=timeout)
        if "operationUrl" in value:
            # A cross-region restore's URL names no vault: the vault given alongside (if any) goes with it.
            url = value["operationUrl"]
            operation = providers.parse_operation_url(url, arm_endpoint, vault=_optional_vault(value, url))
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
        return providers.parse_job_id(value, field_name)
    except InvalidReference as exc:
        raise IntakeRejected(str(exc)) from None


def _vault(value: dict[str, Any], beside: object = None) -> VaultRef:
    """The message's vault (``vaultId``, or its three parts), in its secondary region if ``crossRegionRestore``."""
    if "vaultId" in value:
        return _in_region(providers.parse_vault_id(value["vaultId"]), value)
    missing = [name for name in ("subscriptionId", "resourceGroup", "vaultName") if name not in value]
    if missing:
        raise InvalidReference(
            "vaultId is missing, and so is " + ", ".join(missing) + " (give vaultId, or all three of "
            "subscriptionId, resourceGroup and vaultName)"
        )
    vault = providers.vault_from_parts(value["subscriptionId"], value["resourceGroup"], value["vaultName"], beside)
    return _in_region(vault, value)


def _optional_vault(value: dict[str, Any], url: object) -> VaultRef | None:
    """The vault given beside an ``operationUrl`` (its three parts name a vault of the URL's kind): ``None`` when
    the message names none."""
    if any(name in value for name in ("vaultId", "subscriptionId", "resourceGroup", "vaultName")):
        return _vault(value, url)
    return None


def _in_region(vault: VaultRef, value: dict[str, Any]) -> VaultRef:
    """``crossRegionRestore: {"region": "<secondary region>"}``: the job runs, and is read, in that region."""
    crr = value.get("crossRegionRestore")
    if crr is None:
        return vault
    if not isinstance(crr, dict) or "region" not in crr:
        raise InvalidReference(
            'crossRegionRestore must be an object with the secondary region, as in {"region": "eastus2"}'
        )
    unknown = sorted(set(crr) - {"region"})
    if unknown:
        raise InvalidReference(f"crossRegionRestore has unknown fields: {', '.join(unknown)} (only region)")
    return providers.in_region(vault, crr["region"], "crossRegionRestore.region")


def _from_operation(value: dict[str, Any], subscriber: Subscriber, timeout: float | None) -> TrackRequest:
    operation = value["operation"]
    if not isinstance(operation, dict):
        raise InvalidReference("operation must be the operation-status JSON object Azure returned")
    vault = _vault(value)
    state = providers.for_vault(vault).operation_state(operation)
    if not state.known:
        raise InvalidReference(f"operation.status {operation.get('status')!r} is not an operation status")
    operation_id = operation.get("name") or operation.get("id")
    jobs = tuple(dict.fromkeys(JobRef.create(vault, job_id, "operation.properties.jobId")
                               for job_id in state.job_ids))
    failed_jobs = providers.for_vault(vault).failed_jobs(operation)  # each gets its result: none vanishes
    if state.outcome == "failed":
        op = providers.vault_operation(vault, operation_id, "operation.name")
        return TrackRequest(subscriber, jobs=jobs, failed_operation=FailedOperation(op, state),
                            timeout_minutes=timeout, failed_jobs=failed_jobs)
    if jobs:
        return TrackRequest(subscriber, jobs=jobs, timeout_minutes=timeout, failed_jobs=failed_jobs)
    if state.outcome == "succeeded":
        raise InvalidReference("operation Succeeded but names no job (no properties.jobId or properties.jobIds)")
    # Still running: follow it through the vault's operation status until it names its job.
    return TrackRequest(
        subscriber, operation=providers.vault_operation(vault, operation_id, "operation.name"), timeout_minutes=timeout
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
        _check_context(context)
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


@dataclass
class Acceptance:
    tracking_ids: list[str] = field(default_factory=list)
    rejected: str | None = None
    published: int = 0


@dataclass
class Intake:
    """Puts what a message asks for on record, or sends the message to the rejected queue with its reason."""

    settings: Settings
    storage: StorageAccount
    subscriptions: Subscriptions
    publisher: Publisher
    clock: Callable[[], datetime]
    observer: Observer

    def accept_message(self, body: bytes | str) -> Acceptance:
        """A queue message: tracked, or sent to the rejected queue with its reason (nobody else would hear it)."""
        try:
            request = self.parse(body)
        except IntakeRejected as exc:
            self.reject(body, str(exc))
            return Acceptance(rejected=str(exc))
        return self.track(request, by_message=True)

    def parse(self, body: bytes | str) -> TrackRequest:
        """``parse_message`` with this app's settings: the one validation of the queue and of ``POST /api/jobs``
        (which answers ``IntakeRejected`` with 400 itself and calls ``track``)."""
        return parse_message(
            body, arm_endpoint=self.settings.arm_endpoint, allowed_hosts=self.settings.callback_allowed_hosts
        )

    def reject(self, body: bytes | str, reason: str) -> None:
        raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        record: dict[str, object] = {"reason": reason, "rejectedAt": self.clock().isoformat()}
        try:
            record["message"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            record["message"] = base64.b64encode(raw).decode("ascii")
            record["messageEncoding"] = "base64"
        # Within a queue message (JSON escapes such as \u00e9 and the XML's &amp; count): the original is cut.
        text = fit_record(record, ("message", "reason"))
        send_output(self.storage.queue(self.settings.rejected_queue), text)
        self.observer.intake_rejected(reason)

    def track(self, request: TrackRequest, *, by_message: bool = False) -> Acceptance:
        """Puts the request's items on record with its subscriber. ``by_message``: a queue message, which holds
        its subscription for good; otherwise (``POST /api/jobs``) the status URLs issued next hold it."""
        now = self.clock()
        minutes = request.timeout_minutes
        deadline = now + (
            timedelta(minutes=minutes) if minutes else timedelta(hours=self.settings.max_tracking_hours)
        )
        acceptance = Acceptance()
        items: list[TrackedItem] = []
        if request.failed_operation is not None:
            failed = request.failed_operation
            item = TrackedItem.for_operation(failed.ref, now, deadline)
            end_failed_operation(item, failed.state, now)
            items.append(item)
        for job in request.jobs:
            items.append(TrackedItem.for_job(job, now, deadline))
            if job.job_id.lower() in request.failed_jobs:  # Azure failed to create it: its result now
                end_failed_job(items[-1], request.failed_jobs[job.job_id.lower()], now)
        if request.operation is not None:
            items.append(TrackedItem.for_operation(request.operation, now, deadline))
        for new in items:
            acceptance.published += self._add(new, request.subscriber, now, by_message)
            acceptance.tracking_ids.append(new.tracking_id)
        self.observer.intake_accepted(acceptance.tracking_ids)
        return acceptance

    def _add(self, new: TrackedItem, subscriber: Subscriber, now: datetime, by_message: bool) -> int:
        item = self.subscriptions.add(new, subscriber, now, by_message=by_message)
        if not item.ended:
            return 0
        if named_its_jobs(item):  # its subscribers (this one among them) follow the jobs it named
            return self.publisher.conclude(item)
        record = self.subscriptions.get_subscriber(item.tracking_id, subscriber.key)
        return self.publisher.publish_one(item, record) if record else 0
