"""Ending an item on the tracker's own account: what mutation testing (`make mutation`) showed no test pinned down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobs.domain import tracking
from jobs.domain.references import JobRef
from jobs.domain.results import JobState, OperationState
from jobs.domain.tracked_item import TrackedItem
from jobs.providers import parse_vault_id, vault_operation

VAULT_ID = (
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/backup-rg"
    "/providers/Microsoft.RecoveryServices/vaults/prod-vault"
)
JOB = "41f3e94b-ae6b-4a20-b422-65abfcaf03e5"
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
LATER = T0 + timedelta(minutes=7)


def job_item() -> TrackedItem:
    item = TrackedItem.for_job(JobRef.create(parse_vault_id(VAULT_ID), JOB), T0, T0 + timedelta(hours=72))
    item.resource = {"properties": {"status": "InProgress"}}
    return item


def test_a_job_its_operation_failed_to_create_ends_operation_failed_with_azures_code() -> None:
    item = job_item()
    tracking.end_failed_job(item, "UserErrorJobCreationFailed", LATER)
    assert item.resource is None
    assert item.status == "OperationFailed" and item.result_status == "OperationFailed"
    assert item.ended_at == LATER
    assert item.errors == [{
        "code": "UserErrorJobCreationFailed",
        "message": f"Azure could not create job {JOB}: its operation reported error UserErrorJobCreationFailed",
        "recommendations": ["Check the operation in the vault and trigger the job again."],
    }]


def test_a_job_failed_without_a_code_says_so_and_its_code_is_null() -> None:
    item = job_item()
    tracking.end_failed_job(item, "", LATER)
    assert item.errors == [{
        "code": None,
        "message": f"Azure could not create job {JOB}: its operation reported error without a code",
        "recommendations": ["Check the operation in the vault and trigger the job again."],
    }]
    assert item.result_status == "OperationFailed" and item.ended_at == LATER


def test_tracking_failed_names_the_error_and_how_long_and_drops_the_resource() -> None:
    item = job_item()
    tracking.end_tracking_failed(item, ValueError("entity too large"), 912.4, LATER)
    assert item.resource is None
    assert item.result_status == "TrackingFailed" and item.ended_at == LATER
    assert item.errors == [{
        "code": "TrackingFailed",
        "message": "the tracker could not record this job for 912 s: ValueError: entity too large",
        "recommendations": ["Check the job in the vault; the tracker's log names the error for this tracking id."],
    }]


def test_tracking_failed_keeps_500_characters_of_the_error() -> None:
    item = job_item()
    tracking.end_tracking_failed(item, RuntimeError("x" * 499 + "yz"), 60, LATER)
    expected = "the tracker could not record this job for 60 s: RuntimeError: " + "x" * 499 + "y"
    assert item.errors[0]["message"] == expected


# ---------------------------------------------------------------------------------------------------------------
# observe_operation and the deadline

OP = "cd153561-20d3-467a-b911-cc1de47d4763"


def op_item() -> TrackedItem:
    ref = vault_operation(parse_vault_id(VAULT_ID), OP)
    return TrackedItem.for_operation(ref, T0, T0 + timedelta(hours=72))


def test_each_observation_of_an_operation_counts_and_clears_an_unknown_spell() -> None:
    item = op_item()
    item.unknown_since = T0
    item.poll_count = 4
    running = OperationState("InProgress", "running", {"status": "InProgress"})
    assert tracking.observe_operation(item, running, LATER) == []
    assert item.poll_count == 5 and item.last_polled_at == LATER and item.unknown_since is None
    assert item.status == "InProgress" and item.resource == {"status": "InProgress"} and not item.ended


def test_an_operation_that_succeeded_naming_no_job_ends_operation_failed_saying_so() -> None:
    item = op_item()
    resource = {"status": "Succeeded", "properties": {}}
    assert tracking.observe_operation(item, OperationState("Succeeded", "succeeded", resource, ("",)), LATER) == []
    assert item.result_status == "OperationFailed" and item.ended_at == LATER
    assert item.errors == [{"code": "OperationNamedNoJob", "message": "the operation succeeded but names no job",
                            "recommendations": []}]


def test_an_operation_that_failed_ends_when_it_was_seen_to() -> None:
    item = op_item()
    state = OperationState("Failed", "failed", {"status": "Failed"}, error={"code": "E1", "message": "broken"})
    assert tracking.observe_operation(item, state, LATER) == []
    assert item.ended_at == LATER and item.result_status == "OperationFailed"
    assert item.errors == [{"code": "E1", "message": "broken", "recommendations": []}]


def test_the_deadline_message_names_the_status_and_the_hours_tracked() -> None:
    item = TrackedItem.for_job(JobRef.create(parse_vault_id(VAULT_ID), JOB), T0, T0 + timedelta(hours=1, minutes=30))
    end = T0 + timedelta(hours=2)
    assert tracking.observe_operation(item, OperationState("", "running", {}), end) == []
    assert item.result_status == "TimedOut" and item.ended_at == end
    assert item.errors == [{
        "code": "TrackingTimedOut",
        "message": "the job was still unknown after 1.5 hours of tracking",
        "recommendations": ["Check the job in the vault; track it again to wait longer."],
    }]


class Missing:
    status, code, message = 404, "BMSUserErrorJobNotFound", "not found"

    def as_error(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "recommendations": []}


def test_each_missing_read_counts_as_a_poll() -> None:
    item = job_item()
    item.poll_count = 2
    assert tracking.observe_missing(item, Missing(), LATER, 900) is True  # the first miss changes the row
    assert item.poll_count == 3 and item.last_polled_at == LATER and item.unknown_since == LATER
    assert item.last_error == {"status": 404, "code": "BMSUserErrorJobNotFound", "message": "not found"}


def test_a_failed_operation_keeps_what_azure_said_and_when() -> None:
    item = op_item()
    state = OperationState("Canceled", "failed", {"status": "Canceled", "id": "x"})
    tracking.end_failed_operation(item, state, LATER)
    assert item.resource == {"status": "Canceled", "id": "x"} and item.status == "Canceled"
    assert item.ended_at == LATER and item.result_status == "OperationFailed"
    assert item.errors == [{"code": "OperationCanceled", "message": "the operation ended Canceled",
                            "recommendations": []}]


def test_a_job_observation_changes_the_row_only_when_something_changed() -> None:
    item = job_item()
    state = JobState("InProgress", False, {"properties": {"status": "InProgress"}})
    assert tracking.observe_job(item, state, LATER) is True  # from unknown
    assert tracking.observe_job(item, state, LATER) is False  # nothing new
    item.unknown_since = T0
    assert tracking.observe_job(item, state, LATER) is True  # back from a missing spell
    item.resource = None
    assert tracking.observe_job(item, state, LATER) is True  # the first resource
