"""The hooks the OpenTelemetry sink relies on, called by the flows as they run (jobs/telemetry/__init__.py)."""

from __future__ import annotations

import json
from typing import Any

from devtools.simulator import JobScript
from jobs.config import Settings
from jobs.telemetry import Observer, RoundReport
from jobs.tracker import Tracker
from tests.conftest import VAULT


class Hooks(Observer):
    def __init__(self) -> None:
        self.graph: list[tuple[int, str | None]] = []
        self.rounds: list[RoundReport] = []
        self.events: list[dict[str, Any]] = []
        self.activities: list[str] = []

    def graph_asked(self, queries: int, unavailable: str | None) -> None:
        self.graph.append((queries, unavailable))

    def round_finished(self, report: RoundReport) -> None:
        self.rounds.append(report)

    def event_published(self, body: bytes) -> None:
        self.events.append(json.loads(body))

    def activity(self, name: str, attributes: Any) -> Any:
        self.activities.append(name)
        return super().activity(name, attributes)


def test_a_round_with_resource_graph_reports_its_queries_and_that_it_read_every_running_row(simulator, env) -> None:
    hooks = Hooks()
    tracker = Tracker(Settings.from_env({**env, "JOBS_RESOURCE_GRAPH": "on", "JOBS_INLINE_POLL_MAX": "10"}),
                      observer=hooks)
    tracker.setup()
    job_id = simulator.add_job(VAULT, JobScript(duration=0, final_status="Failed"))
    tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT}))
    report = tracker.run_poll_round()

    assert report.whole_index and hooks.rounds == [report]
    assert sum(q for q, _ in hooks.graph) == simulator.stats()["by_kind"]["resource_graph"] >= 1
    assert [e["type"] for e in hooks.events] == ["BackupJob.Failed"]  # the event as the outputs got it
    assert hooks.activities == ["backupjobs.round", "backupjobs.vault_poll"]  # the vault polled inside the round


def test_a_round_without_resource_graph_reads_the_due_rows_only(simulator, env) -> None:
    hooks = Hooks()
    tracker = Tracker(Settings.from_env(env), observer=hooks)
    tracker.setup()
    assert not tracker.run_poll_round().whole_index and hooks.graph == []
