"""The alert rules (infra/app/alerts.bicep) query the metric names and attribute values the tracker exports."""

from __future__ import annotations

import re
from pathlib import Path

from pycep import BicepParser

from jobs.telemetry.otel import DELIVERY_OUTCOMES, METRICS

ALERTS = Path(__file__).resolve().parents[2] / "infra" / "app" / "alerts.bicep"


def test_each_alert_rule_reads_an_exported_metric_by_its_attributes() -> None:
    text = ALERTS.read_text(encoding="utf-8")
    assert BicepParser().parse(file_path=ALERTS)["resources"]
    queries = re.findall(r"query: '(customMetrics[^']*)'", text)
    assert len(queries) == 4, queries  # failed results, TrackingFailed, dead-lettered, refused credential
    named = [re.search(r'name == "([^"]+)"', q).group(1) for q in queries]  # type: ignore[union-attr]
    assert set(named) <= set(METRICS) and set(named) == {"backupjobs.results", "backupjobs.deliveries",
                                                         "backupjobs.arm.refused"}, named
    assert any('endswith ".TrackingFailed"' in q for q in queries)
    assert any('endswith ".Failed"' in q for q in queries)
    assert any(f'== "{DELIVERY_OUTCOMES["deadletter"]}"' in q for q in queries)
    assert any('customDimensions["kind"]) == "credential"' in q for q in queries)
    main = (ALERTS.parents[1] / "main.bicep").read_text(encoding="utf-8")
    assert "module alerts 'app/alerts.bicep'" in main
