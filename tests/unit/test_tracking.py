"""What one observation of Azure means for a tracked job or operation (pure decisions, no I/O)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.arm import ArmForbidden, ArmNotFound
from jobs.domain import tracking
from jobs.domain.references import JobRef
from jobs.domain.results import JobState, OperationState
from jobs.domain.tracked_item import TrackedItem
from jobs.domain.tracking import OPERATION_SUCCEEDED, next_poll_at, observe_missing
from jobs.providers import parse_vault_id, vault_operation
from jobs.providers.recovery_services import RecoveryServices
from tests.conftest import fixture_json

VAULT_ID = (
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/backup-rg"
    "/providers/Microsoft.RecoveryServices/vaults/prod-vault"
)
JOB = "41f3e94b-ae6b-4a20-b422-65abfcaf03e5"
JOB2 = "7ddead57-bcb9-4269-ac31-6a1b57588700"
OP = "cd153561-20d3-467a-b911-cc1de47d4763"
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
HOURS_72 = timedelta(hours=72)
GRACE = 900.0
POLL = 30.0
MAX_INTERVAL = 300.0

PROVIDER = RecoveryServices()


def observe_job(item: TrackedItem, resource: dict[str, Any], now: datetime, *, detailed: bool = True) -> bool:
    """A JobResource observed as the poll worker does: mapped by the Recovery Services provider, then decided on."""
    return tracking.observe_job(item, PROVIDER.job_state(resource, detailed=detailed), now)


def observe_operation(item: TrackedItem, operation: dict[str, Any], now: datetime) -> list[str]:
    return tracking.observe_operation(item, PROVIDER.operation_state(operation), now)


NOT_FOUND = ArmNotFound(
    404, "BMSUserErrorJobNotFound", "The job with Id 41f3e94b-ae6b-4a20-b422-65abfcaf03e5 was not found."
)
FORBIDDEN = ArmForbidden(
    403,
    "AuthorizationFailed",
    "The client 'a1b2' with object id 'a1b2' does not have authorization to perform action "
    "'Microsoft.RecoveryServices/vaults/backupJobs/read' over scope '/subscriptions/1111.../vaults/prod-vault'.",
)


def job_item(created: datetime = T0, deadline: timedelta = HOURS_72) -> TrackedItem:
    return TrackedItem.for_job(JobRef.create(parse_vault_id(VAULT_ID), JOB), created, created + deadline)


def operation_item(created: datetime = T0, deadline: timedelta = HOURS_72) -> TrackedItem:
    ref = vault_operation(parse_vault_id(VAULT_ID), OP)
    return TrackedItem.for_operation(ref, created, created + deadline)


def job_resource(status: str) -> dict[str, Any]:
    """A JobDetails_Get body (with extendedInfo) as Azure returns it, with the given status."""
    body = copy.deepcopy(fixture_json("azure-rest-api-specs/GetJobDetails.json")["responses"]["200"]["body"])
    body["properties"]["status"] = status
    return body


def list_summary(status: str) -> dict[str, Any]:
    """A BackupJobs_List item: the same job without extendedInfo."""
    item = copy.deepcopy(fixture_json("azure-rest-api-specs/ListJobs.json")["responses"]["200"]["body"]["value"][1])
    item["properties"]["status"] = status
    return item


# ---------------------------------------------------------------------------------------------------------------
# Jobs


def test_a_running_job_stays_running() -> None:
    item = job_item()
    resource = job_resource("InProgress")
    assert observe_job(item, resource, T0 + timedelta(minutes=1)) is True  # first sight changes the row
    assert not item.ended
    assert item.result_status is None and item.ended_at is None
    assert item.status == "InProgress"
    assert item.resource == resource
    assert item.poll_count == 1
    assert item.last_polled_at == T0 + timedelta(minutes=1)
    # The same answer again is not a change worth writing.
    assert observe_job(item, job_resource("InProgress"), T0 + timedelta(minutes=2)) is False
    assert not item.ended and item.poll_count == 2


@pytest.mark.parametrize("status", ["Completed", "CompletedWithWarnings", "Failed", "Cancelled"])
def test_each_terminal_status_ends_the_job(status: str) -> None:
    item = job_item()
    observe_job(item, job_resource("InProgress"), T0 + timedelta(minutes=1))
    now = T0 + timedelta(minutes=20)
    final = job_resource(status)
    assert observe_job(item, final, now) is True
    assert item.ended
    assert item.result_status == status
    assert item.ended_at == now
    assert item.resource == final  # the final GET, with extendedInfo, is what the event carries


def test_terminal_status_is_read_case_insensitively() -> None:
    item = job_item()
    observe_job(item, job_resource("completedWithWarnings"), T0)
    assert item.result_status == "CompletedWithWarnings"


@pytest.mark.parametrize("status", ["Cancelling", "Invalid", "Queued", "", None, 3])
def test_cancelling_invalid_and_unknown_statuses_keep_the_job_running(status: object) -> None:
    item = job_item()
    observe_job(item, job_resource(status), T0 + timedelta(minutes=5))  # type: ignore[arg-type]
    assert not item.ended
    assert item.result_status is None


def test_a_list_summary_never_ends_a_job() -> None:
    item = job_item()
    detailed = job_resource("InProgress")
    observe_job(item, detailed, T0 + timedelta(minutes=1))
    observe_job(item, list_summary("Completed"), T0 + timedelta(minutes=5), detailed=False)
    assert not item.ended  # the result must carry the full job: wait for the detailed GET
    assert item.resource == detailed  # a summary does not replace the details already held
    final = job_resource("Completed")
    assert observe_job(item, final, T0 + timedelta(minutes=6)) is True
    assert item.result_status == "Completed" and item.resource == final


def test_a_list_summary_is_kept_when_nothing_better_is_known() -> None:
    item = job_item()
    summary = list_summary("InProgress")
    observe_job(item, summary, T0, detailed=False)
    assert item.resource == summary and not item.ended


def test_a_job_still_running_at_its_deadline_times_out() -> None:
    item = job_item(deadline=timedelta(hours=2))
    assert observe_job(item, job_resource("InProgress"), T0 + timedelta(hours=1)) is True
    assert not item.ended
    now = T0 + timedelta(hours=2)
    assert observe_job(item, job_resource("InProgress"), now) is True
    assert item.result_status == "TimedOut"
    assert item.ended_at == now
    assert item.errors and item.errors[0]["code"] == "TrackingTimedOut"
    assert "InProgress" in item.errors[0]["message"]


def test_cancelling_past_the_deadline_times_out_too() -> None:
    item = job_item(deadline=timedelta(minutes=30))
    observe_job(item, job_resource("Cancelling"), T0 + timedelta(minutes=31))
    assert item.result_status == "TimedOut"


def test_a_terminal_status_seen_after_the_deadline_is_azures_result() -> None:
    item = job_item(deadline=timedelta(hours=1))
    observe_job(item, job_resource("Failed"), T0 + timedelta(hours=3))
    assert item.result_status == "Failed"


@pytest.mark.parametrize("error", [NOT_FOUND, FORBIDDEN], ids=["404", "403"])
def test_missing_within_grace_keeps_the_job(error: Any) -> None:
    item = job_item()
    assert observe_missing(item, error, T0, GRACE) is True  # first time: recorded
    assert not item.ended
    assert item.unknown_since == T0
    assert item.last_error == {"status": error.status, "code": error.code, "message": error.message}
    assert observe_missing(item, error, T0 + timedelta(seconds=GRACE - 1), GRACE) is False
    assert not item.ended
    assert item.unknown_since == T0  # the grace runs from the first miss


@pytest.mark.parametrize("error", [NOT_FOUND, FORBIDDEN], ids=["404", "403"])
def test_missing_after_grace_ends_as_not_found_with_azures_error(error: Any) -> None:
    item = job_item()
    observe_missing(item, error, T0, GRACE)
    now = T0 + timedelta(seconds=GRACE)
    assert observe_missing(item, error, now, GRACE) is True
    assert item.result_status == "NotFound"
    assert item.ended_at == now
    assert item.errors == [{"code": error.code, "message": error.message, "recommendations": []}]


def test_forbidden_error_names_authorization_failed() -> None:
    item = job_item()
    observe_missing(item, FORBIDDEN, T0, 0)
    assert item.result_status == "NotFound"
    assert item.errors and item.errors[0]["code"] == "AuthorizationFailed"
    assert "Microsoft.RecoveryServices/vaults/backupJobs/read" in item.errors[0]["message"]


def test_seeing_the_job_resets_the_grace_period() -> None:
    item = job_item()
    observe_missing(item, NOT_FOUND, T0, GRACE)
    observe_job(item, job_resource("InProgress"), T0 + timedelta(minutes=10))
    assert item.unknown_since is None and item.last_error is None
    observe_missing(item, NOT_FOUND, T0 + timedelta(minutes=20), GRACE)
    observe_missing(item, NOT_FOUND, T0 + timedelta(minutes=20, seconds=GRACE - 1), GRACE)
    assert not item.ended
    observe_missing(item, NOT_FOUND, T0 + timedelta(minutes=20, seconds=GRACE), GRACE)
    assert item.result_status == "NotFound"


def test_missing_past_the_deadline_times_out_even_within_grace() -> None:
    item = job_item(deadline=timedelta(minutes=5))
    observe_missing(item, NOT_FOUND, T0 + timedelta(minutes=4), GRACE)
    observe_missing(item, NOT_FOUND, T0 + timedelta(minutes=6), GRACE)
    assert item.result_status == "TimedOut"


# ---------------------------------------------------------------------------------------------------------------
# next_poll_at


def test_a_young_job_is_polled_every_round() -> None:
    item = job_item()
    now = T0 + timedelta(seconds=10)
    assert next_poll_at(item, now, POLL, MAX_INTERVAL) == now + timedelta(seconds=POLL)


def test_poll_interval_grows_with_age_up_to_the_maximum() -> None:
    delays = []
    for age_minutes in (0, 1, 5, 10, 30, 50, 60, 120, 24 * 60):
        item = job_item(created=T0 - timedelta(minutes=age_minutes))
        delays.append((next_poll_at(item, T0, POLL, MAX_INTERVAL) - T0).total_seconds())
    assert delays == sorted(delays)
    assert delays[0] == POLL
    assert delays[4] == 180  # a tenth of 30 minutes
    assert delays[-1] == MAX_INTERVAL
    assert max(delays) <= MAX_INTERVAL


def test_an_unknown_job_is_polled_every_round_whatever_its_age() -> None:
    item = job_item(created=T0 - timedelta(hours=5))
    observe_missing(item, NOT_FOUND, T0, GRACE)
    assert next_poll_at(item, T0, POLL, MAX_INTERVAL) == T0 + timedelta(seconds=POLL)


def test_never_polled_after_the_deadline() -> None:
    item = job_item(created=T0 - timedelta(hours=10), deadline=timedelta(hours=10, seconds=60))
    assert next_poll_at(item, T0, POLL, MAX_INTERVAL) == T0 + timedelta(seconds=60)
    late = T0 + timedelta(hours=1)
    assert next_poll_at(item, late, POLL, MAX_INTERVAL) == late  # overdue: poll now, so the timeout is seen


@settings(max_examples=200, deadline=None)
@given(
    age=st.floats(0, 10 * 86400),
    older_by=st.floats(0, 86400),
    deadline_after=st.floats(-3600, 5 * 86400),
    poll=st.integers(1, 600),
    max_interval=st.floats(1, 3600),
)
def test_next_poll_is_bounded_and_grows_with_age(
    age: float, older_by: float, deadline_after: float, poll: int, max_interval: float
) -> None:
    now = T0
    deadline = now + timedelta(seconds=deadline_after)

    def at(age_seconds: float) -> datetime:
        created = now - timedelta(seconds=age_seconds)
        item = job_item(created=created, deadline=deadline - created)
        return next_poll_at(item, now, poll, max_interval)

    young, old = at(age), at(age + older_by)
    for when in (young, old):
        assert now <= when
        assert when <= now + timedelta(seconds=max(poll, max_interval))
        assert when <= max(deadline, now)
    assert young <= old


# ---------------------------------------------------------------------------------------------------------------
# Operations


def test_operation_succeeded_with_job_id_names_its_job() -> None:
    item = operation_item()
    operation = fixture_json("seed-operation-response.json")
    now = T0 + timedelta(minutes=1)
    assert observe_operation(item, operation, now) == ["41f3e94b-ae6b-4a20-b422-65abfcaf03e5"]
    assert item.result_status == OPERATION_SUCCEEDED and item.ended_at == now
    assert item.resource == operation


def test_operation_fixture_from_the_spec_names_its_job() -> None:
    body = fixture_json("azure-rest-api-specs/ProtectedItemOperationStatus.json")["responses"]["200"]["body"]
    assert observe_operation(operation_item(), body, T0) == [body["properties"]["jobId"]]


def test_operation_succeeded_with_job_ids_names_every_job_once() -> None:
    operation = {"name": OP, "status": "Succeeded",
                 "properties": {"objectType": "OperationStatusJobsExtendedInfo", "jobId": JOB, "jobIds": [JOB, JOB2]}}
    assert observe_operation(operation_item(), operation, T0) == [JOB, JOB2]
    only_list = {"name": OP, "status": "Succeeded", "properties": {"jobIds": [JOB2, JOB]}}
    assert observe_operation(operation_item(), only_list, T0) == [JOB2, JOB]


def test_operation_in_progress_keeps_running() -> None:
    item = operation_item()
    body = fixture_json("azure-rest-api-specs/ProtectedItem_Delete_OperationStatus.json")["responses"]["200"]["body"]
    assert observe_operation(item, body, T0 + timedelta(minutes=1)) == []
    assert not item.ended
    assert item.status == "InProgress"


@pytest.mark.parametrize("status", ["Failed", "Canceled", "cancelled"])
def test_failed_or_canceled_operation_ends_as_operation_failed_with_its_error(status: str) -> None:
    item = operation_item()
    error = {"code": "UserErrorBackupOperationInProgress", "message": "Another backup is in progress."}
    assert observe_operation(item, {"name": OP, "status": status, "error": error}, T0) == []
    assert item.result_status == "OperationFailed"
    assert item.errors == [{"code": error["code"], "message": error["message"], "recommendations": []}]


def test_failed_operation_without_error_still_says_what_happened() -> None:
    item = operation_item()
    observe_operation(item, {"name": OP, "status": "Canceled"}, T0)
    assert item.result_status == "OperationFailed"
    assert item.errors and item.errors[0]["code"] and item.errors[0]["message"]


def test_succeeded_operation_without_job_is_a_failure_not_silence() -> None:
    item = operation_item()
    assert observe_operation(item, {"name": OP, "status": "Succeeded", "properties": {}}, T0) == []
    assert item.result_status == "OperationFailed"
    assert item.errors


def test_operation_running_past_its_deadline_times_out() -> None:
    item = operation_item(deadline=timedelta(minutes=10))
    observe_operation(item, {"name": OP, "status": "InProgress"}, T0 + timedelta(minutes=11))
    assert item.result_status == "TimedOut"


# -- Ending an item on the tracker's own account: its status, errors and counters ----------------------------------


LATER = T0 + timedelta(minutes=7)


def running_job_item() -> TrackedItem:
    item = TrackedItem.for_job(JobRef.create(parse_vault_id(VAULT_ID), JOB), T0, T0 + timedelta(hours=72))
    item.resource = {"properties": {"status": "InProgress"}}
    return item


def test_a_job_its_operation_failed_to_create_ends_operation_failed_with_azures_code() -> None:
    item = running_job_item()
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
    item = running_job_item()
    tracking.end_failed_job(item, "", LATER)
    assert item.errors == [{
        "code": None,
        "message": f"Azure could not create job {JOB}: its operation reported error without a code",
        "recommendations": ["Check the operation in the vault and trigger the job again."],
    }]
    assert item.result_status == "OperationFailed" and item.ended_at == LATER


def test_tracking_failed_names_the_error_and_how_long_and_drops_the_resource() -> None:
    item = running_job_item()
    tracking.end_tracking_failed(item, ValueError("entity too large"), 912.4, LATER)
    assert item.resource is None
    assert item.result_status == "TrackingFailed" and item.ended_at == LATER
    assert item.errors == [{
        "code": "TrackingFailed",
        "message": "the tracker could not record this job for 912 s: ValueError: entity too large",
        "recommendations": ["Check the job in the vault; the tracker's log names the error for this tracking id."],
    }]


def test_tracking_failed_keeps_500_characters_of_the_error() -> None:
    item = running_job_item()
    tracking.end_tracking_failed(item, RuntimeError("x" * 499 + "yz"), 60, LATER)
    expected = "the tracker could not record this job for 60 s: RuntimeError: " + "x" * 499 + "y"
    assert item.errors[0]["message"] == expected


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
    item = running_job_item()
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
    item = running_job_item()
    state = JobState("InProgress", False, {"properties": {"status": "InProgress"}})
    assert tracking.observe_job(item, state, LATER) is True  # from unknown
    assert tracking.observe_job(item, state, LATER) is False  # nothing new
    item.unknown_since = T0
    assert tracking.observe_job(item, state, LATER) is True  # back from a missing spell
    item.resource = None
    assert tracking.observe_job(item, state, LATER) is True  # the first resource
