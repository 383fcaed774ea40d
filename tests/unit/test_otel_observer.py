"""The OpenTelemetry sink (jobs/telemetry/otel.py) against the SDK's in-memory reader and span exporter."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from jobs.flows.detector_health import DetectorAssessment
from jobs.telemetry import Heartbeat, Observer, Observers, PollReport, ReadRefusal, RoundReport
from jobs.telemetry.otel import METRICS, OtelObserver, export_configured, subscription_of, with_opentelemetry

VAULT = ("/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg"
         "/providers/Microsoft.RecoveryServices/vaults/v")


@pytest.fixture
def sink() -> tuple[OtelObserver, InMemoryMetricReader, InMemorySpanExporter]:
    reader = InMemoryMetricReader()
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    return OtelObserver(MeterProvider(metric_readers=[reader]), tracer_provider), reader, spans


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    return {metric.name: list(metric.data.data_points)
            for rm in data.resource_metrics for sm in rm.scope_metrics for metric in sm.metrics}


def _event(event_type: str, end_time: datetime | None) -> bytes:
    data: dict[str, Any] = {"jobId": "j"}
    if end_time is not None:
        data["endTime"] = end_time.isoformat().replace("+00:00", "Z")
    return json.dumps({"type": event_type, "id": "x", "data": data}).encode()


def test_every_named_metric_counts_what_the_hooks_report(sink) -> None:
    observer, reader, _ = sink
    ended = datetime.now(UTC) - timedelta(seconds=42)
    observer.event_published(_event("BackupJob.Completed", ended))
    observer.event_published(_event("BackupJob.Completed", ended))
    observer.event_published(_event("BackupJob.TrackingFailed", None))
    for kind, outcome in (("get", "ok"), ("get", "ok"), ("list", "ok"), ("operation", "throttled")):
        observer.arm_read(kind, outcome)
    observer.graph_asked(3, None)
    observer.graph_asked(1, "throttled")
    observer.read_refused(ReadRefusal("sub", "credential", 401, "InvalidAuthenticationToken", "", first=True))
    for outcome in ("delivered", "retry", "retry", "deadletter"):
        observer.delivery_attempted("t", "callback", outcome)
    observer.heartbeat(Heartbeat(running=7, due=1, deliveries_waiting=0, failing={}))
    observer.round_finished(RoundReport(running=2, due=2, messages=1))  # due rows only: not the running count
    observer.detector_assessed(DetectorAssessment("fresh", samples=12, lag_p50=20.0, lag_p95=75.0), changed=True)

    points = _points(reader)
    assert set(METRICS) <= set(points), sorted(points)
    results = {p.attributes["type"]: p.value for p in points["backupjobs.results"]}
    assert results == {"BackupJob.Completed": 2, "BackupJob.TrackingFailed": 1}
    [latency] = points["backupjobs.result.latency"]  # only the events with Azure's endTime
    assert latency.count == 2 and 84 <= latency.sum < 90 and latency.attributes == {"type": "BackupJob.Completed"}
    reads = {(p.attributes["kind"], p.attributes["outcome"]): p.value for p in points["backupjobs.arm.reads"]}
    assert reads == {("get", "ok"): 2, ("list", "ok"): 1, ("operation", "throttled"): 1, ("graph", "ok"): 3,
                     ("graph", "throttled"): 1}
    assert {p.attributes["kind"]: p.value for p in points["backupjobs.arm.throttled"]} == {"operation": 1, "graph": 1}
    assert [(p.attributes["kind"], p.value) for p in points["backupjobs.arm.refused"]] == [("credential", 1)]
    deliveries = {p.attributes["outcome"]: p.value for p in points["backupjobs.deliveries"]}
    assert deliveries == {"delivered": 1, "retried": 2, "dead-lettered": 1}
    assert [p.value for p in points["backupjobs.running"]] == [7]
    assert [p.value for p in points["backupjobs.detector.lag"]] == [75.0]

    observer.round_finished(RoundReport(running=5, due=0, messages=0, whole_index=True))  # every running row
    assert [p.value for p in _points(reader)["backupjobs.running"]] == [5]


def test_spans_for_a_round_a_vault_and_a_delivery_carry_their_ids(sink) -> None:
    observer, _, spans = sink
    with observer.activity("backupjobs.round", {}):
        attributes = {"backupjobs.vault": VAULT, "backupjobs.subscription": subscription_of(VAULT),
                      "backupjobs.jobs": ["t1", "t2"]}
        with observer.activity("backupjobs.vault_poll", attributes):
            observer.result_published("t1", "Completed", "sub-key", "corr", ["results-queue"])
            observer.vault_polled(VAULT, PollReport(polled=2, ended=1, published=1, strategy="list"))
        observer.round_finished(RoundReport(running=2, due=2, messages=0, inline=1))
    with observer.activity("backupjobs.delivery", {"backupjobs.job": "t1", "backupjobs.target": "callback"}):
        observer.delivery_attempted("t1", "callback", "deadletter")
    with pytest.raises(RuntimeError), observer.activity("backupjobs.delivery", {"backupjobs.job": "t2"}):
        raise RuntimeError("storage down")

    finished = {span.name: span for span in spans.get_finished_spans()[:3]}
    poll, round_, delivery = (finished[n] for n in ("backupjobs.vault_poll", "backupjobs.round", "backupjobs.delivery"))
    assert poll.parent is not None and poll.parent.span_id == round_.context.span_id
    assert poll.attributes["backupjobs.subscription"] == "11111111-2222-3333-4444-555555555555"
    assert poll.attributes["backupjobs.vault"] == VAULT and list(poll.attributes["backupjobs.jobs"]) == ["t1", "t2"]
    assert poll.attributes["backupjobs.ended"] == 1 and poll.attributes["backupjobs.strategy"] == "list"
    assert [(e.name, e.attributes["backupjobs.job"]) for e in poll.events] == [("backupjobs.result", "t1")]
    assert round_.attributes["backupjobs.inline"] == 1 and "backupjobs.ended" not in round_.attributes
    assert delivery.attributes["backupjobs.outcome"] == "dead-lettered"
    failed = spans.get_finished_spans()[3]
    assert failed.status.status_code.name == "ERROR"  # the work's exception is recorded, and passed through


def test_observers_enter_each_sinks_activity_and_pass_the_works_exception_through(sink) -> None:
    observer, _, spans = sink

    class Broken(Observer):
        def activity(self, name: str, attributes: Any) -> Any:
            raise RuntimeError("sink down")

    both = Observers([Broken(), observer])
    with both.activity("backupjobs.round", {}):
        pass
    assert [s.name for s in spans.get_finished_spans()] == ["backupjobs.round"]
    with pytest.raises(KeyError), both.activity("backupjobs.delivery", {}):
        raise KeyError("work failed")


def test_exporting_is_configured_by_the_environment_only() -> None:
    assert not export_configured({})
    assert export_configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert export_configured({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"})
    assert export_configured({"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=x"})
    assert not export_configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"})
    base = Observer()
    assert with_opentelemetry(base, {}) is base
