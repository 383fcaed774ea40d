"""``python -m jobs demo`` end to end: every demo job's result reaches the webhook, and the malformed message is
rejected. ``run_demo`` (what the verb runs) is run in this process on the session's Azurite, under its own queue
and table names, to spare the suite an Azurite start and an interpreter."""

from __future__ import annotations

import re
import uuid

from devtools.demo import run_demo


def test_the_demo_delivers_every_result_and_rejects_the_malformed_message(azurite, capsys) -> None:
    prefix = "demo" + uuid.uuid4().hex[:8]
    code = run_demo(timeout=90, storage={
        "AzureWebJobsStorage": azurite.connection_string,
        "JOBS_INTAKE_QUEUE": f"{prefix}-jobs",
        "JOBS_RESULTS_QUEUE": f"{prefix}-results",
        "JOBS_TABLE": prefix,
    })
    out = capsys.readouterr().out
    summary = re.search(r"^(\d+) of (\d+) results delivered, (\d+) message rejected", out, re.MULTILINE)
    assert summary is not None, out[-2000:]
    delivered, expected, rejected = map(int, summary.groups())
    assert (delivered, expected, rejected) == (9, 9, 1), out[-2000:]
    assert "Backup vault: blob" in out and "Backup vault: disk" in out, out[:2000]  # both kinds of vault
    assert code == 0, out[-2000:]
    assert out.count("signature verified") == 9 and "SIGNATURE NOT VERIFIED" not in out
