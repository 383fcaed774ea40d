"""Intake parsing: what mutation testing (`make mutation`) showed no test pinned down."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobs.flows.intake import IntakeRejected, TrackRequest, decode_message_text, parse_message
from jobs.webhooks.callback_urls import AllowedHosts

ARM = "https://management.azure.com"
VAULT_ID = (
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/backup-rg"
    "/providers/Microsoft.RecoveryServices/vaults/prod-vault"
)
OP = "cd153561-20d3-467a-b911-cc1de47d4763"
JOB = "41f3e94b-ae6b-4a20-b422-65abfcaf03e5"


def parse(message: dict[str, Any]) -> TrackRequest:
    return parse_message(json.dumps(message), arm_endpoint=ARM, allowed_hosts=AllowedHosts())


def rejection(message: dict[str, Any]) -> str:
    with pytest.raises(IntakeRejected) as info:
        parse(message)
    return str(info.value)


def test_an_operation_that_is_not_an_object_is_rejected_in_so_many_words() -> None:
    assert rejection({"vaultId": VAULT_ID, "operation": "InProgress"}) == (
        "operation must be the operation-status JSON object Azure returned"
    )


def test_an_unknown_operation_status_is_quoted() -> None:
    assert rejection({"vaultId": VAULT_ID, "operation": {"id": OP, "status": "Paused"}}) == (
        "operation.status 'Paused' is not an operation status"
    )


def test_a_succeeded_operation_naming_no_job_is_rejected_in_so_many_words() -> None:
    assert rejection({"vaultId": VAULT_ID, "operation": {"id": OP, "status": "Succeeded", "properties": {}}}) == (
        "operation Succeeded but names no job (no properties.jobId or properties.jobIds)"
    )


def test_a_job_id_in_an_operation_that_is_not_a_guid_names_its_field() -> None:
    message = {"vaultId": VAULT_ID, "operation": {"id": OP, "status": "Succeeded", "properties": {"jobId": "x"}}}
    assert rejection(message) == "operation.properties.jobId must be a GUID, got 'x'"


def test_a_running_operation_is_followed_by_its_id_with_the_timeout() -> None:
    request = parse({"vaultId": VAULT_ID, "timeoutMinutes": 30, "operation": {"id": OP, "status": "InProgress"}})
    assert request.operation is not None and request.operation.operation_id == OP
    assert request.timeout_minutes == 30 and request.jobs == ()
    request = parse({"vaultId": VAULT_ID, "operation": {"name": OP, "id": "ignored", "status": "InProgress"}})
    assert request.operation is not None and request.operation.operation_id == OP


def test_an_operation_id_that_is_not_a_guid_names_operation_name() -> None:
    for operation in ({"id": "nope", "status": "InProgress"}, {"id": "nope", "status": "Failed"}):
        assert rejection({"vaultId": VAULT_ID, "operation": operation}) == (
            "operation.name must be a GUID, got 'nope'"
        )


def test_a_failed_operation_is_concluded_with_its_jobs_and_the_timeout() -> None:
    request = parse({"vaultId": VAULT_ID, "timeoutMinutes": 45, "operation": {
        "id": OP, "status": "Failed", "properties": {"jobId": JOB}, "error": {"code": "E"}}})
    assert request.failed_operation is not None and request.failed_operation.ref.operation_id == OP
    assert request.timeout_minutes == 45
    assert [job.job_id for job in request.jobs] == [JOB]


NOT_A_JOB_ID = (
    "is not a backup job id (/subscriptions/<guid>/resourceGroups/<rg>/providers/Microsoft.RecoveryServices"
    "/vaults/<name>/backupJobs/<guid>)"
)
NOT_JSON = (
    "message is not JSON (or a job resource id): expected an object with jobId and vaultId, jobResourceId, "
    "operation or operationUrl"
)
VAULT_MISSING = " (give vaultId, or all three of subscriptionId, resourceGroup and vaultName)"


def nested(depth: int, key: str | None = None) -> str:
    inner: Any = {}
    for _ in range(depth - 1):
        inner = {"a": inner}
    return json.dumps({key: inner, "vaultId": VAULT_ID, "jobId": JOB} if key else inner)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff\xfe", "message is neither UTF-8 text nor base64 of it"),
        ("  ", "message is empty"),
        ("nope", NOT_JSON),
        ("{bad", NOT_JSON),
        ("null", "message must be a JSON object or a job resource id, got JSON NoneType"),
        ("true", "message must be a JSON object or a job resource id, got JSON bool"),
        ("false", "message must be a JSON object or a job resource id, got JSON bool"),
        ("1" * 5000, "message holds a JSON value that cannot be read (such as a number too long)"),
        ("x" * (128 * 1024 + 1), "message is 131073 bytes, more than a queue message can hold"),
        ("/nope", f"message '/nope' {NOT_A_JOB_ID}"),
        ('"/nope"', f"message '/nope' {NOT_A_JOB_ID}"),
        ("L25vcGU=", f"message '/nope' {NOT_A_JOB_ID}"),  # base64 of /nope
        (nested(101), "message is JSON nested more than 100 levels deep"),
        (nested(100, "context"), "context is JSON nested more than 100 levels deep"),
        (nested(100, "operation"), "operation is JSON nested more than 100 levels deep"),
        (json.dumps({"jobId": JOB}), "vaultId is missing, and so is subscriptionId, resourceGroup, vaultName"
         + VAULT_MISSING),
        (json.dumps({"jobId": JOB, "subscriptionId": "s"}), "vaultId is missing, and so is resourceGroup, vaultName"
         + VAULT_MISSING),
        (json.dumps({"vaultId": VAULT_ID, "jobId": JOB, "context": []}), "context must be a JSON object"),
        (json.dumps({"vaultId": VAULT_ID, "jobId": JOB, "callbackUrl": 5}), "callbackUrl must be a string"),
        (json.dumps({"jobResourceId": 5}), "jobResourceId must be a string, got 5"),
        ("[1, 2]", "message must be a JSON object or a job resource id, got JSON list"),
        ("{}", "message names no job: expected jobId with vaultId (or subscriptionId, resourceGroup and vaultName), "
         "jobResourceId, operation with vaultId, or operationUrl"),
        (json.dumps({"jobResourceId": "/x"}), f"jobResourceId '/x' {NOT_A_JOB_ID}"),
    ],
)
def test_each_rejection_is_its_whole_reason(body: str | bytes, reason: str) -> None:
    with pytest.raises(IntakeRejected) as info:
        parse_message(body, arm_endpoint=ARM, allowed_hosts=AllowedHosts())
    assert str(info.value) == reason


def test_json_exactly_100_levels_deep_is_accepted() -> None:
    assert parse_message(nested(99, "context"), arm_endpoint=ARM, allowed_hosts=AllowedHosts()).jobs


def test_a_message_is_decoded_from_base64_only_when_it_is_valid_base64_of_utf8() -> None:
    assert decode_message_text("eyJhIjogMX0=") == '{"a": 1}'
    assert decode_message_text("null") == "null" and decode_message_text("true") == "true"
    assert decode_message_text("false") == "false"
    assert decode_message_text("bnVsbA=") == "bnVsbA="  # not valid base64 (padding): kept as sent
    assert decode_message_text("//79") == "//79"  # starts like a path: never decoded
    assert decode_message_text("/w==") == "/w=="
    assert decode_message_text("gA==") == "gA=="  # base64 of a byte that is not UTF-8
    assert decode_message_text("ICA=") == "ICA="  # base64 of blanks only
    assert decode_message_text("é".encode()) == "é"
    assert decode_message_text("x" * (128 * 1024)) == "x" * (128 * 1024)
