"""No secret is logged, stored in the table or put in an event (docs/reference.md, "Security").

One realistic run with every secret the tracker handles set to a distinctive value: the ARM token, the webhook
secret, the Azurite AccountKey in AzureWebJobsStorage, a SAS-like ``sig`` in a per-job callbackUrl and a function
``code`` in a webhook URL. Jobs come in through every intake shape; ARM throttles; one callback is dead-lettered.
Everything logged (root at DEBUG, the Azure SDK and urllib3 included) and written to stdout/stderr is captured
and searched, as are the table, the results queue and the dead-letter queue.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterator

import pytest

from devtools.simulator import FaultConfig, JobScript
from devtools.webhook_receiver import WebhookReceiver
from jobs.config import AZURITE_ACCOUNT_KEY
from jobs.webhooks.sender import describe_url
from tests.conftest import VAULT, drain

SUB, RG, NAME = "11111111-2222-3333-4444-555555555555", "backup-rg", "prod-vault"


class CaptureAll(logging.Handler):
    """Every record any logger emits, formatted with its traceback, while installed on the root logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []
        self.names: set[str] = set()
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        with self._guard:
            self.lines.append(text)
            self.names.add(record.name)

    def text(self) -> str:
        with self._guard:
            return "\n".join(self.lines)


@pytest.fixture
def capture_all_logging() -> Iterator[CaptureAll]:
    """Root at DEBUG and every logger that exists (azure.*, urllib3.*, jobs.*) opened to DEBUG, restored after."""
    handler = CaptureAll()
    root = logging.getLogger()
    for name in ("azure", "azure.core.pipeline.policies.http_logging_policy", "urllib3", "urllib3.connectionpool",
                 "requests", "jobs"):
        logging.getLogger(name)  # make sure these exist before levels are saved
    loggers = [root, *(obj for obj in logging.Logger.manager.loggerDict.values() if isinstance(obj, logging.Logger))]
    saved = [(logger, logger.level, logger.disabled) for logger in loggers]
    logging.disable(logging.NOTSET)
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for logger, level, disabled in saved:
            logger.setLevel(level)
            logger.disabled = disabled


def test_a_whole_run_logs_stores_and_publishes_no_secret(
    simulator, make_tracker, azurite, tls_files, monkeypatch, capture_all_logging, capfd, run_host
):
    arm_token = "ARMTOKEN-" + uuid.uuid4().hex
    secret_b64 = base64.b64encode(b"WEBHOOKSECRET-" + os.urandom(18)).decode()
    webhook_secret = "whsec_" + secret_b64
    sig = "SECRETSIG" + uuid.uuid4().hex
    code = "FUNCTIONKEY" + uuid.uuid4().hex
    assert AZURITE_ACCOUNT_KEY in azurite.connection_string
    simulator.token = arm_token  # the simulator accepts only this token, so every ARM call carried it
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_files[0])

    with WebhookReceiver(secret=webhook_secret) as hook, \
            WebhookReceiver(secret=webhook_secret, tls=tls_files) as callback, \
            WebhookReceiver(secret=webhook_secret, tls=tls_files) as gone:
        gone.respond_with(410)
        tracker = make_tracker(
            JOBS_ARM_TOKEN=arm_token,
            JOBS_WEBHOOK_SECRET=webhook_secret,
            JOBS_WEBHOOK_URLS=f"{hook.url}?code={code}",
            JOBS_CALLBACK_ALLOWED_HOSTS="127.0.0.1",
        )
        assert tracker.settings.storage.connection_string == azurite.connection_string
        simulator.set_faults(FaultConfig(rate_429=1.0, retry_after_seconds=1, only_on_cue=2))  # throttled twice

        def job(**script: object) -> str:
            return simulator.add_job(VAULT, JobScript(duration=0.5, **script))  # type: ignore[arg-type]

        operation = simulator.trigger_backup(VAULT, JobScript(duration=0.5), operation_delay=0.3)
        callback_url = f"{callback.url}?sv=2024-05-04&se=2030-01-01&sp=w&sig={sig}"
        # Slack and Teams webhooks carry their secret in the path: this one does too
        gone_url = f"{gone.url}/services/T000/B000/PATHSECRET{uuid.uuid4().hex}?sig={sig}-gone&code={code}"
        messages = [
            {"jobId": job(), "vaultId": VAULT, "callbackUrl": callback_url, "correlationId": "shape-1"},
            {"jobId": job(final_status="Failed"), "subscriptionId": SUB, "resourceGroup": RG, "vaultName": NAME,
             "correlationId": "shape-2", "context": {"ticket": 42}},
            {"jobResourceId": f"{VAULT}/backupJobs/{job()}", "callbackUrl": gone_url, "correlationId": "shape-3"},
            f"{VAULT}/backupJobs/{job()}",
            {"vaultId": VAULT, "operation": {"name": str(uuid.uuid4()), "status": "Succeeded",
                                             "properties": {"jobId": job()}}, "correlationId": "shape-4"},
            {"vaultId": VAULT, "operation": {"name": str(uuid.uuid4()), "status": "Failed",
                                             "error": {"code": "UserError", "message": "no"}},
             "correlationId": "shape-4-failed"},
            {"operationUrl": operation.azure_async_operation, "correlationId": "shape-5"},
        ]
        intake = tracker._storage.queue(tracker.settings.intake_queue)
        for message in messages:
            intake.send_message(message if isinstance(message, str) else json.dumps(message))
        intake.send_message(base64.b64encode(json.dumps({"jobId": job(), "vaultId": VAULT}).encode()).decode())

        assert run_host(until_idle=True, timeout=60, for_tracker=tracker).join() == 0

        # The run did what it should: throttled, delivered signed events, dead-lettered the gone callback.
        stats = simulator.stats()
        assert stats["by_status"].get(429, 0) >= 1 and stats["unauthorized"] == 0, stats
        events = [json.loads(t) for t in drain(tracker._storage.queue(tracker.settings.results_queue or ""))]
        assert len(events) == len(messages) + 1
        assert hook.wait_for(lambda reqs: len([r for r in reqs if r.answered == 200]) >= len(events), 10)
        assert all(r.verified for r in hook.delivered())
        assert [r.json()["data"]["correlationId"] for r in callback.delivered()] == ["shape-1"]
        assert callback.delivered()[0].verified and gone.requests[0].answered == 410
        tracking_ids = {item.tracking_id for item in tracker._store.list_items()}
        deadletters = [r for r in (json.loads(t) for t in drain(tracker._storage.queue(
            tracker.settings.deadletter_queue))) if r["trackingId"] in tracking_ids]
        assert len(deadletters) == 1 and "410" in deadletters[0]["reason"]
        assert deadletters[0]["target"] == describe_url(gone_url)
        table_entities = list(tracker._storage.table(tracker.settings.table).list_entities())
        rejected = drain(tracker._storage.queue(tracker.settings.rejected_queue))
        poison = drain(tracker._storage.queue(f"{tracker.settings.intake_queue}-poison"))

    assert rejected == [] and poison == []
    logged = capture_all_logging.text()
    out, err = capfd.readouterr()
    # The capture saw the SDK and HTTP traffic, so the search below means something.
    assert any(name.startswith("azure.core.pipeline.policies.http_logging_policy")
               for name in capture_all_logging.names), sorted(capture_all_logging.names)
    assert any(name.startswith("urllib3") for name in capture_all_logging.names), sorted(capture_all_logging.names)
    assert "dead-lettered" in logged and "/hooks" in logged

    secrets = {
        "ARM token": arm_token,
        "webhook secret": webhook_secret,
        "webhook secret (base64 part)": secret_b64,
        "Azurite AccountKey": AZURITE_ACCOUNT_KEY,
        "SAS sig": "SECRETSIG",
        "function key": "FUNCTIONKEY",
        "secret in a URL path": "PATHSECRET",
    }
    for where, text in (("logs", logged), ("stdout", out), ("stderr", err)):
        leaked = [name for name, value in secrets.items() if value in text]
        assert leaked == [], f"{leaked} found in {where}: " + _context(text, [secrets[n] for n in leaked])

    # Stored: the subscriber rows keep the callbackUrl (needed to deliver later); nothing else holds a secret.
    for entity in table_entities:
        without_callback = json.dumps({k: v for k, v in entity.items() if k != "CallbackUrl"}, default=str)
        leaked = [name for name, value in secrets.items() if value in without_callback]
        assert leaked == [], (leaked, entity["PartitionKey"], entity["RowKey"])
        assert "CallbackUrl" not in entity or entity["RowKey"].startswith("sub-"), entity["RowKey"]
    assert sorted(e["CallbackUrl"] for e in table_entities if "CallbackUrl" in e) == sorted([callback_url, gone_url])

    # Published: no secret in any event or dead-letter record.
    for record in [*events, *deadletters, *(r.json() for r in hook.delivered())]:
        text = json.dumps(record)
        assert [name for name, value in secrets.items() if value in text] == [], record


def _context(text: str, needles: list[str]) -> str:
    for needle in needles:
        at = text.find(needle)
        if at >= 0:
            return repr(text[max(0, at - 200) : at + 80])
    return ""
