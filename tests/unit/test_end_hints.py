"""End hints (docs/reference.md, "How jobs are polled"): when a running job can end at the earliest, from its entity's
earlier jobs and Azure's own estimate, and how the poll policy lets its vault rest until then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobs.config import Settings
from jobs.domain.azure_time import duration_seconds, parse_time
from jobs.domain.references import JobRef
from jobs.domain.tracked_item import TrackedItem
from jobs.domain.tracking import vault_grid_after
from jobs.flows.end_hints import SAFETY, EndHints, history_key
from jobs.flows.policy import poll_policy
from jobs.providers import parse_vault_id
from jobs.providers.recovery_services import RecoveryServices

VAULT = parse_vault_id("/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg/providers/"
                       "Microsoft.RecoveryServices/vaults/v1")
JOB = "22222222-2222-2222-2222-222222222222"
T0 = datetime(2026, 1, 5, 22, 0, 0, tzinfo=UTC)
STORAGE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}


class Durations:
    """The duration log's interface over a dict (the table's own is tested with Azurite in tests/functional)."""

    def __init__(self) -> None:
        self.rows: dict[str, list[float]] = {}
        self.reads = 0

    def get_durations(self, key: str) -> list[float]:
        self.reads += 1
        return list(self.rows.get(key, []))

    def add_duration(self, key: str, seconds: float) -> list[float]:
        self.rows[key] = [seconds, *self.rows.get(key, [])][:5]
        return list(self.rows[key])


def _resource(status: str = "InProgress", *, start: datetime = T0, end: datetime | None = None,
              entity: str = "vm-1", extended: dict | None = None) -> dict:
    props = {"jobType": "AzureIaaSVMJob", "operation": "Backup", "entityFriendlyName": entity, "status": status,
             "startTime": start.isoformat().replace("+00:00", "Z")}
    if end is not None:
        props["endTime"] = end.isoformat().replace("+00:00", "Z")
    if extended is not None:
        props["extendedInfo"] = extended
    return {"id": f"{VAULT.id}/backupJobs/{JOB}", "name": JOB, "properties": props}


def _item(resource: dict | None = None, result: str | None = None) -> TrackedItem:
    item = TrackedItem.for_job(JobRef.create(VAULT, JOB), T0, T0 + timedelta(hours=72))
    item.status = "InProgress"
    item.resource = resource
    item.result_status = result
    return item


def _completed(hints: EndHints, minutes: float, entity: str = "vm-1") -> None:
    hints.record(_item(_resource("Completed", end=T0 + timedelta(minutes=minutes), entity=entity), "Completed"),
                 RecoveryServices)


def test_a_job_is_expected_to_take_a_share_of_its_entitys_shortest_earlier_job() -> None:
    hints = EndHints(Durations())
    _completed(hints, 20)
    _completed(hints, 25)
    expected = hints.expected_end(_item(_resource()), RecoveryServices, T0 + timedelta(minutes=1))
    assert expected == T0 + timedelta(minutes=SAFETY * 20)


def test_nothing_is_expected_of_an_entity_without_history_or_of_another_entity_or_operation() -> None:
    hints = EndHints(Durations())
    _completed(hints, 20, entity="vm-2")
    assert hints.expected_end(_item(_resource()), RecoveryServices, T0) is None
    other = _resource()
    other["properties"]["operation"] = "Restore"
    _completed(hints, 20)
    assert hints.expected_end(_item(other), RecoveryServices, T0) is None


@pytest.mark.parametrize("result", ["Failed", "Cancelled", "TimedOut"])
def test_only_jobs_that_took_their_whole_course_are_remembered(result: str) -> None:
    durations = Durations()
    hints = EndHints(durations)
    hints.record(_item(_resource(result, end=T0 + timedelta(minutes=1)), result), RecoveryServices)
    assert durations.rows == {}


def test_azures_estimate_counts_only_when_the_job_was_just_read_in_detail() -> None:
    hints = EndHints(Durations())
    item = _item(_resource(extended={"estimatedRemainingDuration": "00:10:00", "progressPercentage": 50.0}))
    now = T0 + timedelta(minutes=10)
    # 10 minutes left by the estimate; by the progress (half done in 10 minutes), 10 more: the earlier wins
    assert hints.expected_end(item, RecoveryServices, now, detailed=True) == now + timedelta(minutes=SAFETY * 10)
    item.expected_end_at = now + timedelta(minutes=8)
    later = now + timedelta(minutes=5)
    # a summary read later keeps the estimate made then, rather than counting the old remainder from now
    assert hints.expected_end(item, RecoveryServices, later, detailed=False) == item.expected_end_at


def test_a_table_that_fails_costs_the_hint_never_the_poll() -> None:
    class Broken(Durations):
        def get_durations(self, key: str) -> list[float]:
            raise OSError("table down")

        def add_duration(self, key: str, seconds: float) -> list[float]:
            raise OSError("table down")

    hints = EndHints(Broken())
    _completed(hints, 20)  # logged, not raised
    assert hints.expected_end(_item(_resource()), RecoveryServices, T0) is None


def test_durations_are_read_once_per_entity_within_the_cache_time() -> None:
    durations = Durations()
    hints = EndHints(durations)
    durations.rows[history_key(VAULT.key, RecoveryServices.event_fields(_resource())) or ""] = [600.0]
    for minute in range(10):
        hints.expected_end(_item(_resource()), RecoveryServices, T0 + timedelta(minutes=minute))
    assert durations.reads == 1


# -- the policy ----------------------------------------------------------------------------------------------------
def _vault_rounds(**env: str):
    return poll_policy(Settings.from_env({**STORAGE, "JOBS_RESOURCE_GRAPH": "off", **env}))


def test_a_job_far_from_its_expected_end_rests_on_the_vaults_long_grid() -> None:
    policy = _vault_rounds()
    item = _item(_resource())
    now = T0 + timedelta(minutes=1)
    item.expected_end_at = now + timedelta(minutes=30)
    long_grid = vault_grid_after(VAULT.key, now, 30, 300)
    assert policy.next_poll(item, now) == long_grid


def test_near_its_expected_end_a_job_is_polled_the_round_before_it_then_every_round() -> None:
    policy = _vault_rounds()
    item = _item(_resource())
    now = T0 + timedelta(minutes=1)
    item.expected_end_at = now + timedelta(seconds=150)
    at = policy.next_poll(item, now)
    assert item.expected_end_at - timedelta(seconds=60) < at <= item.expected_end_at - timedelta(seconds=30)
    assert at == vault_grid_after(VAULT.key, at - timedelta(seconds=1), 30, 30)  # a point of the vault's grid
    past = item.expected_end_at + timedelta(seconds=1)
    assert policy.next_poll(item, past) == vault_grid_after(VAULT.key, past, 30, 30)  # every round after it


def test_without_a_hint_or_with_hints_off_a_job_is_polled_every_round() -> None:
    now = T0 + timedelta(minutes=1)
    item = _item(_resource())
    assert _vault_rounds().next_poll(item, now) == vault_grid_after(VAULT.key, now, 30, 30)
    item.expected_end_at = now + timedelta(hours=1)
    assert _vault_rounds(JOBS_END_HINTS="off").next_poll(item, now) == vault_grid_after(VAULT.key, now, 30, 30)


def test_a_rest_never_passes_the_deadline() -> None:
    item = _item(_resource())
    now = T0 + timedelta(minutes=1)
    item.expected_end_at = now + timedelta(hours=1)
    item.deadline_at = now + timedelta(seconds=45)
    assert _vault_rounds().next_poll(item, now) == item.deadline_at


# -- Azure's times and durations ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "seconds"), [
    ("00:20:23.0896697", 1223.0896697), ("1.02:03:04", 93784.0), ("PT9.8782791S", 9.8782791),
    ("PT1M30.5S", 90.5), ("P1DT2H", 93600.0), ("00:00:00", 0.0),
])
def test_durations_in_either_of_azures_forms(text: str, seconds: float) -> None:
    assert duration_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "P", "00:61:00", "1.25:00:00", "soon", "P1Y", "-PT5S", None, 12])
def test_what_is_not_a_duration_is_none(text: object) -> None:
    assert duration_seconds(text) is None


@given(st.integers(0, 99), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59), st.integers(0, 9999999))
def test_a_timespan_reads_as_its_parts(days: int, hours: int, minutes: int, seconds: int, ticks: int) -> None:
    text = f"{days}.{hours:02d}:{minutes:02d}:{seconds:02d}.{ticks:07d}"
    expected = days * 86400 + hours * 3600 + minutes * 60 + seconds + ticks / 1e7
    assert duration_seconds(text) == pytest.approx(expected, abs=1e-6)  # to the microsecond


def test_azures_seven_digit_times_read_as_aware_datetimes() -> None:
    assert parse_time("2026-01-05T22:00:07.1234567Z") == datetime(2026, 1, 5, 22, 0, 7, 123456, tzinfo=UTC)
    assert parse_time("not a time") is None
