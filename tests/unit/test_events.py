"""The result event: CloudEvents 1.0 structured JSON, stable ids, and errors from every job type."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import isodate
import pytest
from cloudevents.core.v1.event import CloudEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.domain import events
from jobs.domain.events import event_id, serialize_event
from jobs.providers import for_vault, job_resource_id, parse_job_id
from jobs.providers.recovery_services import errors_from_job
from tests.conftest import ROOT, fixture_json

SEED_JOB = fixture_json("seed-job-response.json")
JOB_REF = parse_job_id(SEED_JOB["id"])
JOB_RESOURCE_ID = job_resource_id(JOB_REF)
VAULT_ID = JOB_REF.vault.id
TRACKING = JOB_REF.key
SEEN = datetime(2025, 3, 1, 8, 30, 15, 250000, tzinfo=UTC)
RFC3339_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")



def build_event(**kwargs: Any) -> CloudEvent:
    """The event as the tracker builds it: ``type``, ``subject`` and the job's fields mapped by the vault's
    provider."""
    provider = for_vault(kwargs["vault_id"])
    subject = provider.event_subject(kwargs.get("job_id"), kwargs.get("operation_id") or kwargs["tracking_id"])
    return events.build_event(event_type=provider.event_type(kwargs["status"]), subject=subject,
                              job_fields=provider.event_fields(kwargs.get("job")), **kwargs)


BASE_DATA_KEYS = {
    "jobId", "jobResourceId", "vaultId", "status", "operation", "jobType", "backupManagementType",
    "entityFriendlyName", "startTime", "endTime", "duration", "errors", "tasks", "propertyBag", "dynamicErrorMessage",
    "job",
}


def event_json(**overrides: Any) -> dict[str, Any]:
    """The event as a subscriber reads it: the serialized bytes, parsed."""
    kwargs: dict[str, Any] = {
        "tracking_id": TRACKING,
        "status": "Completed",
        "seen_at": SEEN,
        "vault_id": VAULT_ID,
        "subscriber_key": "default",
        "job_id": JOB_REF.job_id,
        "job_resource_id": JOB_RESOURCE_ID,
        "job": SEED_JOB,
    }
    kwargs.update(overrides)
    return json.loads(serialize_event(build_event(**kwargs)))


def job_with_errors(job_type: str, details: list[dict[str, Any]] | None) -> dict[str, Any]:
    job = copy.deepcopy(SEED_JOB)
    job["properties"]["jobType"] = job_type
    job["properties"]["status"] = "Failed"
    job["properties"]["errorDetails"] = details
    return job


# ---------------------------------------------------------------------------------------------------------------
# Attributes and data


def test_event_attributes_follow_the_contract() -> None:
    event = event_json()
    assert event["specversion"] == "1.0"
    # The id's derivation pinned with known inputs and outputs (UUIDv5 over "trackingid|status|subscriber" in the
    # tracker's namespace): changing it would give every event already sent a new id on a redelivery.
    assert event["id"] == "4e29d199-41bf-5802-9291-36f9463a1701"  # TRACKING, Completed, default
    assert event_id("abc", "Completed", "default") == "080e8499-4715-5b1c-ac72-0063e09c62b8"
    assert event_id(TRACKING.upper(), "Completed", "default") == event["id"]  # the tracking id's case is not part
    assert event_id(TRACKING, "Completed", "default") == str(
        uuid.uuid5(uuid.UUID("6f1b1c1e-7d7a-4a53-9a36-0b7a3c8f0e21"), f"{TRACKING}|Completed|default"))
    assert event["source"] == VAULT_ID
    assert event["type"] == "BackupJob.Completed"
    assert event["subject"] == f"backupJobs/{JOB_REF.job_id}"
    assert event["datacontenttype"] == "application/json"
    assert RFC3339_Z.match(event["time"]), event["time"]
    assert datetime.fromisoformat(event["time"].replace("Z", "+00:00")) == SEEN


def test_event_data_carries_the_job_in_full() -> None:
    data = event_json()["data"]
    assert set(data) == BASE_DATA_KEYS  # no correlationId/context unless given
    props = SEED_JOB["properties"]
    assert data["jobId"] == "7ddead57-bcb9-4269-ac31-6a1b57588700"
    assert data["jobResourceId"] == JOB_RESOURCE_ID
    assert data["vaultId"] == VAULT_ID
    assert data["status"] == "Completed"
    assert data["operation"] == "Backup"
    assert data["jobType"] == "AzureIaaSVMJob"
    assert data["backupManagementType"] == "AzureIaasVM"
    assert data["entityFriendlyName"] == "uttestvmub1"
    assert data["startTime"] == props["startTime"]
    assert data["endTime"] == props["endTime"]
    assert props["duration"] == "00:20:23.0896697"  # a .NET TimeSpan, as Azure wrote it
    assert data["duration"] == "PT20M23.08967S"  # ISO 8601 in data (point 17); Azure's text in data.job
    assert data["errors"] == []
    assert data["tasks"] == [{**task, "duration": "P0D"} for task in props["extendedInfo"]["tasksList"]]
    assert data["propertyBag"] == {"VM Name": "uttestvmub1", "Backup Size": "2332 MB"}
    assert data["job"] == SEED_JOB  # exactly as Azure returned it, extendedInfo included


def test_correlation_id_and_context_are_echoed_when_given() -> None:
    context = {"ticket": "INC-42", "nested": {"list": [1, "two", None]}}
    data = event_json(correlation_id="run-7", context=context)["data"]
    assert data["correlationId"] == "run-7"
    assert data["context"] == context
    assert set(data) == BASE_DATA_KEYS | {"correlationId", "context"}
    only_context = event_json(context={})["data"]
    assert only_context["context"] == {} and "correlationId" not in only_context


@pytest.mark.parametrize(
    "status",
    ["Completed", "CompletedWithWarnings", "Failed", "Cancelled", "TimedOut", "NotFound", "OperationFailed"],
)
def test_type_names_each_terminal_status(status: str) -> None:
    event = event_json(status=status)
    assert event["type"] == f"BackupJob.{status}"
    assert event["data"]["status"] == status


def test_not_found_event_without_a_job() -> None:
    errors = [{"code": "AuthorizationFailed", "message": "no Backup Reader", "recommendations": []}]
    event = event_json(status="NotFound", job=None, errors=errors)
    data = event["data"]
    assert event["subject"] == f"backupJobs/{JOB_REF.job_id}"
    assert data["errors"] == errors
    assert data["job"] is None
    assert data["tasks"] == [] and data["propertyBag"] == {}
    assert data["jobType"] is None and data["operation"] is None


def test_given_errors_replace_the_jobs_own() -> None:
    job = job_with_errors("AzureIaaSVMJob", [{"errorCode": 1, "errorTitle": "T", "errorString": "S"}])
    timed_out = [{"code": "TrackingTimedOut", "message": "still InProgress", "recommendations": ["wait"]}]
    assert event_json(status="TimedOut", job=job, errors=timed_out)["data"]["errors"] == timed_out
    assert event_json(status="Failed", job=job)["data"]["errors"][0]["code"] == "1"
    assert event_json(status="Failed", job=job)["data"]["errors"][0]["title"] == "T"


def test_operation_failed_event_without_a_job_id() -> None:
    operation_id = str(uuid.uuid4())
    tracking = f"op-{operation_id}-abcdef12"
    event = event_json(tracking_id=tracking, status="OperationFailed", job_id=None, job_resource_id=None, job=None,
                       operation_id=operation_id,
                       errors=[{"code": "UserErrorVmNotFound", "message": "m", "recommendations": []}])
    assert event["type"] == "BackupJob.OperationFailed"
    assert event["data"]["jobId"] is None
    assert event["subject"] == f"backupOperations/{operation_id}"  # Azure's operation id, not the tracking id
    assert event["data"]["errors"][0]["code"] == "UserErrorVmNotFound"


def test_a_redelivery_is_byte_for_byte_the_same_event() -> None:
    """Built again in another process (another hash seed, another start time), the event is the same bytes.

    (Across storage, rebuilt by a fresh Tracker in another process from Table Storage, for a subscriber and one
    added after the end: tests/functional/test_redelivery.py.)"""
    kwargs = dict(tracking_id=TRACKING, status="Failed", seen_at=SEEN, vault_id=VAULT_ID, subscriber_key="abc",
                  job_id=JOB_REF.job_id, job_resource_id=JOB_RESOURCE_ID, job=SEED_JOB, correlation_id="c",
                  context={"b": 1, "a": 2, "set-like": ["z", "y"]})
    here = serialize_event(build_event(**kwargs))
    assert here == serialize_event(build_event(**copy.deepcopy(kwargs)))
    script = (
        "import sys\n"
        "from tests.unit.test_events import *\n"
        "kwargs = dict(tracking_id=TRACKING, status='Failed', seen_at=SEEN, vault_id=VAULT_ID, subscriber_key='abc',"
        " job_id=JOB_REF.job_id, job_resource_id=JOB_RESOURCE_ID, job=SEED_JOB, correlation_id='c',"
        " context={'b': 1, 'a': 2, 'set-like': ['z', 'y']})\n"
        "sys.stdout.buffer.write(serialize_event(build_event(**kwargs)))\n"
    )
    there = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, check=True, timeout=60,
                           env={**os.environ, "PYTHONHASHSEED": "12345"}).stdout
    assert there == here


def test_serialized_event_is_utf8_json_with_unicode_intact() -> None:
    job = copy.deepcopy(SEED_JOB)
    job["properties"]["entityFriendlyName"] = "vm-ünïcödé-日本"
    body = serialize_event(build_event(tracking_id=TRACKING, status="Completed", seen_at=SEEN, vault_id=VAULT_ID,
                                       subscriber_key="default", job_id=JOB_REF.job_id,
                                       job_resource_id=JOB_RESOURCE_ID, job=job))
    assert isinstance(body, bytes)
    event = json.loads(body.decode("utf-8"))
    assert event["data"]["entityFriendlyName"] == "vm-ünïcödé-日本"


@pytest.mark.parametrize(
    "seen", [datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2030, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)]
)
def test_time_is_rfc3339_in_utc(seen: datetime) -> None:
    text = event_json(seen_at=seen)["time"]
    assert RFC3339_Z.match(text), text
    assert datetime.fromisoformat(text.replace("Z", "+00:00")) == seen


# ---------------------------------------------------------------------------------------------------------------
# event_id


def test_event_id_is_stable_for_one_job_status_and_subscriber() -> None:
    first = event_id(TRACKING, "Completed", "default")
    assert event_id(TRACKING.upper(), "Completed", "default") == first
    assert event_id(TRACKING.swapcase(), "Completed", "default") == first
    assert uuid.UUID(first)  # a UUID, usable as webhook-id
    assert event_json()["id"] == event_json(tracking_id=TRACKING.upper())["id"] == first


def test_event_id_differs_across_status_subscriber_and_job() -> None:
    ids = {
        event_id(TRACKING, "Completed", "default"),
        event_id(TRACKING, "Failed", "default"),
        event_id(TRACKING, "TimedOut", "default"),
        event_id(TRACKING, "Completed", "3f2a9c"),
        event_id(TRACKING, "Completed", "9b1e77"),
        event_id("00000000-0000-0000-0000-000000000000-1a2b3c4d", "Completed", "default"),
    }
    assert len(ids) == 6


# ---------------------------------------------------------------------------------------------------------------
# errors_from_job: every job type's errorDetails shape


def test_iaas_vm_errors_carry_the_number_as_code_and_the_title_as_title() -> None:
    # AzureIaaSVMErrorInfo (bms.json): errorCode is the int32 code, errorTitle "typically, the entity that the
    # error pertains to".
    details = [{
        "errorCode": 400240,
        "errorTitle": "vm-db01",
        "errorString": "VM Agent unable to communicate with Azure Backup",
        "recommendations": ["Ensure the VM agent is installed and running.", "Check network connectivity."],
    }]
    for job_type in ("AzureIaaSVMJob", "AzureIaaSVMJobV2"):
        assert errors_from_job(job_with_errors(job_type, details)) == [{
            "code": "400240",
            "message": "VM Agent unable to communicate with Azure Backup",
            "recommendations": ["Ensure the VM agent is installed and running.", "Check network connectivity."],
            "title": "vm-db01",
        }]


def test_iaas_vm_error_without_title_has_no_title() -> None:
    errors = errors_from_job(job_with_errors("AzureIaaSVMJob", [{"errorCode": 400240, "errorString": "s"}]))
    assert errors == [{"code": "400240", "message": "s", "recommendations": []}]


@pytest.mark.parametrize("job_type", ["DpmJob", "MabJob"])
def test_dpm_and_mab_errors_carry_only_a_string(job_type: str) -> None:
    details = [{"errorString": "The replica is inconsistent.", "recommendations": ["Run a consistency check."]}]
    assert errors_from_job(job_with_errors(job_type, details)) == [
        {"code": None, "message": "The replica is inconsistent.", "recommendations": ["Run a consistency check."]}
    ]


def test_workload_errors() -> None:
    details = [{
        "errorCode": 59002,
        "errorString": "Backup failed because the database is offline.",
        "errorTitle": "sales",
        "recommendations": ["Bring the database online."],
        "additionalDetails": "DB: sales",
    }]
    assert errors_from_job(job_with_errors("AzureWorkloadJob", details)) == [{
        "code": "59002",
        "message": "Backup failed because the database is offline.",
        "recommendations": ["Bring the database online."],
        "title": "sales",
        "details": "DB: sales",
    }]


@pytest.mark.parametrize("job_type", ["AzureStorageJob", "VaultJob"])
def test_storage_and_vault_errors_use_the_error_code(job_type: str) -> None:
    details = [{"errorCode": 2146500000, "errorString": "The file share was not found.", "recommendations": []}]
    assert errors_from_job(job_with_errors(job_type, details)) == [
        {"code": "2146500000", "message": "The file share was not found.", "recommendations": []}
    ]


def test_a_zero_or_missing_error_code_is_no_code() -> None:
    details = [{"errorCode": 0, "errorString": "a"}, {"errorString": "b", "errorTitle": "vm"}]
    errors = errors_from_job(job_with_errors("AzureIaaSVMJob", details))
    assert [e["code"] for e in errors] == [None, None]
    assert errors[1]["title"] == "vm"


def test_dynamic_error_message_is_in_the_event() -> None:
    job = job_with_errors("AzureIaaSVMJob", [{"errorCode": 1, "errorString": "s"}])
    job["properties"]["extendedInfo"]["dynamicErrorMessage"] = "Snapshot failed: disk vm-db01_OsDisk is locked"
    data = event_json(status="Failed", job=job)["data"]
    assert data["dynamicErrorMessage"] == "Snapshot failed: disk vm-db01_OsDisk is locked"
    assert "dynamicErrorMessage" in events.JOB_FIELDS
    assert event_json()["data"]["dynamicErrorMessage"] is None  # a job without one


def test_several_errors_keep_their_order() -> None:
    details = [{"errorString": "first"}, {"errorTitle": "Second", "errorString": "second"}, {"errorString": "third"}]
    assert [e["message"] for e in errors_from_job(job_with_errors("MabJob", details))] == ["first", "second", "third"]


@pytest.mark.parametrize("details", [None, [], "not a list item", ["x", 3]])
def test_no_usable_error_details_means_no_errors(details: Any) -> None:
    job = job_with_errors("AzureIaaSVMJob", details if isinstance(details, list | None) else [details])
    assert errors_from_job(job) == []


def test_errors_from_no_job() -> None:
    assert errors_from_job(None) == []
    assert errors_from_job({}) == []
    assert errors_from_job({"properties": None}) == []


def test_fixture_jobs_have_no_errors() -> None:
    assert errors_from_job(SEED_JOB) == []
    details = fixture_json("azure-rest-api-specs/GetJobDetails.json")["responses"]["200"]["body"]
    assert errors_from_job(details) == []


def test_every_error_has_a_string_message() -> None:
    details = [{"errorCode": 1}, {"errorTitle": "OnlyTitle"}, {}]
    errors = errors_from_job(job_with_errors("AzureIaaSVMJob", details))
    assert len(errors) == 3
    assert all(isinstance(e["message"], str) and isinstance(e["recommendations"], list) for e in errors)
    assert errors[1]["code"] is None and errors[1]["title"] == "OnlyTitle"


# ---------------------------------------------------------------------------------------------------------------
# Point 17: every duration in ISO 8601, whatever form Azure wrote (property-based)

DURATION_PATTERN = re.compile(json.loads((ROOT / "schemas" / "backup-job-result.schema.json").read_text(
    encoding="utf-8"))["definitions"]["duration"]["pattern"])
DURATIONS = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=99_999))


def dotnet_timespan(value: timedelta, digits: int = 7) -> str:
    """``value`` as .NET's ``TimeSpan.ToString()`` writes it: ``[d.]hh:mm:ss[.fffffff]``."""
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = (f"{value.days}." if value.days else "") + f"{hours:02}:{minutes:02}:{seconds:02}"
    if value.microseconds:
        text += "." + f"{value.microseconds:06}0"[:digits]
    return text


@pytest.mark.parametrize(("azure", "iso"), [
    ("00:20:23.0896697", "PT20M23.08967S"),  # the Backup docs' own response
    ("1.02:03:04", "P1DT2H3M4S"),
    ("00:00:06", "PT6S"),
    ("00:00:00", "P0D"),
    ("PT1M30.5S", "PT1M30.5S"),
    ("PT9.8782791S", "PT9.878279S"),  # to the microsecond
    ("PT90S", "PT1M30S"),
    ("PT0S", "P0D"),
    (None, None), ("", None), ("soon", None), ("25:00:00", None), ("-00:00:01", None), ("-PT1S", None), (6, None),
])
def test_point17_durations_in_either_azure_form_become_iso_8601(azure: Any, iso: str | None) -> None:
    assert events.iso_duration(azure) == iso


@settings(max_examples=300, deadline=None)
@given(DURATIONS, st.integers(min_value=1, max_value=7))
def test_point17_a_dotnet_timespan_converts_to_the_same_duration_in_iso_8601(value: timedelta, digits: int) -> None:
    text = dotnet_timespan(value, digits)
    iso = events.iso_duration(text)
    assert iso is not None and DURATION_PATTERN.fullmatch(iso), (text, iso)
    assert abs(isodate.parse_duration(iso) - value) < timedelta(microseconds=10 ** (7 - digits) / 10 + 1), (text, iso)


@settings(max_examples=300, deadline=None)
@given(DURATIONS)
def test_point17_iso_8601_stays_the_same_duration_and_conversion_is_idempotent(value: timedelta) -> None:
    iso = events.iso_duration(isodate.duration_isoformat(value))
    assert iso is not None and DURATION_PATTERN.fullmatch(iso)
    assert isodate.parse_duration(iso) == value
    assert events.iso_duration(iso) == iso
    assert events.iso_duration(dotnet_timespan(value)) == iso  # both of Azure's forms give the same text


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_point17_any_text_gives_iso_8601_or_null(text: str) -> None:
    iso = events.iso_duration(text)
    assert iso is None or DURATION_PATTERN.fullmatch(iso), (text, iso)


def test_point17_the_event_has_iso_durations_and_keeps_azures_text_in_job() -> None:
    job = copy.deepcopy(SEED_JOB)
    job["properties"]["duration"] = "1.02:03:04.5"
    job["properties"]["extendedInfo"]["tasksList"] = [{"taskId": "Take Snapshot", "duration": "00:01:05"},
                                                      {"taskId": "Transfer", "duration": "PT2M"}, {"taskId": "x"}]
    data = event_json(job=job)["data"]
    assert data["duration"] == "P1DT2H3M4.5S"
    assert [task.get("duration") for task in data["tasks"]] == ["PT1M5S", "PT2M", None]
    assert "duration" not in data["tasks"][2]  # a task without one gets none
    assert data["job"] == job  # Azure's own text, untouched
