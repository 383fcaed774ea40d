"""``python -m jobs drill``: the fault drill — inject Azure faults and runner crashes, count what came out.

Starts Azurite, the simulator (with a share of its answers faulted: 429 with Retry-After, 500, 503, connection
resets, truncated JSON, slow answers, plus ARM's token bucket) and a webhook receiver; feeds jobs of every kind
and outcome; runs the tracker (in this process, or as ``python -m jobs run`` subprocesses killed with SIGKILL at
random moments and restarted, one or two at once on the same storage); then compares every result event with what
the simulator says each job ended as, and prints a table: jobs, faults, kills, lost, wrong, duplicated ids,
Retry-After violations, and the ARM reads per job.

``hold_poll_queue`` (``--hold-poll-queue SECONDS``) runs the runners as ``python -m devtools.drill runner``: the
same ``LocalHost`` and ``Tracker`` as ``python -m jobs run``, except that the first poll message a runner's round
sends for a job is put on the poll queue invisible for SECONDS, as if the queue trigger picked it up that late
(a cold or busy instance). With SECONDS longer than the poll round's lease, a later round hands the job out again
while the held message still waits: the reads per job show what the late message costs.

``failing_vault_jobs`` (``--failing-vault-jobs N``) adds a vault whose reads all fail (503 on every GET and list
page, ``BackupSimulator.fail_vault_reads``) with N running jobs tracked for ``FAILING_TIMEOUT_MINUTES``: each must
end ``BackupJob.TimedOut`` at that deadline, its last read's error in ``errors[1]``, while every other job ends with
its true status.

``credential_outage`` (``--credential-outage SECONDS``) runs the tracker as deployed, with no ``JOBS_ARM_TOKEN``:
its token comes from ``DefaultAzureCredential`` and App Service's managed identity endpoint, here
``devtools.identity_endpoint`` on loopback, which refuses every token request for SECONDS (four times the grace
period the drill then sets) and answers after, each job read on its own (the job strategy, Resource Graph off).
Every job must still end with its true status; none ``TrackingFailed``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devtools.azurite import Azurite
from devtools.identity_endpoint import IdentityEndpoint
from devtools.simulator import BackupSimulator, FaultConfig, JobScript
from devtools.webhook_receiver import WebhookReceiver
from jobs.config import Settings, StorageSettings
from jobs.flows.poll_round import lease_seconds
from jobs.local_host import LocalHost
from jobs.outputs import Output, outputs_from_settings
from jobs.providers.recovery_services import JOB_TYPES
from jobs.storage import StorageAccount
from jobs.tracker import Tracker

__all__ = ["DrillReport", "compare_events", "run_drill"]

_ROOT = Path(__file__).resolve().parent.parent
_OUTCOMES = ("Completed", "Completed", "CompletedWithWarnings", "Failed", "Cancelled")
FAILING_VAULT = ("/subscriptions/aaaaaaaa-0000-4000-8000-000000000001/resourceGroups/rg-failing/providers"
                 "/Microsoft.RecoveryServices/vaults/vault-failing")
FAILING_TIMEOUT_MINUTES = 0.25  # the failing vault's jobs' deadline (timeoutMinutes): 15 s


@dataclass
class DrillReport:
    jobs: int
    subscribers: int
    fault_rate: float
    kills: int = 0
    runners: int = 1
    hold_poll_queue: float = 0.0
    lease_seconds: float = 0.0
    held_messages: int = 0
    arm_requests: int = 0
    most_gets_of_one_job: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    expected_events: int = 0
    results_queue_events: int = 0
    webhook_deliveries: int = 0
    lost: int = 0
    wrong: int = 0
    unexpected: int = 0
    repeated_deliveries: int = 0
    conflicting_ids: int = 0
    retry_after_violations: int = 0
    stuck: int = 0
    failing_vault_jobs: int = 0  # jobs on the vault whose reads all fail
    failing_timed_out: int = 0  # of those, events BackupJob.TimedOut carrying the last read's error
    # From the runners' phase records: kills that landed inside each phase, and time two runners worked at once.
    kills_inside: dict[str, int] = field(default_factory=dict)
    overlaps: int = 0
    overlap_seconds: float = 0.0
    seconds: float = 0.0
    credential_outage: float = 0.0  # seconds the identity endpoint refused every token request
    tokens_refused: int = 0  # token requests it refused meanwhile
    problems: list[str] = field(default_factory=list)

    @property
    def arm_reads_per_job(self) -> float:
        """ARM requests served (every GET, list page and operation read, faulted or not) per job tracked."""
        return self.arm_requests / self.jobs if self.jobs else 0.0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.wrong or self.unexpected or self.conflicting_ids or self.retry_after_violations
                    or self.stuck)

    def table(self) -> str:
        from tabulate import tabulate

        faults = ", ".join(f"{kind} {count}" for kind, count in sorted(self.faults.items()) if count) or "none"
        rows = [
            ["jobs tracked", self.jobs],
            ["subscribers per job", self.subscribers],
            ["runners at once", self.runners],
            *([["poll messages held back", f"{self.held_messages}, for {self.hold_poll_queue:g} s each "
                                          f"(the lease is {self.lease_seconds:g} s)"]]
              if self.hold_poll_queue else []),
            ["ARM requests served", self.arm_requests],
            ["ARM reads per job", f"{self.arm_reads_per_job:.2f} (at most {self.most_gets_of_one_job} GETs of one)"],
            ["faults injected", f"{sum(self.faults.values())} ({faults})"],
            *([["credential outage", f"{self.credential_outage:g} s, {self.tokens_refused} token requests refused"]]
              if self.credential_outage else []),
            ["runner kills (SIGKILL)", self.kills],
            *([["kills that landed inside", ", ".join(f"{phase} {self.kills_inside.get(phase, 0)}"
                                                     for phase in PHASES)]] if self.kills else []),
            *([["runners inside work at once", f"{self.overlaps} times, {self.overlap_seconds:.1f} s"]]
              if self.runners > 1 else []),
            ["events expected", self.expected_events],
            ["events on the results queue", self.results_queue_events],
            ["webhook deliveries", self.webhook_deliveries],
            ["lost (no event for a job+subscriber)", self.lost],
            ["wrong (type differs from the job's end)", self.wrong],
            ["unexpected (an event for no job+subscriber fed)", self.unexpected],
            ["repeated deliveries (same id again)", self.repeated_deliveries],
            ["conflicting ids (two ids, one job+subscriber)", self.conflicting_ids],
            ["Retry-After violations", self.retry_after_violations],
            ["jobs stuck (still tracked)", self.stuck],
            *([["vault whose reads all fail", f"{self.failing_vault_jobs} jobs, {self.failing_timed_out} events "
                                              f"TimedOut with the last read's error"]]
              if self.failing_vault_jobs else []),
            ["seconds", f"{self.seconds:.0f}"],
        ]
        return tabulate(rows, tablefmt="simple_outline")


def run_drill(
    *,
    jobs: int = 200,
    fault_rate: float = 0.3,
    kills: int = 0,
    runners: int = 1,
    subscribers: int = 1,
    seed: int = 7,
    timeout: float = 600.0,
    quiet: bool = False,
    hold_poll_queue: float = 0.0,
    failing_vault_jobs: int = 0,
    credential_outage: float = 0.0,
) -> DrillReport:
    rng = random.Random(seed)
    started = time.monotonic()
    report = DrillReport(jobs=jobs, subscribers=subscribers, fault_rate=fault_rate, runners=runners,
                         hold_poll_queue=hold_poll_queue, failing_vault_jobs=failing_vault_jobs)
    say = (lambda *_: None) if quiet else (lambda line: print(line, flush=True))
    with Azurite() as azurite, BackupSimulator(token="drill-token", seed=seed) as simulator, \
            WebhookReceiver() as receiver, contextlib.ExitStack() as outage:
        if kills:
            # A webhook that answers in DELIVERY_HOLD seconds, as a real receiver across a network does: a delivery
            # now takes next to nothing on loopback (the answer's body is never read), so without it a kill
            # rarely finds a runner inside the deliver phase.
            receiver.set_hang(DELIVERY_HOLD)
        env = {
            "AzureWebJobsStorage": azurite.connection_string,
            "JOBS_WEBHOOK_URLS": receiver.url,
            "JOBS_POLL_SECONDS": "1",
            "JOBS_MAX_POLL_INTERVAL_SECONDS": "3",
            "ARM_ENDPOINT": simulator.base_url,
            "JOBS_ARM_TOKEN": "drill-token",
            "JOBS_NOT_FOUND_GRACE_SECONDS": "120",
            "JOBS_DELIVERY_FIRST_RETRY_SECONDS": "1",
            # Every round through the poll queue: the drill holds its messages back and kills runners inside its
            # handler (Resource Graph stays on, under the same faults).
            "JOBS_INLINE_POLL_MAX": "0",
        }
        identity = outage.enter_context(_credential_outage(env, credential_outage)) if credential_outage else None
        settings = Settings.from_env(env)
        report.lease_seconds = lease_seconds(settings.poll_seconds)
        tracker = Tracker(settings)
        tracker.setup()
        # Held back, a job must still run when its late message comes, or the late read would cost nothing.
        durations = (hold_poll_queue + 2, hold_poll_queue + 6) if hold_poll_queue else (1, 8)
        expected = _feed(tracker, simulator, rng, jobs, subscribers, durations)
        failing = _feed_failing_vault(tracker, simulator, failing_vault_jobs, subscribers)
        expected.update(failing)
        report.expected_events = len(expected)
        simulator.set_faults(_faults(fault_rate))
        say(f"drill: {jobs} jobs, {fault_rate:.0%} of ARM answers faulted, {kills} kills, {runners} runner(s)"
            + (f", poll messages held back {hold_poll_queue:g} s (lease {report.lease_seconds:g} s)"
               if hold_poll_queue else ""))
        if identity is not None:
            identity.begin(credential_outage)
            say(f"drill: the managed identity endpoint refuses every token for {credential_outage:g} s")
        if kills or runners > 1 or hold_poll_queue:
            with tempfile.TemporaryDirectory(prefix="drill-") as folder:
                held_log = Path(folder) / "held.log"  # one line per held message, appended by the runners
                report.kills = _run_subprocesses(env, kills, runners, rng, timeout, say, hold_poll_queue, held_log,
                                                 Path(folder), report)
                if held_log.exists():
                    report.held_messages = len(held_log.read_text().splitlines())
        else:
            LocalHost(tracker).run(until_idle=True, timeout=timeout)
        simulator.set_faults(FaultConfig())
        stats = simulator.stats()
        report.arm_requests = stats["arm_requests"]
        report.most_gets_of_one_job = max(stats["job_gets"].values(), default=0)
        report.faults = {**{k: v for k, v in stats["faults"].items()}, "429 (token bucket)": 0}
        report.faults["429 (token bucket)"] = max(0, stats["throttled"] - stats["faults"].get("429", 0))
        report.retry_after_violations = stats["retry_after_violations"]
        report.stuck = len(tracker.list_items("running") or [])
        _compare(tracker, receiver, simulator, expected, report, set(failing))
        if identity is not None:
            report.credential_outage, report.tokens_refused = credential_outage, identity.refused
    report.seconds = time.monotonic() - started
    return report


class _Outage:
    """The identity endpoint of a credential outage: refusing from the start, answering ``seconds`` after
    ``begin``."""

    def __init__(self, endpoint: IdentityEndpoint) -> None:
        self.endpoint = endpoint
        self._timer: threading.Timer | None = None

    def begin(self, seconds: float) -> None:
        self._timer = threading.Timer(seconds, self.endpoint.answer)
        self._timer.daemon = True
        self._timer.start()

    @property
    def refused(self) -> int:
        return sum(1 for request in self.endpoint.requests if request.answered != 200)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


@contextlib.contextmanager
def _credential_outage(env: dict[str, str], seconds: float) -> Iterator[_Outage]:
    """The tracker as deployed (``env`` loses ``JOBS_ARM_TOKEN``): ``DefaultAzureCredential`` asks App Service's
    identity endpoint, here on loopback and refusing (400) until ``begin(seconds)`` has run its course. This
    process's environment points at it (``IDENTITY_ENDPOINT``, ``IDENTITY_HEADER``; the runners inherit it), so
    the credential never asks the instance metadata address; it is restored after. The grace period is a quarter of
    the outage: a job that ended over a token failure would show."""
    with IdentityEndpoint(token=env.pop("JOBS_ARM_TOKEN")) as endpoint:
        endpoint.refuse(400)  # as for an identity not (yet) assigned: at once, without retries
        env["JOBS_NOT_FOUND_GRACE_SECONDS"] = f"{max(2.0, seconds / 4):g}"
        # Each job read on its own: the reads where a token failure used to end jobs TrackingFailed. (Resource Graph
        # and vault lists under an outage: tests/functional/test_token_failures.py.)
        env.update(JOBS_POLL_STRATEGY="job", JOBS_LIST_THRESHOLD="1000", JOBS_RESOURCE_GRAPH="off")
        names = (*endpoint.env(), "AZURE_CLIENT_ID", "MSI_ENDPOINT", "MSI_SECRET", "AZURE_TOKEN_CREDENTIALS")
        saved = {name: os.environ.get(name) for name in names}
        for name in names:
            os.environ.pop(name, None)
        os.environ.update(endpoint.env())
        outage = _Outage(endpoint)
        try:
            yield outage
        finally:
            outage.cancel()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _feed(tracker: Tracker, simulator: BackupSimulator, rng: random.Random, jobs: int,
          subscribers: int, durations: tuple[float, float] = (1, 8)) -> dict[tuple[str, str], str]:
    """Creates jobs across vaults and subscriptions; returns {(jobId, correlationId): expected event type}."""
    vaults = [
        f"/subscriptions/{sub}/resourceGroups/rg-{v}/providers/Microsoft.RecoveryServices/vaults/vault-{v}"
        for sub, v in (("aaaaaaaa-0000-4000-8000-000000000001", 1), ("aaaaaaaa-0000-4000-8000-000000000001", 2),
                       ("bbbbbbbb-0000-4000-8000-000000000002", 3), ("bbbbbbbb-0000-4000-8000-000000000002", 4))
    ] + [  # a Backup vault (Microsoft.DataProtection): every fifth job, its statuses in either vocabulary
        "/subscriptions/bbbbbbbb-0000-4000-8000-000000000002/resourceGroups/rg-5/providers/Microsoft.DataProtection"
        "/backupVaults/backup-vault-5"
    ]
    for vault in vaults:
        simulator.add_vault(vault)
    intake = tracker.bindings().storage.queue(tracker.settings.intake_queue)
    expected = {}
    for index in range(jobs):
        vault = vaults[index % len(vaults)]
        outcome = rng.choice(_OUTCOMES)
        backup_vault = "Microsoft.DataProtection" in vault
        script = JobScript(
            job_type="AzureStorageJob" if backup_vault else rng.choice(JOB_TYPES), final_status=outcome,
            duration=rng.uniform(*durations), not_found_for=rng.choice((0, 0, 0, 1.5)),
            cancelling_for=1 if outcome == "Cancelled" else 0,
            data_source=rng.choice(("blob", "disk", "aks", "postgresql")) if backup_vault else None,
            status_words=rng.choice(("spec", "described")),
        )
        job_id = simulator.add_job(vault, script)
        for number in range(subscribers):
            correlation = f"drill-{index}-{number}"
            shape = rng.choice(("ids", "resource", "upper"))
            if shape == "ids":
                message: Any = {"jobId": job_id, "vaultId": vault, "correlationId": correlation}
            elif shape == "resource":
                message = {"jobResourceId": f"{vault}/backupJobs/{job_id}", "correlationId": correlation}
            else:
                upper_vault = vault.upper().replace("/SUBSCRIPTIONS/", "/subscriptions/")
                message = {"jobId": job_id.upper(), "vaultId": upper_vault, "correlationId": correlation}
            intake.send_message(json.dumps(message))
            expected[(job_id, correlation)] = f"BackupJob.{outcome}"
    return expected


def _feed_failing_vault(tracker: Tracker, simulator: BackupSimulator, jobs: int,
                        subscribers: int) -> dict[tuple[str, str], str]:
    """Running jobs on a vault whose every read fails, tracked for ``FAILING_TIMEOUT_MINUTES``: each is expected
    to end ``BackupJob.TimedOut``."""
    if not jobs:
        return {}
    simulator.add_vault(FAILING_VAULT)
    simulator.fail_vault_reads(FAILING_VAULT, "503")
    intake = tracker.bindings().storage.queue(tracker.settings.intake_queue)
    expected = {}
    for index in range(jobs):
        job_id = simulator.add_job(FAILING_VAULT, JobScript(duration=3600))
        for number in range(subscribers):
            correlation = f"drill-failing-{index}-{number}"
            intake.send_message(json.dumps({"jobId": job_id, "vaultId": FAILING_VAULT, "correlationId": correlation,
                                            "timeoutMinutes": FAILING_TIMEOUT_MINUTES}))
            expected[(job_id, correlation)] = "BackupJob.TimedOut"
    return expected


def _faults(rate: float) -> FaultConfig:
    return FaultConfig(
        throttle=True,
        rate_429=rate * 0.25, retry_after_seconds=1,
        rate_500=rate * 0.2, rate_503=rate * 0.2, rate_reset=rate * 0.15, rate_truncated=rate * 0.1,
        rate_slow=rate * 0.1, slow_seconds=0.3,
    )


def _run_subprocesses(env: dict[str, str], kills: int, runners: int, rng: random.Random, timeout: float,
                      say: Any, hold_poll_queue: float = 0.0, held_log: Path | None = None,
                      folder: Path | None = None, report: DrillReport | None = None) -> int:
    """Runs ``python -m devtools.drill runner`` (``runners`` at once): the tracker of ``python -m jobs run``, each
    runner writing when it enters and leaves a phase (intake, poll, publish, deliver) to its own record. Kills a
    runner ``kills`` times, each time once one is inside the target phase (poll, publish, deliver in turn, a target
    kept until a kill lands inside it;
    at a random runner after ``PHASE_WAIT`` seconds without one), restarting it; then lets them finish with
    ``--until-idle``. Into ``report``: the kills that landed inside each phase (read from the killed runner's
    record after it died) and how often and how long two runners were inside work at once."""
    full_env = {**os.environ, **env, "JOBS_LOG_LEVEL": "ERROR"}
    folder = folder or Path(tempfile.mkdtemp(prefix="drill-"))
    records: list[_PhaseRecord] = []

    def start(until_idle: bool) -> tuple[subprocess.Popen[bytes], _PhaseRecord]:
        record = _PhaseRecord(folder / f"phases-{len(records)}.log")
        records.append(record)
        args = [sys.executable, "-m", "devtools.drill", "runner", "--phase-log", str(record.path)]
        if hold_poll_queue:
            args += ["--hold-poll-queue", str(hold_poll_queue), "--held-log", str(held_log)]
        if until_idle:
            args += ["--until-idle", "--timeout", str(timeout)]
        process = subprocess.Popen(args, cwd=_ROOT, env=full_env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        return process, record

    done = 0
    inside: Counter[str] = Counter()
    if kills:
        running = [start(False) for _ in range(runners)]
        hits = 0  # kills that found a runner inside their target phase: the target moves on only then
        for _ in range(kills):
            target = PHASES[hits % len(PHASES)]
            victim = _wait_inside(running, target, PHASE_WAIT)
            if victim is None:  # no runner reached it in time (deliveries come late under load): try it again next
                victim = rng.randrange(len(running))
            else:
                hits += 1
            process, record = running[victim]
            process.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            process.wait()
            record.read()
            inside.update(record.open_phases())
            record.close_at(killed_at)
            done += 1
            running[victim] = start(False)
        for process, record in running:
            process.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            process.wait()
            record.read()
            record.close_at(killed_at)
    finishers = [start(True) for _ in range(runners)]
    for process, record in finishers:
        process.wait(timeout + 30)
        record.read()
        record.close_at(time.monotonic())
    if report is not None:
        report.kills_inside = {phase: inside.get(phase, 0) for phase in (*PHASES, "intake")}
        report.overlaps, report.overlap_seconds = _overlap([record.intervals for record in records])
    if kills:
        say(f"drill: {done} kills done, inside " + ", ".join(f"{p} {inside.get(p, 0)}" for p in PHASES))
    return done


PHASES = ("poll", "publish", "deliver")
PHASE_WAIT = 6.0  # seconds a kill waits for a runner inside its target phase
DELIVERY_HOLD = 0.3  # seconds the drill's webhook takes to answer while runners are being killed


def _wait_inside(running: list[tuple[subprocess.Popen[bytes], _PhaseRecord]], phase: str,
                 seconds: float) -> int | None:
    """The index of a runner inside ``phase`` as soon as one is (its record says so), or None after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for index, (_, record) in enumerate(running):
            record.read()
            if record.inside(phase):
                return index
        time.sleep(0.002)
    return None


def _overlap(runs: list[list[tuple[float, float]]]) -> tuple[int, float]:
    """From each runner process's intervals of work (inside any phase): how many times two or more were inside
    work at once, and for how many seconds in all."""
    events = sorted((moment, change, index) for index, intervals in enumerate(runs)
                    for start, end in intervals for moment, change in ((start, 1), (end, -1)))
    active: Counter[int] = Counter()
    times, seconds, since = 0, 0.0, 0.0
    for moment, change, index in events:
        before = sum(1 for count in active.values() if count > 0)
        active[index] += change
        after = sum(1 for count in active.values() if count > 0)
        if before < 2 <= after:
            times, since = times + 1, moment
        elif after < 2 <= before:
            seconds += moment - since
    return times, seconds


class _PhaseRecord:
    """The drill's reading of one runner's phase record (``<monotonic> enter|leave <phase> <n>`` lines)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._rest = b""
        self._open: dict[tuple[str, str], float] = {}  # (phase, n) -> entered at
        self._work_since: float | None = None
        self.intervals: list[tuple[float, float]] = []

    def read(self) -> None:
        try:
            with self.path.open("rb") as file:
                file.seek(self._offset)
                data = file.read()
        except FileNotFoundError:
            return
        self._offset += len(data)
        *lines, self._rest = (self._rest + data).split(b"\n")
        for line in lines:
            moment, what, phase, number = line.decode().split()
            key = (phase, number)
            if what == "enter":
                if not self._open:
                    self._work_since = float(moment)
                self._open[key] = float(moment)
            else:
                self._open.pop(key, None)
                if not self._open and self._work_since is not None:
                    self.intervals.append((self._work_since, float(moment)))
                    self._work_since = None

    def inside(self, phase: str) -> bool:
        return any(open_phase == phase for open_phase, _ in self._open)

    def open_phases(self) -> set[str]:
        return {phase for phase, _ in self._open}

    def close_at(self, moment: float) -> None:
        """The process is gone: work it was inside ended at ``moment``."""
        if self._open and self._work_since is not None:
            self.intervals.append((self._work_since, moment))
        self._open.clear()
        self._work_since = None


def _compare(tracker: Tracker, receiver: WebhookReceiver, simulator: BackupSimulator,
             expected: dict[tuple[str, str], str], report: DrillReport,
             failing: set[tuple[str, str]] | None = None) -> None:
    assert tracker.settings.results_queue
    queue = tracker.bindings().storage.queue(tracker.settings.results_queue)
    events: list[dict[str, Any]] = []
    while True:
        batch = list(queue.receive_messages(max_messages=32, messages_per_page=32))
        if not batch:
            break
        for message in batch:
            events.append(json.loads(message.content))
            queue.delete_message(message)
    delivered = [request.headers.get("webhook-id") or "" for request in receiver.delivered()]
    compare_events(events, delivered, expected, report)
    _check_failing(events, failing or set(), report)


def _check_failing(events: list[dict[str, Any]], failing: set[tuple[str, str]], report: DrillReport) -> None:
    """The failing vault's events: TimedOut, with the last read's error (503) beside the deadline's; any other is
    counted wrong."""
    for event in events:
        key = (event["data"]["jobId"], event["data"].get("correlationId"))
        if key not in failing:
            continue
        errors = event["data"].get("errors") or []
        codes = [error.get("code") for error in errors]
        if event["type"] == "BackupJob.TimedOut" and codes == ["TrackingTimedOut", "ServiceUnavailable"]:
            report.failing_timed_out += 1
        elif event["type"] == "BackupJob.TimedOut":  # a wrong type is already counted by compare_events
            report.wrong += 1
            report.problems.append(f"job {key[0]} of the failing vault timed out without its last read's error: "
                                   f"{codes}")


def compare_events(events: list[dict[str, Any]], delivered_ids: list[str],
                   expected: dict[tuple[str, str], str], report: DrillReport) -> None:
    """Counts into ``report`` what the results queue (``events``) and the webhook (``delivered_ids``, one per
    delivery) got against ``expected`` ({(jobId, correlationId): event type}): lost, wrong (any event of a
    job+subscriber whose type differs, not only the last), unexpected (an event for no job+subscriber fed),
    repeated deliveries and conflicting ids."""
    seen_ids: dict[tuple[str, str], set[str]] = defaultdict(set)
    types: dict[tuple[str, str], set[str]] = defaultdict(set)
    for event in events:
        key = (event["data"]["jobId"], event["data"].get("correlationId"))
        seen_ids[key].add(event["id"])
        types[key].add(event["type"])
        report.results_queue_events += 1
    delivered = Counter(delivered_ids)
    report.webhook_deliveries = sum(delivered.values())
    report.repeated_deliveries = sum(count - 1 for count in delivered.values()) + (
        report.results_queue_events - sum(len(ids) for ids in seen_ids.values())
    )
    for key in seen_ids.keys() - expected.keys():
        report.unexpected += 1
        report.problems.append(f"unexpected event for job {key[0]} subscriber {key[1]}: {sorted(types[key])}")
    all_ids = {event_id for ids in seen_ids.values() for event_id in ids}
    for event_id in delivered.keys() - all_ids:
        report.unexpected += 1
        report.problems.append(f"webhook got event {event_id}, which the results queue never had")
    webhook_ids = set(delivered)
    for key, want in expected.items():
        ids = seen_ids.get(key)
        if not ids:
            report.lost += 1
            report.problems.append(f"no event for job {key[0]} subscriber {key[1]}")
            continue
        if len(ids) > 1:
            report.conflicting_ids += 1
        if types[key] != {want}:
            report.wrong += 1
            report.problems.append(f"job {key[0]}: {sorted(types[key])}, expected {want}")
        if not ids & webhook_ids:
            report.lost += 1
            report.problems.append(f"webhook never got the event of job {key[0]} subscriber {key[1]}")


class _HoldingStorage(StorageAccount):
    """The storage account of a drill runner: the first poll message its rounds send for a job is held back."""

    def __init__(self, settings: StorageSettings, options: Any, poll_queue: str, hold: float, held_log: Path) -> None:
        super().__init__(settings, options)
        self.poll_queue = poll_queue
        self.hold = hold
        self.held_log = held_log
        self.held: set[str] = set()

    def queue(self, name: str) -> Any:
        client = super().queue(name)
        return _HoldingQueue(client, self) if name == self.poll_queue else client


class _HoldingQueue:
    def __init__(self, client: Any, storage: _HoldingStorage) -> None:
        self._client = client
        self._storage = storage

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def send_message(self, content: str, **kwargs: Any) -> Any:
        storage = self._storage
        try:
            tracking_ids = set(json.loads(content).get("trackingIds") or ())
        except (ValueError, AttributeError):
            tracking_ids = set()
        if tracking_ids - storage.held:
            storage.held |= tracking_ids
            kwargs["visibility_timeout"] = max(1, round(storage.hold))
            with storage.held_log.open("a") as log_file:
                log_file.write(f"{len(tracking_ids)}\n")
        return self._client.send_message(content, **kwargs)


class _PhaseLog:
    """A runner's record of its phases: one line per entry and exit, appended with one unbuffered write (a few
    microseconds), so the drill sees at once which phase a runner is in, and after a kill which it died in."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._count = 0

    def wrap(self, phase: str, method: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            self._count += 1
            number = self._count
            os.write(self._fd, f"{time.monotonic():.6f} enter {phase} {number}\n".encode())
            try:
                return method(*args, **kwargs)
            finally:
                os.write(self._fd, f"{time.monotonic():.6f} leave {phase} {number}\n".encode())

        return wrapped

    def watch(self, tracker: Tracker) -> Tracker:
        """The tracker with its entry points wrapped (instance attributes: its code and behaviour are unchanged)."""
        tracker.accept_message = self.wrap("intake", tracker.accept_message)  # type: ignore[method-assign]
        tracker.handle_poll_message = self.wrap("poll", tracker.handle_poll_message)  # type: ignore[method-assign]
        tracker.handle_delivery_message = self.wrap(  # type: ignore[method-assign]
            "deliver", tracker.handle_delivery_message)
        return tracker

    def watch_outputs(self, outputs: list[Output]) -> list[Output]:
        """The outputs with their ``publish`` wrapped: a result being published is the publish phase."""
        for output in outputs:
            output.publish = self.wrap("publish", output.publish)  # type: ignore[method-assign]
        return outputs


def _runner(argv: list[str]) -> int:
    """``python -m devtools.drill runner``: ``python -m jobs run`` that records its phases (``--phase-log``) and,
    with ``--hold-poll-queue``, holds back its first poll message per job."""
    from jobs.cli import load_settings
    from jobs.storage.account import LOCAL_HOST

    parser = argparse.ArgumentParser(prog="python -m devtools.drill runner")
    parser.add_argument("--hold-poll-queue", type=float, default=0.0)
    parser.add_argument("--held-log", type=Path)
    parser.add_argument("--phase-log", type=Path)
    parser.add_argument("--until-idle", action="store_true")
    parser.add_argument("--timeout", type=float)
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("JOBS_LOG_LEVEL", "ERROR").upper())
    settings = load_settings()
    storage = StorageAccount(settings.storage, LOCAL_HOST)  # as ``python -m jobs run`` has it
    if args.hold_poll_queue:
        storage = _HoldingStorage(settings.storage, LOCAL_HOST, settings.poll_queue, args.hold_poll_queue,
                                  args.held_log)
    phases = _PhaseLog(args.phase_log) if args.phase_log else None
    outputs = None
    if phases is not None:
        outputs = phases.watch_outputs(outputs_from_settings(settings, storage, lambda: datetime.now(UTC)))
    tracker = Tracker(settings, storage=storage, outputs=outputs)
    if phases is not None:
        tracker = phases.watch(tracker)
    # A killed runner's messages come back after 10 s rather than the host's 30: the drill kills on purpose, and
    # waits for what they held.
    return LocalHost(tracker, visibility_seconds=10).run(until_idle=args.until_idle, timeout=args.timeout)


if __name__ == "__main__" and sys.argv[1:2] == ["runner"]:
    sys.exit(_runner(sys.argv[2:]))
