"""Issue 20, point 16: what docs/reference.md shows of a dead-letter record is what the tracker writes."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from jobs.flows.delivery import deadletter_message
from jobs.outputs.webhooks import DeliveryTask
from jobs.webhooks.sender import describe_url

ROOT = Path(__file__).resolve().parents[2]
CALLBACK = "https://prod-12.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=s3cr3t"


def _documented_record() -> dict[str, object]:
    reference = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    section = reference.split("### Dead-letter record", 1)[1]
    [block] = re.findall(r"```json\n(.*?)\n```", section, re.DOTALL)[:1]
    return json.loads(block)


def test_point16_the_documented_dead_letter_target_is_the_shape_the_tracker_writes():
    documented = _documented_record()
    target = describe_url(CALLBACK)
    assert documented["target"] == target  # the same URL, shown the same way: scheme, host and a hash
    assert "s3cr3t" not in target and "/workflows/" not in target


def test_point16_a_dead_letter_record_has_the_documented_fields():
    task = DeliveryTask(tracking_id="c8c6d644-8643-4a22-931f-c13473cf1a65-4f1c2b9e", subscriber="default",
                        status="Completed", target="abc", attempt=1,
                        first_attempt_at="2026-11-22T04:07:11.605795+00:00")
    record = json.loads(deadletter_message(task, CALLBACK, "410 Gone: the subscriber is gone",
                                           {"specversion": "1.0", "id": "x"}, datetime.now(UTC)))
    assert set(record) == set(_documented_record())
    assert record["target"] == _documented_record()["target"]
