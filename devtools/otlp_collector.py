"""A real OTLP/HTTP collector on loopback: what ``OTEL_EXPORTER_OTLP_ENDPOINT`` points at in tests and benchmarks.

It listens on 127.0.0.1, accepts ``POST /v1/metrics`` and ``POST /v1/traces`` in binary protobuf (gzip or not),
decodes them with ``opentelemetry-proto`` and keeps them. It also stands in for Application Insights' ingestion
(``IngestionEndpoint=`` of a connection string, ``ingestion_endpoint``): ``POST /v2.1/track`` with the Azure Monitor
exporter's JSON envelopes, kept in ``envelopes``. Everything else is answered 404. The helpers read the
newest data point of each metric and series (cumulative sums, gauges, histograms) and every span, with their
attributes as plain Python values.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = ["OtlpCollector", "Point", "ReceivedSpan"]

MAX_BODY_BYTES = 32 * 1024 * 1024
TRACK = "/v2.1/track"
Attrs = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Point:
    """A metric's newest data point for one set of attributes: ``value`` for a sum or gauge; ``count`` and
    ``total`` for a histogram."""

    metric: str
    kind: str  # "sum", "gauge" or "histogram"
    attributes: dict[str, Any]
    value: float = 0.0
    count: int = 0
    total: float = 0.0
    time_unix_nano: int = 0


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    status_code: int
    resource: dict[str, Any]


def plain(value: AnyValue) -> Any:
    """An OTLP ``AnyValue`` as a Python value (arrays as lists)."""
    which = value.WhichOneof("value")
    if which == "array_value":
        return [plain(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return attributes_of(value.kvlist_value.values)
    return getattr(value, which) if which else None


def attributes_of(pairs: Any) -> dict[str, Any]:
    return {pair.key: plain(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


class OtlpCollector:
    """``with OtlpCollector() as collector:`` then ``collector.endpoint`` is the OTLP endpoint to export to."""

    def __init__(self) -> None:
        self.metric_requests: list[ExportMetricsServiceRequest] = []
        self.trace_requests: list[ExportTraceServiceRequest] = []
        self.envelopes: list[dict[str, Any]] = []  # Application Insights telemetry items (/v2.1/track)
        self.refused: list[str] = []  # paths or bodies it could not use
        self._lock = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def connection_string(self) -> str:
        """An Application Insights connection string whose ingestion (and live metrics) endpoint is this server."""
        return (f"InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint={self.endpoint}/;"
                f"LiveEndpoint={self.endpoint}/")

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "start the collector first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> OtlpCollector:
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, MAX_BODY_BYTES))
                if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
                    body = gzip.decompress(body)
                answer = collector._take(self.path, self.headers.get("Content-Type") or "", body)
                if answer is None:
                    self.send_error(404 if self.path not in ("/v1/metrics", "/v1/traces", TRACK) else 400)
                    return
                self.send_response(200)
                json_answer = self.path.split("?", 1)[0] == TRACK
                self.send_header("Content-Type", "application/json" if json_answer else "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-collector", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _take(self, path: str, content_type: str, body: bytes) -> bytes | None:
        if path.split("?", 1)[0] == TRACK:
            return self._track(body)
        if "protobuf" not in content_type:
            with self._lock:
                self.refused.append(f"{path}: {content_type}")
            return None
        try:
            if path == "/v1/metrics":
                metrics = ExportMetricsServiceRequest.FromString(body)
                with self._lock:
                    self.metric_requests.append(metrics)
                    self._lock.notify_all()
                return ExportMetricsServiceResponse().SerializeToString()
            if path == "/v1/traces":
                traces = ExportTraceServiceRequest.FromString(body)
                with self._lock:
                    self.trace_requests.append(traces)
                    self._lock.notify_all()
                return ExportTraceServiceResponse().SerializeToString()
        except Exception as exc:  # a body that is not what it says: refused, and kept for the test to see
            with self._lock:
                self.refused.append(f"{path}: {type(exc).__name__}: {exc}")
            return None
        with self._lock:
            self.refused.append(path)
        return None

    def _track(self, body: bytes) -> bytes | None:
        try:
            items = json.loads(body)
        except ValueError as exc:
            with self._lock:
                self.refused.append(f"{TRACK}: {exc}")
            return None
        items = items if isinstance(items, list) else [items]
        with self._lock:
            self.envelopes.extend(item for item in items if isinstance(item, dict))
            self._lock.notify_all()
        return json.dumps({"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []}).encode()

    def tracked_metrics(self) -> dict[str, list[dict[str, Any]]]:
        """The Application Insights metric items received, by metric name: each its ``value`` and ``properties``
        (the attributes)."""
        found: dict[str, list[dict[str, Any]]] = {}
        for envelope in list(self.envelopes):
            base = (envelope.get("data") or {}).get("baseData") or {}
            for metric in base.get("metrics") or ():
                found.setdefault(metric.get("name"), []).append(
                    {"value": metric.get("value"), "properties": base.get("properties") or {}})
        return found

    def wait_for(self, predicate: Callable[[OtlpCollector], bool], timeout: float) -> bool:
        """Waits until ``predicate(self)`` holds (checked on each request received), at most ``timeout`` seconds."""
        with self._lock:
            return self._lock.wait_for(lambda: predicate(self), timeout)

    # -- what was received ---------------------------------------------------------------------------------------
    def points(self, name: str) -> list[Point]:
        """The newest point of metric ``name`` for each set of attributes, over every export received."""
        newest: dict[Attrs, Point] = {}
        for request in list(self.metric_requests):
            for resource_metrics in request.resource_metrics:
                for scope_metrics in resource_metrics.scope_metrics:
                    for metric in scope_metrics.metrics:
                        if metric.name != name:
                            continue
                        for point in _points(metric):
                            key = tuple(sorted((k, repr(v)) for k, v in point.attributes.items()))
                            if key not in newest or newest[key].time_unix_nano <= point.time_unix_nano:
                                newest[key] = point
        return list(newest.values())

    def metric_names(self) -> set[str]:
        return {metric.name for request in list(self.metric_requests) for rm in request.resource_metrics
                for sm in rm.scope_metrics for metric in sm.metrics}

    def total(self, name: str, **attributes: Any) -> float:
        """The sum over series of a counter's newest values, of the series whose attributes include ``attributes``."""
        return sum(p.value for p in self.points(name) if all(p.attributes.get(k) == v for k, v in attributes.items()))

    def spans(self) -> list[ReceivedSpan]:
        found = []
        for request in list(self.trace_requests):
            for resource_spans in request.resource_spans:
                resource = attributes_of(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        found.append(ReceivedSpan(
                            span.name, span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex(),
                            attributes_of(span.attributes),
                            [(event.name, attributes_of(event.attributes)) for event in span.events],
                            span.status.code, resource))
        return found


def _points(metric: Any) -> list[Point]:
    kind = metric.WhichOneof("data")
    if kind == "sum" or kind == "gauge":
        return [Point(metric.name, kind, attributes_of(p.attributes),
                      value=p.as_double if p.WhichOneof("value") == "as_double" else float(p.as_int),
                      time_unix_nano=p.time_unix_nano) for p in getattr(metric, kind).data_points]
    if kind == "histogram":
        return [Point(metric.name, kind, attributes_of(p.attributes), count=p.count, total=p.sum,
                      time_unix_nano=p.time_unix_nano) for p in metric.histogram.data_points]
    return []
