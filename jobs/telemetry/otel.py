"""OpenTelemetry: the tracker's metrics and spans, for an operator to chart and alert on (docs/operating.md).

``with_opentelemetry(observer)`` adds an ``OtelObserver`` beside ``observer`` when this process is configured to
export, and configures the SDK once per process:

- ``APPLICATIONINSIGHTS_CONNECTION_STRING`` set (as on Azure Functions): the Azure Monitor distro
  (``azure-monitor-opentelemetry``'s ``configure_azure_monitor``), which also honours
  ``APPLICATIONINSIGHTS_AUTHENTICATION_STRING`` (Entra ID, the app's managed identity). The HTTP client
  instrumentations (requests, urllib, urllib3, httpx) are left off: their spans would carry a callback URL's query
  (a SAS ``sig``, a function ``code``); the Azure SDK's own spans stay on. Live metrics are off (one connection
  more per instance; the Functions host has its own), and so is the log export under the Functions host (which
  ships the worker's log lines itself).
- ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`` / ``..._TRACES_ENDPOINT``) set: OTLP
  over HTTP/protobuf. The SDK reads every ``OTEL_*`` variable itself (endpoints, headers, timeouts,
  ``OTEL_METRIC_EXPORT_INTERVAL``, ``OTEL_BSP_*``, ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``);
  ``OTEL_METRICS_EXPORTER=none`` or ``OTEL_TRACES_EXPORTER=none`` leaves a signal out, ``OTEL_SDK_DISABLED=true``
  all of it. Both set: Azure Monitor and OTLP side by side.

Neither set: nothing of OpenTelemetry is imported. The names below are a contract (dashboards and the alert rules
in infra/app/alerts.bicep rely on them); attributes carry ids only, never a URL, a capability or a secret.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jobs.domain.azure_time import parse_time
from jobs.telemetry import Assessment, Attributes, Heartbeat, Observer, PollReport, ReadRefusal, RoundReport

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, TracerProvider

__all__ = ["DELIVERY_OUTCOMES", "INSTRUMENTATION_SCOPE", "METRICS", "OtelObserver", "configure_from_environment",
           "export_configured", "subscription_of", "with_opentelemetry"]

log = logging.getLogger(__name__)

INSTRUMENTATION_SCOPE = "backupjobs"
RESULTS = "backupjobs.results"
RUNNING = "backupjobs.running"
LATENCY = "backupjobs.result.latency"
ARM_READS = "backupjobs.arm.reads"
ARM_THROTTLED = "backupjobs.arm.throttled"
ARM_REFUSED = "backupjobs.arm.refused"
DELIVERIES = "backupjobs.deliveries"
DETECTOR_LAG = "backupjobs.detector.lag"
METRICS = (RESULTS, RUNNING, LATENCY, ARM_READS, ARM_THROTTLED, ARM_REFUSED, DELIVERIES, DETECTOR_LAG)

# The delivery flow's outcomes as the metric names them.
DELIVERY_OUTCOMES = {"delivered": "delivered", "retry": "retried", "deadletter": "dead-lettered", "dropped": "dropped"}
# Seconds from Azure's endTime to the event: a poll period (60 s by default) up to the long interval and beyond.
LATENCY_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)

CONNECTION_STRING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
OTLP_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                  "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
# Left off under the Azure Monitor distro: a client span's URL would carry a callback URL's query.
HTTP_CLIENT_INSTRUMENTATIONS = ("requests", "urllib", "urllib3", "httpx")
SERVICE_NAME = "backup-job-tracker"

_SUBSCRIPTION = re.compile(r"^/subscriptions/([^/]+)/", re.IGNORECASE)
_configured = False
_configure_lock = threading.Lock()


def export_configured(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this process exports telemetry: a connection string or an OTLP endpoint, unless the SDK is off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(environ.get(CONNECTION_STRING, "").strip()
                or any(environ.get(name, "").strip() for name in OTLP_ENDPOINTS))


def with_opentelemetry(observer: Observer, environ: Mapping[str, str] = os.environ) -> Observer:
    """``observer`` with an ``OtelObserver`` beside it when ``export_configured``; ``observer`` alone otherwise.
    A configuration that fails (a malformed connection string, say) is one ERROR line: tracking goes on."""
    from jobs.telemetry import Observers

    if not export_configured(environ):
        return observer
    try:
        configure_from_environment(environ)
        return Observers([observer, OtelObserver()])
    except Exception as exc:
        log.error("OpenTelemetry is configured but could not start (%s: %s); tracking goes on without it",
                  type(exc).__name__, exc)
        return observer


def configure_from_environment(environ: Mapping[str, str] = os.environ) -> None:
    """Sets the global meter and tracer providers from the environment, once per process."""
    global _configured
    with _configure_lock:
        if _configured:
            return
        otlp = any(environ.get(name, "").strip() for name in OTLP_ENDPOINTS)
        readers, processors = _otlp_parts(environ) if otlp else ([], [])
        if environ.get(CONNECTION_STRING, "").strip():
            from azure.monitor.opentelemetry import configure_azure_monitor

            configure_azure_monitor(
                connection_string=environ[CONNECTION_STRING],
                metric_readers=readers,
                span_processors=processors,
                enable_live_metrics=False,
                # Under the Functions host the worker's log lines already reach Application Insights through the
                # host: exporting them again would show each line twice.
                disable_logging=bool(environ.get("FUNCTIONS_WORKER_RUNTIME")),
                instrumentation_options={name: {"enabled": False} for name in HTTP_CLIENT_INSTRUMENTATIONS},
            )
        else:
            from opentelemetry import metrics, trace
            from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

            named = environ.get("OTEL_SERVICE_NAME") or "service.name=" in environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
            resource = Resource.create({} if named else {"service.name": SERVICE_NAME})
            tracer_provider = SdkTracerProvider(resource=resource)
            for processor in processors:
                tracer_provider.add_span_processor(processor)
            metrics.set_meter_provider(SdkMeterProvider(resource=resource, metric_readers=readers))
            trace.set_tracer_provider(tracer_provider)
        _configured = True


def _otlp_parts(environ: Mapping[str, str]) -> tuple[list[Any], list[Any]]:
    """The OTLP/HTTP metric reader and span processor; the exporters read their endpoints, headers and timeouts,
    the reader its interval and the processor its batching from the ``OTEL_*`` variables themselves."""
    readers: list[Any] = []
    processors: list[Any] = []
    if environ.get("OTEL_METRICS_EXPORTER", "").strip().lower() != "none":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() != "none":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        processors.append(BatchSpanProcessor(OTLPSpanExporter()))
    return readers, processors


def subscription_of(locator: str) -> str:
    """The subscription id in a vault's id or locator, lower case; "" when it names none."""
    found = _SUBSCRIPTION.match(locator)
    return found.group(1).lower() if found else ""


class OtelObserver(Observer):
    """The hooks as OpenTelemetry metrics and spans, through the API: the providers given, or the global ones
    (``configure_from_environment``)."""

    def __init__(self, meter_provider: MeterProvider | None = None,
                 tracer_provider: TracerProvider | None = None) -> None:
        from opentelemetry import metrics, trace
        from opentelemetry.metrics import CallbackOptions, Observation

        meter = metrics.get_meter(INSTRUMENTATION_SCOPE, meter_provider=meter_provider)
        self._tracer = trace.get_tracer(INSTRUMENTATION_SCOPE, tracer_provider=tracer_provider)
        self._lock = threading.Lock()
        self._running: int | None = None
        self._lag: dict[str, float | None] = {}  # by vault kind
        self._span: ContextVar[Span | None] = ContextVar(f"backupjobs_span_{id(self)}", default=None)

        def running(_options: CallbackOptions) -> Iterator[Observation]:
            with self._lock:
                value = self._running
            if value is not None:
                yield Observation(value)

        def lag(_options: CallbackOptions) -> Iterator[Observation]:
            with self._lock:
                values = dict(self._lag)
            for kind, value in values.items():
                if value is not None:
                    yield Observation(value, {"kind": kind or "recoveryservices"})

        self._results = meter.create_counter(RESULTS, unit="{event}",
                                             description="Result events published, by the event's type")
        self._latency = meter.create_histogram(
            LATENCY, unit="s", description="Seconds from Azure's endTime to the event's publication",
            explicit_bucket_boundaries_advisory=list(LATENCY_BUCKETS))
        self._reads = meter.create_counter(ARM_READS, unit="{read}",
                                           description="Reads of Resource Manager and Resource Graph, by kind")
        self._throttled = meter.create_counter(ARM_THROTTLED, unit="{read}",
                                               description="Reads refused or held for throttling (429, budget)")
        self._refused = meter.create_counter(ARM_REFUSED, unit="{read}",
                                             description="Reads Azure refused: credential (401) or role (403)")
        self._deliveries = meter.create_counter(DELIVERIES, unit="{attempt}",
                                                description="Webhook delivery attempts, by outcome")
        meter.create_observable_gauge(RUNNING, [running], unit="{job}",
                                      description="Jobs and operations tracked as running (newest count read)")
        meter.create_observable_gauge(DETECTOR_LAG, [lag], unit="s",
                                      description="Resource Graph's measured lag behind Azure's endTime, p95")

    # -- spans ---------------------------------------------------------------------------------------------------
    @contextmanager
    def activity(self, name: str, attributes: Attributes) -> Iterator[object]:
        clean = {key: list(value) if not isinstance(value, str) else value for key, value in attributes.items()}
        with self._tracer.start_as_current_span(name, attributes=clean) as span:
            token = self._span.set(span)
            try:
                yield span
            finally:
                self._span.reset(token)

    def _annotate(self, attributes: Mapping[str, Any]) -> None:
        span = self._span.get()
        if span is not None:
            span.set_attributes(attributes)

    # -- the hooks -----------------------------------------------------------------------------------------------
    def round_finished(self, report: RoundReport) -> None:
        if report.whole_index:
            with self._lock:
                self._running = report.running
        self._annotate({"backupjobs.rows_read": report.running, "backupjobs.due": report.due,
                        "backupjobs.messages": report.messages, "backupjobs.inline": report.inline,
                        "backupjobs.detected": report.detected})

    def vault_polled(self, vault_id: str, report: PollReport) -> None:
        self._annotate({"backupjobs.polled": report.polled, "backupjobs.ended": report.ended,
                        "backupjobs.published": report.published, "backupjobs.throttled": report.throttled,
                        "backupjobs.strategy": report.strategy or "-"})

    def arm_read(self, kind: str, outcome: str) -> None:
        self._reads.add(1, {"kind": kind, "outcome": outcome})
        if outcome == "throttled":
            self._throttled.add(1, {"kind": kind})

    def graph_asked(self, queries: int, unavailable: str | None) -> None:
        if queries:
            self._reads.add(queries, {"kind": "graph", "outcome": unavailable or "ok"})
        if unavailable in ("throttled", "quota"):
            self._throttled.add(1, {"kind": "graph"})

    def read_refused(self, refusal: ReadRefusal) -> None:
        self._refused.add(1, {"kind": refusal.kind, "status": refusal.status})

    def result_published(self, tracking_id: str, status: str, subscriber: str, correlation_id: str | None,
                         outputs: Sequence[str]) -> None:
        span = self._span.get()
        if span is not None:
            span.add_event("backupjobs.result", {"backupjobs.job": tracking_id, "backupjobs.status": status,
                                                 "backupjobs.subscriber": subscriber,
                                                 "backupjobs.outputs": list(outputs)})

    def event_published(self, body: bytes) -> None:
        event = json.loads(body)
        event_type = str(event.get("type") or "")
        self._results.add(1, {"type": event_type})
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        end_time = parse_time(data.get("endTime"))
        if end_time is not None:
            latency = max(0.0, (datetime.now(UTC) - end_time).total_seconds())
            self._latency.record(latency, {"type": event_type})

    def delivery_attempted(self, tracking_id: str, target: str, outcome: str, detail: str = "") -> None:
        named = DELIVERY_OUTCOMES.get(outcome, outcome)
        self._deliveries.add(1, {"outcome": named})
        self._annotate({"backupjobs.outcome": named})

    def heartbeat(self, beat: Heartbeat) -> None:
        with self._lock:
            self._running = beat.running

    def detector_assessed(self, assessment: Assessment, changed: bool) -> None:
        with self._lock:
            self._lag[getattr(assessment, "kind", "")] = assessment.lag_p95
