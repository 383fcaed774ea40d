"""``python -m jobs demo``: the whole loop on this machine.

Starts Azurite, the Backup REST API simulator and a local webhook receiver, feeds a handful of jobs of different
kinds to the intake queue (in different shapes, plus one malformed message), runs the tracker with the same code
paths as the Functions app, shows progress while the jobs run and prints each result as the webhook receives it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from devtools.azurite import Azurite
from devtools.simulator import DEMO_VAULT_ID, BackupSimulator, JobScript
from devtools.webhook_receiver import ReceivedRequest, WebhookReceiver
from jobs.config import Settings
from jobs.local_host import LocalHost
from jobs.tracker import Tracker

__all__ = ["run_demo"]

# A Backup vault (Microsoft.DataProtection) beside the Recovery Services vault: blobs, disks and the like.
DEMO_BACKUP_VAULT_ID = DEMO_VAULT_ID.replace("Microsoft.RecoveryServices/vaults/demo-vault",
                                             "Microsoft.DataProtection/backupVaults/demo-backup-vault")

_DEMO_JOBS = [
    ("jobId + vaultId",
     JobScript("AzureIaaSVMJob", "Backup", "Completed", duration=8, entity_friendly_name="vm-web01")),
    ("jobResourceId", JobScript("AzureIaaSVMJob", "Backup", "Failed", duration=6, entity_friendly_name="vm-db01")),
    ("bare resource id, base64", JobScript("AzureWorkloadJob", "Backup", "CompletedWithWarnings", duration=10)),
    ("subscriptionId + resourceGroup + vaultName",
     JobScript("AzureStorageJob", "Restore", "Completed", duration=7, not_found_for=3)),
    ("jobId + vaultId", JobScript("MabJob", "Backup", "Cancelled", duration=9, cancelling_for=3)),
]
# Backup vault jobs: (shape, script, what the job backs up), fed the same way.
_BACKUP_VAULT_JOBS = [
    ("jobId + vaultId", JobScript("AzureStorageJob", "Backup", "Completed", duration=6,
                                  entity_friendly_name="stblobs01", data_source="blob")),
    ("jobResourceId", JobScript("AzureStorageJob", "Backup", "Completed", duration=7,
                                entity_friendly_name="disk-data01", data_source="disk", status_words="described")),
    ("jobId + vaultId", JobScript("AzureStorageJob", "Backup", "Failed", duration=5,
                                  entity_friendly_name="pg-orders", data_source="postgresql")),
]


_PRINT_LOCK = threading.Lock()


def _print(line: str = "") -> None:
    with _PRINT_LOCK:
        print(line, flush=True)


def run_demo(timeout: float = 120.0, storage: Mapping[str, str] | None = None) -> int:
    """``storage``: settings naming storage that already runs (``AzureWebJobsStorage``, and queue and table names
    if they must be the demo's own), used instead of starting Azurite: the tests pass their session's Azurite."""
    started = time.monotonic()
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    received: list[dict[str, Any]] = []
    lock = threading.Lock()

    def on_request(request: ReceivedRequest) -> None:
        try:
            event = request.json()
        except ValueError:
            return
        with lock:
            received.append(event)
        data = event.get("data") or {}
        signed = "signature verified" if request.verified else "SIGNATURE NOT VERIFIED"
        what = data.get("entityFriendlyName") or data.get("jobId") or "operation"
        errors = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in data.get("errors") or [])
        _print(f"  <- webhook  {event.get('type'):32} {what:20} {data.get('operation') or '-':8} "
               f"{data.get('duration') or '':14} {signed}")
        if errors:
            _print(f"             errors: {errors}")

    _print("Backup Job Tracker demo: Azurite + Backup REST API simulator + local webhook receiver\n")
    azurite_or_none = contextlib.nullcontext() if storage else Azurite()
    with azurite_or_none as azurite, BackupSimulator(token="demo-token") as simulator, \
            WebhookReceiver(secret=secret, on_request=on_request) as receiver:
        if azurite is not None:
            _print(f"  Azurite        queue :{azurite.ports['queue']}  table :{azurite.ports['table']}")
        _print(f"  ARM simulator  {simulator.base_url}")
        _print(f"  webhook        {receiver.url}\n")
        settings = Settings.from_env({
            "AzureWebJobsStorage": azurite.connection_string if azurite is not None else "",
            "JOBS_WEBHOOK_URLS": receiver.url,
            "JOBS_WEBHOOK_SECRET": secret,
            "JOBS_POLL_SECONDS": "2",
            "ARM_ENDPOINT": simulator.base_url,
            "JOBS_ARM_TOKEN": "demo-token",
            "JOBS_NOT_FOUND_GRACE_SECONDS": "60",
            "JOBS_LOG_LEVEL": os.environ.get("JOBS_LOG_LEVEL", "WARNING"),
            **(storage or {}),
        })
        tracker = Tracker(settings)
        tracker.setup()
        intake = tracker.bindings().storage.queue(settings.intake_queue)
        simulator.add_vault(DEMO_VAULT_ID)
        simulator.add_vault(DEMO_BACKUP_VAULT_ID)
        expected = 0
        _print("Feeding the intake queue:")
        for shape, script in _DEMO_JOBS:
            job_id = simulator.add_job(DEMO_VAULT_ID, script)
            intake.send_message(_message(shape, job_id))
            _print(f"  -> {script.job_type:17} {script.operation:8} ({shape}) will end {script.final_status}")
            expected += 1
        for shape, script in _BACKUP_VAULT_JOBS:
            job_id = simulator.add_job(DEMO_BACKUP_VAULT_ID, script)
            intake.send_message(_message(shape, job_id, DEMO_BACKUP_VAULT_ID))
            _print(f"  -> Backup vault: {script.data_source:6} {script.operation:8} ({shape}) will end "
                   f"{script.final_status}")
            expected += 1
        triggered = simulator.trigger_backup(DEMO_VAULT_ID, JobScript(duration=5, entity_friendly_name="vm-app02"),
                                             operation_delay=2)
        intake.send_message(json.dumps({"operationUrl": triggered.azure_async_operation, "correlationId": "demo-op"}))
        _print("  -> an operationUrl from a simulated 'trigger backup' call (tracked until it names its job)")
        expected += 1
        intake.send_message('{"jobId": "not-a-guid"}')
        _print("  -> one malformed message (goes to the rejected queue)\n")

        host = LocalHost(tracker, idle_sleep=0.1)
        outcome: dict[str, int] = {}
        thread = threading.Thread(target=lambda: outcome.setdefault("code", host.run(until_idle=True,
                                                                                        timeout=timeout)))
        thread.start()
        last_progress = 0.0
        while thread.is_alive():
            thread.join(0.5)
            if time.monotonic() - last_progress >= 4 and thread.is_alive():
                last_progress = time.monotonic()
                _progress(tracker, started)
        host.stop_event.set()
        code = outcome.get("code", 1)

        rejected = [json.loads(m.content) for m in
                    tracker.bindings().storage.queue(settings.rejected_queue).receive_messages(max_messages=32)]
        _print()
        for record in rejected:
            _print(f"Rejected: {record['message']!r}: {record['reason']}")
        with lock:
            events = list(received)
        if events:
            _print("\nOne result event as the webhook received it:")
            sample = dict(events[0])
            sample["data"] = {**sample["data"], "job": "<the JobResource as Azure returned it>"}
            _print(json.dumps(sample, indent=2))
        _print(f"\n{len(events)} of {expected} results delivered, {len(rejected)} message rejected, "
               f"{simulator.stats()['arm_requests']} ARM requests, {time.monotonic() - started:.0f} s.")
        if code != 0 or len(events) != expected:
            _print("The demo did not finish as expected.")
            return 1
    return 0


def _message(shape: str, job_id: str, vault_id: str = DEMO_VAULT_ID) -> str:
    resource_id = f"{vault_id}/backupJobs/{job_id}"
    if shape == "jobResourceId":
        return json.dumps({"jobResourceId": resource_id, "correlationId": "demo-2"})
    if shape.startswith("bare"):
        return base64.b64encode(resource_id.encode()).decode()
    if shape.startswith("subscriptionId"):
        parts = DEMO_VAULT_ID.split("/")
        return json.dumps({"jobId": job_id, "subscriptionId": parts[2], "resourceGroup": parts[4],
                           "vaultName": parts[8], "context": {"ticket": "CHG-1234"}})
    return json.dumps({"jobId": job_id, "vaultId": vault_id})


def _progress(tracker: Tracker, started: float) -> None:
    items = tracker.list_items() or []
    running = [i for i in items if not i.ended]
    statuses = ", ".join(
        f"{_name_of(i) or _short(i)}: {i.status or 'waiting'}"
        for i in running
    )
    _print(f"[{time.monotonic() - started:5.1f} s] {len(running)} running, {len(items) - len(running)} ended"
           + (f"  ({statuses})" if statuses else ""))


def _name_of(item: Any) -> str | None:
    """The job's name as Azure writes it: a Recovery Services job's entityFriendlyName, a Backup vault job's
    backupInstanceFriendlyName."""
    properties = (item.resource or {}).get("properties") or {}
    return properties.get("entityFriendlyName") or properties.get("backupInstanceFriendlyName")


def _short(item: Any) -> str:
    return f"job {item.job_id[:8]}" if item.job_id else f"operation {str(item.operation_id)[:8]}"


if __name__ == "__main__":
    sys.exit(run_demo())
