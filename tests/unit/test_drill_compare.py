"""The fault drill's comparison: crafted lost, doubled, wrong and unexpected events are each counted (no drill run)."""

from __future__ import annotations

from typing import Any

from devtools.drill import DrillReport, compare_events

EXPECTED = {("job-1", "c-1"): "BackupJob.Completed", ("job-2", "c-2"): "BackupJob.Failed"}


def _event(event_id: str, job: str, correlation: str, event_type: str) -> dict[str, Any]:
    return {"id": event_id, "type": event_type, "data": {"jobId": job, "correlationId": correlation}}


GOOD = [_event("e1", "job-1", "c-1", "BackupJob.Completed"), _event("e2", "job-2", "c-2", "BackupJob.Failed")]


def _compare(events: list[dict[str, Any]], delivered: list[str]) -> DrillReport:
    report = DrillReport(jobs=2, subscribers=1, fault_rate=0)
    compare_events(events, delivered, EXPECTED, report)
    return report


def test_every_event_once_is_clean() -> None:
    report = _compare(GOOD, ["e1", "e2"])
    assert (report.lost, report.wrong, report.unexpected, report.conflicting_ids, report.repeated_deliveries) == (
        0, 0, 0, 0, 0)
    assert report.ok and report.problems == []
    assert (report.results_queue_events, report.webhook_deliveries) == (2, 2)


def test_a_lost_event_and_a_lost_delivery_are_counted() -> None:
    assert _compare(GOOD[:1], ["e1"]).lost == 1  # job-2 never reached the results queue
    report = _compare(GOOD, ["e1"])  # nor the webhook
    assert report.lost == 1 and not report.ok
    assert "webhook never got the event of job job-2" in report.problems[0]


def test_a_doubled_event_is_a_repeat_and_two_ids_conflict() -> None:
    report = _compare([*GOOD, GOOD[0]], ["e1", "e1", "e2"])
    assert report.repeated_deliveries == 2 and report.conflicting_ids == 0 and report.ok  # repeats are allowed
    report = _compare([*GOOD, _event("e1-other", "job-1", "c-1", "BackupJob.Completed")], ["e1", "e2"])
    assert report.conflicting_ids == 1 and not report.ok


def test_a_wrong_event_is_counted_even_when_a_right_one_comes_last() -> None:
    wrong_first = [_event("e1", "job-1", "c-1", "BackupJob.Failed"), *GOOD]
    report = _compare(wrong_first, ["e1", "e2"])
    assert report.wrong == 1 and not report.ok
    assert _compare([GOOD[0], _event("e2", "job-2", "c-2", "BackupJob.Completed")], ["e1", "e2"]).wrong == 1


def test_unexpected_events_are_counted() -> None:
    report = _compare([*GOOD, _event("e9", "job-9", "c-9", "BackupJob.Completed")], ["e1", "e2"])
    assert report.unexpected == 1 and not report.ok
    report = _compare([*GOOD, _event("e3", "job-1", "someone-else", "BackupJob.Completed")], ["e1", "e2"])
    assert report.unexpected == 1  # the right job, a subscriber never fed
    assert _compare(GOOD, ["e1", "e2", "e-stray"]).unexpected == 1  # a delivery the results queue never had
