"""checkov over the Bicep templates: no failed check, no file it could not parse, and checks that really ran.

checkov pins an older pycep-parser than the template tests, so it lives in its own virtual environment
(`make .venv-checkov/.installed`); the Makefile hands its path over in CHECKOV_BIN.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"

# Checks that must have run (passed, or skipped with a reason) on each of these resources, at least this many:
# a template that checkov cannot see (a registry module, a parse failure) would otherwise pass silently.
MINIMUM_CHECKS = {
    "Microsoft.Storage/storageAccounts.storageAccount": 5,
    "Microsoft.Web/sites.functionApp": 12,
    "Microsoft.Web/serverfarms.plan": 1,
}
MINIMUM_PASSED = {
    "Microsoft.Storage/storageAccounts.storageAccount": 3,
    "Microsoft.Web/sites.functionApp": 10,
}

SKIP_COMMENT = re.compile(r"#checkov:skip=(CKV2?_[A-Z]+_\d+)(?::(.*))?")


def checkov_bin() -> Path:
    return Path(os.environ.get("CHECKOV_BIN") or REPO / ".venv-checkov" / "bin" / "checkov")


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    binary = checkov_bin()
    if not binary.is_file():
        pytest.fail(f"checkov not found at {binary}: run `make .venv-checkov/.installed` (or set CHECKOV_BIN)")
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}
    proc = subprocess.run(
        [str(binary), "-d", "infra", "--framework", "bicep", "--skip-download", "--compact", "-o", "json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov printed no JSON (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    if isinstance(data, list):  # one report per framework when several ran
        data = next(r for r in data if r.get("check_type") == "bicep")
    assert data.get("check_type") == "bicep", f"unexpected checkov report: {str(data)[:500]}"
    return data


def results(report: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return report["results"].get(kind, [])


def test_checkov_parses_every_template(report: dict[str, Any]) -> None:
    summary = report["summary"]
    assert summary["parsing_errors"] == 0, f"checkov could not parse: {report['results'].get('parsing_errors')}"
    assert summary["resource_count"] > 0


def test_checkov_reports_no_failed_check(report: dict[str, Any]) -> None:
    failed = [
        f"{c['check_id']} {c['check_name']} on {c['resource']} ({c['file_path']}:{c['file_line_range']})"
        for c in results(report, "failed_checks")
    ]
    assert report["summary"]["failed"] == 0 and not failed, "checkov failed:\n" + "\n".join(failed)


def test_checkov_actually_checked_the_storage_account_site_and_plan(report: dict[str, Any]) -> None:
    passed = Counter(c["resource"] for c in results(report, "passed_checks"))
    skipped = Counter(c["resource"] for c in results(report, "skipped_checks"))
    for resource, minimum in MINIMUM_CHECKS.items():
        ran = passed[resource] + skipped[resource]
        assert ran >= minimum, f"only {ran} checkov checks ran on {resource} (expected >= {minimum})"
    for resource, minimum in MINIMUM_PASSED.items():
        assert passed[resource] >= minimum, f"only {passed[resource]} checks passed on {resource}"


def test_every_skip_carries_a_reason_and_is_used(report: dict[str, Any]) -> None:
    in_files: set[tuple[str, str]] = set()
    for path in INFRA.rglob("*.bicep"):
        for match in SKIP_COMMENT.finditer(path.read_text(encoding="utf-8")):
            check_id, reason = match.group(1), (match.group(2) or "").strip()
            rel = "/" + path.relative_to(INFRA).as_posix()
            assert len(reason) >= 30, f"{rel}: skip of {check_id} needs a real reason, got {reason!r}"
            in_files.add((rel, check_id))
    skipped = {(c["file_path"], c["check_id"]) for c in results(report, "skipped_checks")}
    assert skipped == in_files, (
        f"skips checkov did not apply (stale): {sorted(in_files - skipped)}; "
        f"skips without a comment in the file: {sorted(skipped - in_files)}"
    )
    for check in results(report, "skipped_checks"):
        assert (check.get("check_result") or {}).get("suppress_comment"), f"{check['check_id']} skipped silently"
