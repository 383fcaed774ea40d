"""Intake messages: the five shapes of the contract, plain or base64, and the reasons a message is rejected."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from jobs.domain.references import JobRef, OperationRef
from jobs.flows.intake import IntakeRejected, Subscriber, TrackRequest, decode_message_text, parse_message
from jobs.providers import parse_operation_url, parse_vault_id
from jobs.providers.recovery_services import job_path
from jobs.webhooks.callback_urls import AllowedHosts
from tests.conftest import fixture_json

ARM = "https://management.azure.com"
SUB = "11111111-2222-3333-4444-555555555555"
RG = "backup-rg"
VAULT = "prod-vault"
VAULT_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.RecoveryServices/vaults/{VAULT}"
JOB = "41f3e94b-ae6b-4a20-b422-65abfcaf03e5"
JOB2 = "7ddead57-bcb9-4269-ac31-6a1b57588700"
OP = "cd153561-20d3-467a-b911-cc1de47d4763"
JOB_RESOURCE_ID = f"{VAULT_ID}/backupJobs/{JOB}"
ALLOWED = AllowedHosts.from_setting("hooks.example.com")
PUBLIC_IP = "20.38.98.1"
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

resolved: list[str] = []


def public_dns(host: str, port: int) -> list[str]:
    resolved.append(host)
    return [PUBLIC_IP]


def parse(body: bytes | str | dict[str, Any], *, allowed: AllowedHosts = ALLOWED, resolve: Any = public_dns,
          arm: str = ARM) -> TrackRequest:
    if isinstance(body, dict):
        body = json.dumps(body)
    return parse_message(body, arm_endpoint=arm, allowed_hosts=allowed, resolve=resolve)


def rejected(body: bytes | str | dict[str, Any], **kwargs: Any) -> str:
    with pytest.raises(IntakeRejected) as info:
        parse(body, **kwargs)
    reason = str(info.value)
    assert reason.strip() and "\n" not in reason, reason
    return reason


def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


EXPECTED_JOB = JobRef.create(parse_vault_id(VAULT_ID), JOB)


def the_job(request: TrackRequest) -> JobRef:
    assert request.operation is None and request.failed_operation is None
    assert len(request.jobs) == 1
    return request.jobs[0]


# ---------------------------------------------------------------------------------------------------------------
# Shapes


SHAPE_1 = {"jobId": JOB, "vaultId": VAULT_ID}
SHAPE_2 = {"jobId": JOB, "subscriptionId": SUB, "resourceGroup": RG, "vaultName": VAULT}
SHAPE_3 = {"jobResourceId": JOB_RESOURCE_ID}


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(SHAPE_1),
        json.dumps(SHAPE_2),
        json.dumps(SHAPE_3),
        JOB_RESOURCE_ID,  # a bare id as plain text
        json.dumps(JOB_RESOURCE_ID),  # a bare id as a JSON string
        f"  {JOB_RESOURCE_ID}\r\n",
        json.dumps(SHAPE_1, indent=2) + "\n",
    ],
    ids=["shape1", "shape2", "shape3", "bare-id", "bare-id-json-string", "bare-id-whitespace", "pretty-json"],
)
@pytest.mark.parametrize("encoding", ["plain-str", "plain-bytes", "base64-str", "base64-bytes"])
def test_every_job_shape_in_every_encoding_names_the_same_job(text: str, encoding: str) -> None:
    body: str | bytes = b64(text) if encoding.startswith("base64") else text
    if encoding.endswith("bytes"):
        body = body.encode("utf-8")
    request = parse(body)
    job = the_job(request)
    assert job == EXPECTED_JOB
    assert job.key == EXPECTED_JOB.key
    assert request.subscriber == Subscriber()
    assert request.timeout_minutes is None


def test_the_same_job_in_any_shape_or_casing_has_one_tracking_key() -> None:
    messages = [
        SHAPE_1,
        {"jobId": JOB.upper(), "vaultId": VAULT_ID.upper()},
        {"jobId": JOB, "subscriptionId": SUB.upper(), "resourceGroup": RG.upper(), "vaultName": VAULT.upper()},
        {"jobResourceId": JOB_RESOURCE_ID.replace("/subscriptions/", "/Subscriptions/")},
        {"jobResourceId": JOB_RESOURCE_ID.replace("Microsoft.RecoveryServices", "microsoft.recoveryservices")},
        JOB_RESOURCE_ID.swapcase(),
        {"vaultId": VAULT_ID.lower(), "operation": {"name": OP, "status": "Succeeded", "properties": {"jobId": JOB}}},
    ]
    keys = {the_job(parse(m)).key for m in messages}
    assert keys == {EXPECTED_JOB.key}


def test_seed_operation_response_is_shape_4() -> None:
    operation = fixture_json("seed-operation-response.json")
    request = parse({"vaultId": VAULT_ID, "operation": operation})
    job = the_job(request)
    assert job.job_id == "41f3e94b-ae6b-4a20-b422-65abfcaf03e5"
    assert job.vault.key == parse_vault_id(VAULT_ID).key


def test_protected_item_operation_status_fixture_is_shape_4() -> None:
    body = fixture_json("azure-rest-api-specs/ProtectedItemOperationStatus.json")["responses"]["200"]["body"]
    job = the_job(parse({"vaultId": VAULT_ID, "operation": body}))
    assert job.job_id == body["properties"]["jobId"]


def test_shape_4_accepts_the_vault_as_three_parts_too() -> None:
    operation = fixture_json("seed-operation-response.json")
    request = parse({"subscriptionId": SUB, "resourceGroup": RG, "vaultName": VAULT, "operation": operation})
    assert the_job(request).key == EXPECTED_JOB.key


def test_shape_4_with_job_ids_tracks_every_job_once() -> None:
    operation = {
        "name": OP,
        "status": "Succeeded",
        "properties": {"objectType": "OperationStatusJobsExtendedInfo", "jobIds": [JOB, JOB2, JOB.upper()]},
    }
    request = parse({"vaultId": VAULT_ID, "operation": operation})
    assert [job.job_id for job in request.jobs] == [JOB, JOB2]
    assert request.operation is None and request.failed_operation is None


@pytest.mark.parametrize("status", ["Succeeded", "InProgress", "Failed"])
def test_shape_4_jobs_azure_failed_to_create_are_named_with_their_error_code(status: str) -> None:
    # OperationStatusJobsExtendedInfo (bms.json): jobIds, and failedJobsError {jobId: errorCode}.
    operation = {
        "name": OP,
        "status": status,
        "properties": {"objectType": "OperationStatusJobsExtendedInfo", "jobIds": [JOB],
                       "failedJobsError": {JOB2.upper(): "UserErrorBackupOperationInProgress"}},
    }
    request = parse({"vaultId": VAULT_ID, "operation": operation})
    assert [job.job_id for job in request.jobs] == [JOB, JOB2]
    assert request.failed_jobs == {JOB2: "UserErrorBackupOperationInProgress"}
    assert (request.failed_operation is not None) == (status == "Failed")


@pytest.mark.parametrize("status", ["Failed", "Canceled"])
def test_shape_4_failed_or_canceled_operation_is_a_result_at_once(status: str) -> None:
    operation = {
        "id": OP,
        "name": OP,
        "status": status,
        "startTime": "2018-09-12T02:16:56.7399752Z",
        "endTime": "2018-09-12T02:17:56.7399752Z",
        "error": {"code": "UserErrorVmNotFound", "message": "The VM does not exist."},
    }
    request = parse({"vaultId": VAULT_ID, "operation": operation, "correlationId": "run-7"})
    failed = request.failed_operation
    assert failed is not None
    assert request.jobs == () and request.operation is None
    assert failed.state.status == status
    assert failed.ref.operation_id == OP
    assert failed.state.resource["error"] == operation["error"]  # the error travels into the result event
    assert failed.ref.vault.key == parse_vault_id(VAULT_ID).key
    assert request.subscriber.correlation_id == "run-7"


def test_shape_4_in_progress_operation_without_job_is_followed_via_backup_operations() -> None:
    body = fixture_json("azure-rest-api-specs/ProtectedItem_Delete_OperationStatus.json")["responses"]["200"]["body"]
    request = parse({"vaultId": VAULT_ID, "operation": body})
    assert request.jobs == () and request.failed_operation is None
    assert request.operation is not None
    assert request.operation.path() == f"{VAULT_ID}/backupOperations/{body['name']}"


def test_shape_4_succeeded_operation_without_job_is_rejected() -> None:
    reason = rejected({"vaultId": VAULT_ID, "operation": {"name": OP, "status": "Succeeded", "properties": {}}})
    assert "jobId" in reason


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"vaultId": VAULT_ID, "operation": "Succeeded"}, "operation"),
        ({"vaultId": VAULT_ID, "operation": [1]}, "operation"),
        ({"vaultId": VAULT_ID, "operation": {"name": OP, "status": "Done"}}, "operation.status"),
        ({"vaultId": VAULT_ID, "operation": {"name": OP}}, "operation.status"),
        ({"operation": fixture_json("seed-operation-response.json")}, "vaultId"),
        ({"vaultId": VAULT_ID, "operation": {"name": OP, "status": "Succeeded", "properties": {"jobId": "x"}}},
         "jobId"),
        ({"vaultId": VAULT_ID, "operation": {"name": OP, "status": "Succeeded", "properties": {"jobIds": [JOB, 7]}}},
         "jobId"),
        ({"vaultId": VAULT_ID, "operation": {"name": "../x", "status": "InProgress"}}, "operation.name"),
        ({"vaultId": VAULT_ID, "operation": {"status": "Failed", "error": {"code": "X"}}}, "operation.name"),
    ],
)
def test_shape_4_problems_are_rejected_naming_the_field(message: dict[str, Any], field: str) -> None:
    assert field in rejected(message)


@pytest.mark.parametrize(
    "fixture", ["TriggerBackup_Post.json", "TriggerRestore_RestoreDisks_IaasVMRestoreRequest.json"]
)
@pytest.mark.parametrize("header", ["Azure-AsyncOperation", "Location"])
def test_shape_5_operation_urls_from_trigger_responses(fixture: str, header: str) -> None:
    url = fixture_json(f"azure-rest-api-specs/{fixture}")["responses"]["202"]["headers"][header]
    request = parse(json.dumps({"operationUrl": url}))
    assert request.jobs == () and request.failed_operation is None
    assert request.operation == parse_operation_url(url, ARM)
    assert request.operation.path().endswith("/operationsStatus/00000000-0000-0000-0000-000000000000")
    # The configured endpoint is what counts: the same URL is refused when ARM_ENDPOINT is the simulator.
    reason = rejected({"operationUrl": url}, arm="http://127.0.0.1:7071")
    assert "operationUrl" in reason and "ARM_ENDPOINT" in reason


def test_shape_5_location_and_async_operation_name_one_operation() -> None:
    headers = fixture_json("azure-rest-api-specs/TriggerBackup_Post.json")["responses"]["202"]["headers"]
    keys = {parse({"operationUrl": headers[h]}).operation.key for h in ("Azure-AsyncOperation", "Location")}
    assert len(keys) == 1


@pytest.mark.parametrize(
    "url",
    [
        f"https://evil.example.com{VAULT_ID}/backupOperations/{OP}",
        f"https://management.azure.com@evil.example.com{VAULT_ID}/backupOperations/{OP}",
        f"http://management.azure.com{VAULT_ID}/backupOperations/{OP}",
    ],
)
def test_shape_5_url_off_the_arm_endpoint_is_rejected(url: str) -> None:
    reason = rejected({"operationUrl": url})
    assert "operationUrl" in reason and "ARM_ENDPOINT" in reason


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"jobId": "not-a-guid", "vaultId": VAULT_ID}, "jobId"),
        ({"jobId": 12345, "vaultId": VAULT_ID}, "jobId"),
        ({"jobId": JOB, "vaultId": "prod-vault"}, "vaultId"),
        ({"jobId": JOB, "vaultId": VAULT_ID + "/../other"}, "vaultId"),
        ({"jobId": JOB, "vaultId": None}, "vaultId"),
        ({"jobId": JOB, "subscriptionId": SUB, "resourceGroup": RG}, "vaultName"),
        ({"jobId": JOB, "vaultName": VAULT}, "subscriptionId"),
        ({**SHAPE_2, "subscriptionId": "sub"}, "subscriptionId"),
        ({**SHAPE_2, "resourceGroup": "rg/../../x"}, "resourceGroup"),
        ({**SHAPE_2, "resourceGroup": "rg?api-version=1"}, "resourceGroup"),
        ({**SHAPE_2, "vaultName": "v%2F.."}, "vaultName"),
        ({"jobResourceId": JOB_RESOURCE_ID + "/../../x"}, "jobResourceId"),
        ({"jobResourceId": ["x"]}, "jobResourceId"),
        ({"jobResourceId": JOB_RESOURCE_ID.replace(JOB, "1")}, "jobResourceId"),
        ({"operationUrl": 5}, "operationUrl"),
        (f"{VAULT_ID}/backupJobs/not-a-guid", "message"),
        (json.dumps(f"{VAULT_ID}/backupJobs/not-a-guid"), "message"),
    ],
)
def test_bad_ids_are_rejected_naming_the_field(message: dict[str, Any] | str, field: str) -> None:
    assert field in rejected(message)


@pytest.mark.parametrize(
    "body",
    ["", "   \n", b"", b"\xff\xfe\x00garbage", "hello world", "[1, 2]", "42", "null", "true", '"just text"', "{",
     "{}", '{"correlationId": "x"}', b64("not json"), b64(""), "e30="],  # e30= is base64 of {}
)
def test_messages_that_name_no_job_are_rejected_with_a_reason(body: str | bytes) -> None:
    rejected(body)


def test_a_backup_vault_job_id_is_accepted_and_a_malformed_one_refused_naming_the_field() -> None:
    body = fixture_json("azure-rest-api-specs/GetJob.json")["responses"]["200"]["body"]
    assert "jobResourceId" in rejected({"jobResourceId": body["id"].replace("backupJobs/", "backupJobs/x")})
    assert "Backup vault job id" in rejected(body["id"] + "/more")


@pytest.mark.parametrize(
    "message",
    [
        {"jobId": JOB + "\n", "vaultId": VAULT_ID},
        {**SHAPE_2, "subscriptionId": SUB + "\n"},
        {**SHAPE_2, "vaultName": VAULT + "\n"},
        {**SHAPE_2, "resourceGroup": RG + "\n"},
        {"vaultId": VAULT_ID, "operation": {"name": OP, "status": "Succeeded", "properties": {"jobId": JOB + "\n"}}},
    ],
)
def test_a_newline_after_an_id_is_not_a_second_job(message: dict[str, Any]) -> None:
    """Either refused, or the very same job: never a new tracking id with ``%0A`` in its ARM path."""
    try:
        job = the_job(parse(message))
    except IntakeRejected:
        return
    assert job.key == EXPECTED_JOB.key
    assert "%0A" not in job_path(job)


@pytest.mark.parametrize(
    "body",
    [
        "1" * 5000,
        '{"jobId": ' + "1" * 5000 + "}",
        '{"jobResourceId": "x", "context": {"n": ' + "9" * 4500 + "}}",
        "[" * 50_000 + "]" * 50_000,
        '{"context": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}",
    ],
    ids=["huge-int", "huge-int-field", "huge-int-in-context", "deep-array", "deep-context"],
)
def test_pathological_json_is_rejected_not_crashed_on(body: str) -> None:
    """Rejected (goes to ``-rejected`` with a reason), never an unexpected exception (``-poison``)."""
    rejected(body)


# ---------------------------------------------------------------------------------------------------------------
# Optional fields


def test_correlation_id_is_kept() -> None:
    request = parse({**SHAPE_1, "correlationId": "x" * 1024})
    assert request.subscriber.correlation_id == "x" * 1024


@pytest.mark.parametrize("value", ["x" * 1025, 12, ["a"], {"id": "a"}, True])
def test_bad_correlation_id_is_rejected(value: object) -> None:
    assert "correlationId" in rejected({**SHAPE_1, "correlationId": value})


def test_context_up_to_16_kb_is_kept() -> None:
    context = {"a": "x" * (16 * 1024 - len('{"a":""}'))}
    assert len(json.dumps(context, separators=(",", ":"))) == 16 * 1024
    request = parse({**SHAPE_3, "context": context})
    assert request.subscriber.context == context
    nested = {"ticket": {"id": 17, "tags": ["a", "b"], "owner": None, "ratio": 0.5}}
    assert parse({**SHAPE_1, "context": nested}).subscriber.context == nested


@pytest.mark.parametrize("context", [{"a": "x" * 17 * 1024}, {"k": ["é" * 6000]}])
def test_context_over_16_kb_is_rejected_naming_context(context: dict[str, Any]) -> None:
    assert "context" in rejected({**SHAPE_1, "context": context})


@pytest.mark.parametrize("context", [[1, 2], "text", 5, True])
def test_context_must_be_an_object(context: object) -> None:
    assert "context" in rejected({**SHAPE_1, "context": context})


def test_callback_url_on_an_allowed_host_is_kept() -> None:
    url = "https://hooks.example.com/backup/done?code=s3cret"
    request = parse({**SHAPE_1, "callbackUrl": url})
    assert request.subscriber.callback_url == url
    assert "s3cret" not in repr(request)  # the callback URL may carry a key: never in repr or logs


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/done",
        "https://evil.example.com/done",
        "https://hooks.example.com.evil.example.com/done",
        "https://169.254.169.254/metadata",
        "https://127.0.0.1/done",
        "hooks.example.com/done",
        "",
        "ftp://hooks.example.com/done",
    ],
)
def test_callback_url_not_https_on_an_allowed_host_is_rejected(url: str) -> None:
    assert "callbackUrl" in rejected({**SHAPE_1, "callbackUrl": url})


@pytest.mark.parametrize("value", [5, ["https://hooks.example.com/"], {"url": "x"}])
def test_callback_url_must_be_a_string(value: object) -> None:
    assert "callbackUrl" in rejected({**SHAPE_1, "callbackUrl": value})


def test_callback_url_on_a_wildcard_host_must_resolve_to_public_addresses() -> None:
    allowed = AllowedHosts.from_setting("*.example.com")
    message = {**SHAPE_1, "callbackUrl": "https://relay.example.com/hook"}
    resolved.clear()
    assert parse(message, allowed=allowed).subscriber.callback_url == message["callbackUrl"]
    assert resolved == ["relay.example.com"]
    for private in (["10.0.0.4"], ["169.254.169.254"], [PUBLIC_IP, "127.0.0.1"], ["::1"]):
        reason = rejected(message, allowed=allowed, resolve=lambda host, port, a=private: a)
        assert "callbackUrl" in reason


@pytest.mark.parametrize("minutes", [1, 60, 90.5, 129600])
def test_timeout_minutes_is_kept(minutes: float) -> None:
    assert parse({**SHAPE_1, "timeoutMinutes": minutes}).timeout_minutes == float(minutes)


@pytest.mark.parametrize("minutes", [0, -5, "60", True, 10**9, [60], {"m": 1}])
def test_bad_timeout_minutes_is_rejected(minutes: object) -> None:
    assert "timeoutMinutes" in rejected({**SHAPE_1, "timeoutMinutes": minutes})


def test_optional_fields_apply_to_every_shape() -> None:
    extras = {"correlationId": "c-1", "context": {"run": 3}, "callbackUrl": "https://hooks.example.com/x",
              "timeoutMinutes": 30}
    operation = fixture_json("seed-operation-response.json")
    url = fixture_json("azure-rest-api-specs/TriggerBackup_Post.json")["responses"]["202"]["headers"]["Location"]
    for shape in (SHAPE_1, SHAPE_2, SHAPE_3, {"vaultId": VAULT_ID, "operation": operation}, {"operationUrl": url}):
        request = parse(b64(json.dumps({**shape, **extras})))
        assert request.subscriber == Subscriber("c-1", {"run": 3}, "https://hooks.example.com/x")
        assert request.timeout_minutes == 30.0


# ---------------------------------------------------------------------------------------------------------------
# Subscriber.key


def test_no_optional_fields_is_the_default_subscriber() -> None:
    assert Subscriber().key == "default"
    assert parse(SHAPE_1).subscriber.key == "default"
    assert parse({**SHAPE_1, "timeoutMinutes": 10}).subscriber.key == "default"  # not a subscriber field


def test_same_subscriber_fields_give_the_same_key_in_any_shape() -> None:
    extras = {"correlationId": "c-1", "context": {"a": 1, "b": [1, 2]}, "callbackUrl": "https://hooks.example.com/x"}
    one = parse({**SHAPE_1, **extras}).subscriber
    two = parse(b64(json.dumps({**extras, **SHAPE_3}))).subscriber
    assert one.key == two.key != "default"


def test_subscriber_key_does_not_depend_on_the_order_of_context_keys() -> None:
    job = json.dumps(JOB_RESOURCE_ID)
    first = parse('{"jobResourceId": ' + job + ', "context": {"a": 1, "b": {"x": 1, "y": 2}}}')
    second = parse('{"context": {"b": {"y": 2, "x": 1}, "a": 1}, "jobResourceId": ' + job + "}")
    assert first.subscriber.key == second.subscriber.key


def test_each_subscriber_field_changes_the_key() -> None:
    base = Subscriber("c-1", {"a": 1}, "https://hooks.example.com/x")
    variants = [
        base,
        Subscriber("c-2", {"a": 1}, "https://hooks.example.com/x"),
        Subscriber("c-1", {"a": 2}, "https://hooks.example.com/x"),
        Subscriber("c-1", {"a": 1}, "https://hooks.example.com/y"),
        Subscriber("c-1", {"a": 1}, None),
        Subscriber(None, {"a": 1}, "https://hooks.example.com/x"),
        Subscriber("c-1", None, "https://hooks.example.com/x"),
        Subscriber(correlation_id=""),
        Subscriber(context={}),
    ]
    keys = [s.key for s in variants]
    assert len(set(keys)) == len(keys)
    assert "default" not in keys
    assert all("hooks.example.com" not in key for key in keys)  # the key does not leak the callback URL


# ---------------------------------------------------------------------------------------------------------------
# Property: anything is either a clean request or a rejection with a reason


ID_FIELDS = ["jobId", "vaultId", "subscriptionId", "resourceGroup", "vaultName", "jobResourceId", "operation",
             "operationUrl", "correlationId", "context", "callbackUrl", "timeoutMinutes"]
_TRICKS = ["/", "..", "/../", "?", "#", "%2F", "%2e%2e", "//", "\\", "\n", " ", "@", ":", ";", "&api-version=1",
           "é", "\u0130", "\U0001f600", "\x00", "x" * 5000, "/subscriptions/", "/backupJobs/", ".", "(", "$"]
_VALID = [JOB, JOB.upper(), OP, SUB, RG, VAULT, VAULT_ID, JOB_RESOURCE_ID, ARM + VAULT_ID + f"/backupOperations/{OP}",
          "https://hooks.example.com/x", "Succeeded", "Failed", "InProgress", "Canceled"]


def _tricky_text() -> st.SearchStrategy[str]:
    piece = st.one_of(st.sampled_from(_TRICKS + _VALID), st.text(max_size=8))
    return st.lists(piece, max_size=5).map("".join)


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), _tricky_text(), st.sampled_from(_VALID)
)
_json_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.sampled_from([*ID_FIELDS, "name", "id", "status", "properties", "jobIds"]),
                                  st.text(max_size=5)), inner, max_size=4),
    ),
    max_leaves=12,
)
_operations = st.fixed_dictionaries(
    {"status": st.one_of(st.sampled_from(["Succeeded", "Failed", "Canceled", "InProgress", "Invalid", "x"]), _scalars)},
    optional={
        "name": st.one_of(st.sampled_from([OP, OP.upper()]), _tricky_text(), _json_values),
        "id": st.one_of(st.just(OP), _tricky_text()),
        "properties": st.one_of(
            st.fixed_dictionaries({}, optional={"jobId": st.one_of(st.just(JOB), _tricky_text(), _scalars),
                                                "jobIds": st.one_of(st.lists(st.one_of(st.just(JOB2), _tricky_text())),
                                                                    _json_values)}),
            _json_values,
        ),
        "error": _json_values,
    },
)
_optional_values = {
    "correlationId": st.one_of(st.just("c-1"), st.text(max_size=20), _tricky_text(), _scalars),
    "context": st.one_of(st.just({"a": 1}), st.dictionaries(st.text(max_size=5), _json_values, max_size=3),
                         _json_values),
    "callbackUrl": st.one_of(st.just("https://hooks.example.com/x"), st.just("https://hooks.example.com/"),
                             _tricky_text(), _scalars),
    "timeoutMinutes": st.one_of(st.just(30), st.integers(1, 10_000), _scalars),
}
_BASES = [
    {"jobId": JOB, "vaultId": VAULT_ID},
    {"jobId": JOB, "subscriptionId": SUB, "resourceGroup": RG, "vaultName": VAULT},
    {"jobResourceId": JOB_RESOURCE_ID},
    {"vaultId": VAULT_ID, "operation": {"name": OP, "status": "Succeeded", "properties": {"jobId": JOB}}},
    {"vaultId": VAULT_ID, "operation": {"name": OP, "status": "Succeeded", "properties": {"jobIds": [JOB, JOB2]}}},
    {"vaultId": VAULT_ID, "operation": {"name": OP, "status": "InProgress"}},
    {"vaultId": VAULT_ID, "operation": {"name": OP, "status": "Failed", "error": {"code": "E", "message": "m"}}},
    {"operationUrl": ARM + VAULT_ID + f"/backupOperations/{OP}"},
    {"operationUrl": fixture_json("azure-rest-api-specs/TriggerBackup_Post.json")["responses"]["202"]["headers"][
        "Location"]},
]


@st.composite
def _messages(draw: st.DrawFn) -> dict[str, Any]:
    """A valid shape with a few fields spliced, replaced or added: the edges where validation must hold."""
    message = json.loads(json.dumps(draw(st.sampled_from(_BASES))))
    for _ in range(draw(st.integers(0, 2))):
        field = draw(st.sampled_from(ID_FIELDS))
        current = message.get(field)
        how = draw(st.sampled_from(["splice", "replace", "json"]))
        if how == "splice" and isinstance(current, str):
            at = draw(st.integers(0, len(current)))
            message[field] = current[:at] + draw(_tricky_text()) + current[at:]
        elif how == "splice" and isinstance(current, dict):  # an operation: disturb one of its fields
            key = draw(st.sampled_from(["name", "id", "status", "properties", "error"]))
            current[key] = draw(st.one_of(_tricky_text(), _json_values,
                                          st.just({"jobId": draw(_tricky_text().map(lambda t: JOB + t))})))
        elif how == "replace":
            message[field] = draw(_tricky_text())
        else:
            message[field] = draw(_json_values)
    for field, values in _optional_values.items():
        if draw(st.integers(0, 3)) == 0:
            message[field] = draw(values)
    return message


def _encodings(value: Any) -> st.SearchStrategy[str | bytes]:
    text = json.dumps(value)
    return st.sampled_from([text, text.encode("utf-8"), b64(text)])


_bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200),
    _tricky_text(),
    _tricky_text().map(lambda t: f"{VAULT_ID}/backupJobs/{t}"),
    _json_values.flatmap(_encodings),
    _messages().flatmap(_encodings),
    _messages().flatmap(_encodings),
)


def _no_resolution(host: str, port: int) -> list[str]:
    return [PUBLIC_IP]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(body=_bodies)
@example(body=json.dumps({"jobResourceId": JOB_RESOURCE_ID, "vaultName": "a..", "context": {"k": "x" * 20000}}))
def test_any_message_is_a_clean_request_or_a_rejection(body: str | bytes) -> None:
    try:
        request = parse_message(body, arm_endpoint=ARM, allowed_hosts=ALLOWED, resolve=_no_resolution)
    except IntakeRejected as exc:
        reason = str(exc)
        assert reason.strip() and "\n" not in reason and "\r" not in reason
        return
    refs: list[JobRef | OperationRef] = [*request.jobs]
    if request.operation is not None:
        refs.append(request.operation)
    assert refs or request.failed_operation is not None
    for ref in refs:
        assert ref.vault.subscription_id == ref.vault.subscription_id.lower()
        assert GUID.fullmatch(ref.vault.subscription_id)
        assert GUID.fullmatch(ref.job_id if isinstance(ref, JobRef) else ref.operation_id)
        path = job_path(ref) if isinstance(ref, JobRef) else ref.path()
        segments = path.split("/")
        assert segments[:2] == ["", "subscriptions"]
        assert not {".", ".."} & set(segments)  # no dot segments (".." inside a valid name, like "a..b", is harmless)
        assert "?" not in path and "#" not in path and "//" not in path and "%2f" not in path.lower()
        assert "%0a" not in path.lower() and "%00" not in path
    if request.failed_operation is not None:
        assert GUID.fullmatch(request.failed_operation.ref.operation_id)
    sub = request.subscriber
    assert sub.correlation_id is None or (isinstance(sub.correlation_id, str) and len(sub.correlation_id) <= 1024)
    assert sub.context is None or isinstance(sub.context, dict)
    assert sub.callback_url is None or sub.callback_url.startswith("https://hooks.example.com")
    assert request.timeout_minutes is None or request.timeout_minutes > 0


# -- Operation messages and rejections, word for word --------------------------------------------------------------


def parse_without_callbacks(message: dict[str, Any]) -> TrackRequest:
    return parse_message(json.dumps(message), arm_endpoint=ARM, allowed_hosts=AllowedHosts())


def rejection(message: dict[str, Any]) -> str:
    with pytest.raises(IntakeRejected) as info:
        parse_without_callbacks(message)
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
    request = parse_without_callbacks(
        {"vaultId": VAULT_ID, "timeoutMinutes": 30, "operation": {"id": OP, "status": "InProgress"}})
    assert request.operation is not None and request.operation.operation_id == OP
    assert request.timeout_minutes == 30 and request.jobs == ()
    request = parse_without_callbacks(
        {"vaultId": VAULT_ID, "operation": {"name": OP, "id": "ignored", "status": "InProgress"}})
    assert request.operation is not None and request.operation.operation_id == OP


def test_an_operation_id_that_is_not_a_guid_names_operation_name() -> None:
    for operation in ({"id": "nope", "status": "InProgress"}, {"id": "nope", "status": "Failed"}):
        assert rejection({"vaultId": VAULT_ID, "operation": operation}) == (
            "operation.name must be a GUID, got 'nope'"
        )


def test_a_failed_operation_is_concluded_with_its_jobs_and_the_timeout() -> None:
    request = parse_without_callbacks({"vaultId": VAULT_ID, "timeoutMinutes": 45, "operation": {
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
