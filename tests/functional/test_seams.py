"""The seams the next capabilities plug into: an output beside the built-in ones, and an observer that hears each
round, poll, read, result and delivery. Against the simulator and Azurite, one round at a time."""

from __future__ import annotations

import json
from collections.abc import Sequence

from devtools.simulator import JobScript
from jobs.config import Settings
from jobs.outputs import ResultEvent, outputs_from_settings
from jobs.telemetry import Observer, PollReport, RoundReport
from jobs.tracker import Tracker
from tests.conftest import VAULT, ManualClock, drain, poll_once, results


class Recording(Observer):
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def intake_accepted(self, tracking_ids: Sequence[str]) -> None:
        self.calls.append(("accepted", tuple(tracking_ids)))

    def intake_rejected(self, reason: str) -> None:
        self.calls.append(("rejected", reason))

    def round_finished(self, report: RoundReport) -> None:
        self.calls.append(("round", report.due))

    def vault_polled(self, vault_id: str, report: PollReport) -> None:
        self.calls.append(("polled", (vault_id.lower(), report.ended)))

    def arm_read(self, kind: str, outcome: str) -> None:
        self.calls.append(("read", (kind, outcome)))

    def result_published(self, tracking_id: str, status: str, subscriber: str, correlation_id: str | None,
                         outputs: Sequence[str]) -> None:
        self.calls.append(("published", (tracking_id, status, correlation_id, tuple(outputs))))

    def delivery_attempted(self, tracking_id: str, target: str, outcome: str, detail: str = "") -> None:
        self.calls.append(("delivery", (tracking_id, outcome)))

    def named(self, name: str) -> list[object]:
        return [value for call, value in self.calls if call == name]


class Collecting:
    """An output of the test's own: what the next output (Event Grid, say) would get."""

    name = "collecting"

    def __init__(self) -> None:
        self.events: list[ResultEvent] = []

    def publish(self, event: ResultEvent) -> str | None:
        self.events.append(event)
        return "collected"


def test_an_added_output_gets_each_event_once_per_subscriber_beside_the_results_queue(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    settings = Settings.from_env({**env, "JOBS_WEBHOOK_URLS": ""})
    collecting = Collecting()
    tracker = Tracker(settings, clock=clock, outputs=[*outputs_from_settings(settings, _storage(settings), clock),
                                                       collecting])
    tracker.setup()
    job_id = simulator.add_job(VAULT, JobScript(duration=0, final_status="Failed"))
    for correlation in ("a", "b"):
        tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT, "correlationId": correlation}))
    clock.advance(settings.poll_seconds)
    poll_once(tracker)
    poll_once(tracker)  # a second round publishes nothing again

    events = [json.loads(event.body) for event in collecting.events]
    assert sorted(e["data"]["correlationId"] for e in events) == ["a", "b"]
    assert {e["type"] for e in events} == {"BackupJob.Failed"}
    assert sorted(e["id"] for e in events) == sorted(e["id"] for e in results(tracker))  # the same events


def test_the_observer_hears_the_intake_the_round_each_read_the_result_and_each_delivery(
    simulator, env: dict[str, str], clock: ManualClock, receiver
) -> None:
    observer = Recording()
    tracker = Tracker(Settings.from_env(env), clock=clock, observer=observer)
    tracker.setup()
    job_id = simulator.add_job(VAULT, JobScript(duration=0, final_status="Completed"))
    [tracking_id] = tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT})).tracking_ids
    tracker.accept_message("not a job")
    clock.advance(1)
    poll_once(tracker)
    for message in drain(tracker._storage.queue(tracker.settings.deliver_queue)):
        tracker.handle_delivery_message(message)

    assert observer.named("accepted") == [(tracking_id,)]
    assert len(observer.named("rejected")) == 1
    assert observer.named("round") == [1]
    assert observer.named("polled") == [(VAULT.lower(), 1)]
    assert ("list", "ok") in observer.named("read") and ("get", "ok") in observer.named("read")
    assert observer.named("published") == [(tracking_id, "Completed", None, ("results queue " +
                                                                              tracker.settings.results_queue,
                                                                              "1 webhook target"))]
    assert observer.named("delivery") == [(tracking_id, "delivered")]


def test_a_sink_that_raises_never_stops_tracking(simulator, env: dict[str, str], clock: ManualClock) -> None:
    from jobs.telemetry import Observers

    class Broken(Observer):
        def result_published(self, *args: object) -> None:
            raise RuntimeError("sink down")

    recording = Recording()
    tracker = Tracker(Settings.from_env({**env, "JOBS_WEBHOOK_URLS": ""}), clock=clock,
                      observer=Observers([Broken(), recording]))
    tracker.setup()
    job_id = simulator.add_job(VAULT, JobScript(duration=0, final_status="Completed"))
    tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT}))
    clock.advance(1)
    poll_once(tracker)
    assert [e["data"]["jobId"] for e in results(tracker)] == [job_id]
    assert len(recording.named("published")) == 1  # the other sink still heard it


def _storage(settings: Settings):
    from jobs.storage import StorageAccount

    return StorageAccount(settings.storage)
