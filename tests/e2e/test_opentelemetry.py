"""``python -m jobs run`` exporting OpenTelemetry over OTLP/HTTP to a collector on loopback (docs/operating.md).

One run with Resource Graph on: three jobs (two completed, one failed), a throttled read, a webhook that refuses
once (a retry) and a callback that is gone (dead-lettered). The collector (devtools/otlp_collector.py, a real HTTP
server decoding protobuf with opentelemetry-proto) must receive every named metric with the figures of what
happened, as counted by the simulator and the queues, and the spans of rounds, vaults' polls and deliveries, none
of them carrying the callback's ``sig`` or any secret. Nothing is sent anywhere but loopback: the environment has
no connection string, statsbeat is off, and the collector is the only endpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from devtools.otlp_collector import OtlpCollector
from devtools.simulator import FaultConfig, JobScript
from devtools.webhook_receiver import WebhookReceiver
from jobs.telemetry.otel import METRICS
from tests.conftest import SECRET, VAULT, drain

ROOT = Path(__file__).resolve().parents[2]
SUB = "11111111-2222-3333-4444-555555555555"


# ``python -m jobs`` under an audit hook that refuses (and reports) any TCP connection beyond loopback.
LOOPBACK_ONLY = """
import runpy, socket, sys
def refuse_beyond_loopback(event, args):
    if event == "socket.connect" and args[0].family in (socket.AF_INET, socket.AF_INET6):
        if args[1][0] not in ("127.0.0.1", "::1", "localhost"):
            print(f"BEYOND LOOPBACK {args[1]!r}", file=sys.stderr, flush=True)
            raise ConnectionRefusedError(f"tests connect to loopback only, not {args[1]!r}")
sys.addaudithook(refuse_beyond_loopback)
sys.argv[0] = "jobs"
runpy.run_module("jobs", run_name="__main__", alter_sys=True)
"""


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "APPLICATIONINSIGHTS_"))}
    ran = subprocess.run([sys.executable, "-c", LOOPBACK_ONLY, *args], cwd=ROOT,
                         env={**inherited, **env, "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true"},
                         capture_output=True, text=True, timeout=90)
    assert "BEYOND LOOPBACK" not in ran.stderr, ran.stderr
    return ran


def _environment(env: dict[str, str], collector: OtlpCollector) -> dict[str, str]:
    return {**env, "JOBS_RESOURCE_GRAPH": "on",
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "OTEL_METRIC_EXPORT_INTERVAL": "500",
            "OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_SERVICE_NAME": "tracker-under-test"}


def test_run_exports_every_named_metric_and_the_spans_over_otlp(
    simulator, env, tracker, receiver, tls_files, monkeypatch
) -> None:
    sig = "SECRETSIG" + uuid.uuid4().hex
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_files[0])
    receiver.respond_with(503)  # the first webhook attempt is refused: one retry
    completed = [simulator.add_job(VAULT, JobScript(duration=0.5)) for _ in range(2)]
    failed = simulator.add_job(VAULT, JobScript(duration=0.5, final_status="Failed"))
    simulator.set_faults(FaultConfig(rate_429=1.0, retry_after_seconds=1, only_on_cue=1))  # one read throttled

    with OtlpCollector() as collector, WebhookReceiver(secret=SECRET, tls=tls_files) as gone:
        gone.respond_with(410)
        callback = f"{gone.url}?sv=2024-05-04&sp=w&sig={sig}"
        intake = tracker._storage.queue(tracker.settings.intake_queue)
        intake.send_message(json.dumps({"jobId": completed[0], "vaultId": VAULT, "callbackUrl": callback}))
        for job_id in (completed[1], failed):
            intake.send_message(json.dumps({"jobId": job_id, "vaultId": VAULT}))

        ran = _run(_environment(env, collector), "run", "--until-idle", "--timeout", "60")
        assert ran.returncode == 0, ran.stderr
        # The SDK flushes at exit; the collector has decoded every request by the time the process ended.
        assert collector.refused == [], collector.refused

    events = [json.loads(text) for text in drain(tracker._storage.queue(tracker.settings.results_queue or ""))]
    assert sorted(e["type"] for e in events) == ["BackupJob.Completed", "BackupJob.Completed", "BackupJob.Failed"]
    deadletters = drain(tracker._storage.queue(tracker.settings.deadletter_queue))
    stats = simulator.stats()
    throttled = stats["by_status"].get(429, 0)
    assert throttled == 1 and len(deadletters) == 1, (stats, deadletters)

    named = set(METRICS) - {"backupjobs.arm.refused"}  # no read was refused in this run: nothing to count
    assert named <= collector.metric_names(), sorted(collector.metric_names())
    # Results: one per event published, by type.
    assert collector.total("backupjobs.results", type="BackupJob.Completed") == 2
    assert collector.total("backupjobs.results", type="BackupJob.Failed") == 1
    latency = collector.points("backupjobs.result.latency")
    assert sum(p.count for p in latency) == 3 and all(0 <= p.total / p.count < 60 for p in latency), latency
    # Reads: what the simulator answered, kind by kind; the 429 among them counted as throttled.
    reads = {kind: collector.total("backupjobs.arm.reads", kind=kind) for kind in ("get", "list", "graph")}
    answered = {"get": stats["by_kind"]["job_get"], "list": stats["by_kind"]["job_list"],
                "graph": stats["by_kind"]["resource_graph"]}
    assert reads == answered and answered["graph"] >= 1 and answered["get"] >= 3, (reads, stats["by_kind"])
    assert collector.total("backupjobs.arm.throttled") >= throttled
    # Deliveries: four events to the webhook (one refused first, then retried) and the callback's one, gone.
    assert collector.total("backupjobs.deliveries", outcome="delivered") == 3 == len(receiver.delivered())
    assert collector.total("backupjobs.deliveries", outcome="retried") == 1
    assert collector.total("backupjobs.deliveries", outcome="dead-lettered") == 1
    assert [p.value for p in collector.points("backupjobs.running")] == [0]  # nothing runs at the end
    assert all(p.value >= 0 for p in collector.points("backupjobs.detector.lag"))

    spans = collector.spans()
    names = {span.name for span in spans}
    assert {"backupjobs.round", "backupjobs.vault_poll", "backupjobs.delivery"} <= names, names
    polls = [s for s in spans if s.name == "backupjobs.vault_poll"]
    assert {s.attributes["backupjobs.vault"] for s in polls} == {VAULT}
    assert {s.attributes["backupjobs.subscription"] for s in polls} == {SUB}
    published = {e[1]["backupjobs.job"] for s in polls for e in s.events if e[0] == "backupjobs.result"}
    tracking_ids = {item.tracking_id for item in tracker._store.list_items()}
    assert len(tracking_ids) == 3
    assert published == tracking_ids and any(set(s.attributes["backupjobs.jobs"]) & tracking_ids for s in polls)
    deliveries = [s for s in spans if s.name == "backupjobs.delivery"]
    assert {s.attributes["backupjobs.job"] for s in deliveries} == tracking_ids
    assert {s.resource.get("service.name") for s in spans} == {"tracker-under-test"}

    # No capability, callback query or secret in any span or metric attribute.
    exported = json.dumps([[s.attributes, s.events, s.resource] for s in spans]
                          + [p.attributes for name in METRICS for p in collector.points(name)], default=str)
    for secret in ("SECRETSIG", "sig=", SECRET, "sim-token", "AccountKey", gone.url.split("?")[0]):
        assert secret not in exported, secret


def test_with_a_connection_string_run_exports_to_application_insights_ingestion(simulator, env, tracker) -> None:
    """The Azure Monitor distro, as on Functions: its ingestion endpoint here is the collector on loopback."""
    job_id = simulator.add_job(VAULT, JobScript(duration=0.2, final_status="Failed"))
    with OtlpCollector() as collector:
        tracker._storage.queue(tracker.settings.intake_queue).send_message(
            json.dumps({"jobId": job_id, "vaultId": VAULT}))
        # The distro's Azure VM resource detector would ask the instance metadata endpoint: App Service's only here.
        settings = {"JOBS_WEBHOOK_URLS": "", "APPLICATIONINSIGHTS_CONNECTION_STRING": collector.connection_string,
                    "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "azure_app_service", "OTEL_METRIC_EXPORT_INTERVAL": "500",
                    "OTEL_TRACES_SAMPLER": "always_on", "OTEL_BSP_SCHEDULE_DELAY": "200"}
        ran = _run({**env, **settings}, "run", "--until-idle", "--timeout", "60")
        assert ran.returncode == 0, ran.stderr
        assert collector.wait_for(lambda c: "backupjobs.results" in c.tracked_metrics(), 10), collector.envelopes
    metrics = collector.tracked_metrics()
    assert [m["properties"].get("type") for m in metrics["backupjobs.results"]][-1] == "BackupJob.Failed"
    assert {m["properties"].get("kind") for m in metrics["backupjobs.arm.reads"]} >= {"get"}
    spans = {e["data"]["baseData"].get("name") for e in collector.envelopes
             if e["data"].get("baseType") in ("RequestData", "RemoteDependencyData")}
    assert spans >= {"backupjobs.round", "backupjobs.vault_poll"}
