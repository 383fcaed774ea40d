"""BackupSimulator: state, the ARM request pipeline and the /_simulator/ control API."""

from __future__ import annotations

import bisect
import itertools
import json
import math
import random
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, fields
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from jobs.arm.transport import HandlerTransport, Headers, HttpRequest, HttpResponse, TransportError

from . import _arm as arm
from . import _catalog as cat
from . import _crr as crr
from . import _dpp as dpp
from . import _graph as graph
from . import _resources as resources
from ._faults import FAULT_KINDS, FaultInjector
from ._model import (
    RESTORE_API_VERSION,
    TRIGGER_API_VERSION,
    TRIGGER_RETRY_AFTER,
    FaultConfig,
    FilterError,
    Job,
    JobFilter,
    JobScript,
    Operation,
    TriggeredOperation,
    Vault,
    VaultRef,
    make_skip_token,
    next_link,
    parse_skip_token,
    sort_key,
)
from ._server import SimulatorHTTPServer
from ._throttle import TokenBucket

STAT_KINDS = ("job_get", "job_list", "operation_status", "operation_result", "trigger", "cancel", "resource_graph",
              "vault_list", "control", "other", *crr.KINDS)
UNTHROTTLED_READS_REMAINING = 11999  # what the header says when the token bucket is off
WRITES_REMAINING = 1199
#: Where an in-process simulator says it is (nextLink, operation URLs): a loopback address, as when it listens.
IN_PROCESS_URL = "http://127.0.0.1"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _new_stats() -> dict[str, Any]:
    return {
        "total": 0,
        "arm_requests": 0,
        "by_kind": dict.fromkeys(STAT_KINDS, 0),
        "by_status": {},
        "throttled": 0,
        "retry_after_violations": 0,
        "unauthorized": 0,
        "forbidden": 0,
        "job_gets": {},
        "list_pages": 0,
        "faults": dict.fromkeys((*FAULT_KINDS, "slow"), 0),
    }


class BackupSimulator:
    """A loopback HTTP server that behaves like ARM for the Recovery Services backup-job endpoints.

    ``clock`` drives every lifecycle (job status, operation status, token bucket, Retry-After windows), so a test or
    benchmark may pass a virtual clock. ``wall_clock`` provides the timestamps written into payloads (taken at
    creation, plus elapsed ``clock`` time). ``sleep`` is how a slow answer waits when served in process
    (``in_process``); over HTTP the server thread sleeps.

    Served over HTTP (``start``) or in this process (``in_process``: a ``jobs.arm.transport.HandlerTransport`` that
    hands each request to ``respond``, the same pipeline as the server's).
    """

    def __init__(
        self,
        token: str | None = "sim-token",
        clock: Callable[[], float] = time.monotonic,
        seed: int = 0,
        wall_clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.token = token
        self.clock = clock
        self.wall_clock = wall_clock
        self.sleep = sleep
        self.seed = seed
        self.page_size: int = 20
        #: nextLinks spell out the scheme's default port (``https://management.azure.com:443/...``) when the base
        #: URL has none, as some Azure services write them
        self.next_link_default_port: bool = False
        #: Retry-After (seconds) on trigger 202s and running operationResults; 60 like the real service.
        self.operation_retry_after: int = TRIGGER_RETRY_AFTER
        #: How a job triggered over HTTP (POST .../backup or .../restore) behaves; None = derived from the container.
        self.default_trigger_script: JobScript | None = None
        self.default_operation_delay: float = 1.0
        self.default_operation_outcome: str = "Succeeded"
        #: seconds a job cancelled over HTTP spends in "Cancelling" (unless its script sets cancelling_for)
        self.default_cancelling_for: float = 1.0
        self._lock = threading.RLock()
        self._rng = random.Random(f"sim:{seed}")
        self._vaults: dict[tuple[str, str, str], Vault] = {}
        self._by_name: dict[str, list[Job]] = {}  # the vaults' jobs by lower-case id, for Resource Graph
        self._crr = crr.CrossRegion(self)  # the passive stamp: vaults' jobs in their secondary regions
        self._dpp = dpp.BackupVaults(self)  # Backup vaults (Microsoft.DataProtection)
        self._denied: set[tuple[str, str, str]] = set()
        self._seq = 0
        self._faults = FaultInjector(seed)
        self._buckets: dict[str, TokenBucket] = {}
        self._retry_until: dict[str, float] = {}
        self._stats = _new_stats()
        #: Azure Resource Graph's resources query over these jobs; ``resource_graph.lag_seconds`` behind them.
        self.resource_graph = graph.ResourceGraph(lambda: self.clock())
        self._base_url: str | None = None
        self._server: SimulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle of the server --------------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve in a daemon thread. ``port=0`` picks a free port; read it from ``base_url``."""
        if self._server is not None:
            raise RuntimeError("simulator already started")
        server = SimulatorHTTPServer((host, port), self)
        bound_host, bound_port = server.server_address[:2]
        shown = bound_host if isinstance(bound_host, str) else host
        if ":" in shown:
            shown = f"[{shown}]"
        self._base_url = f"http://{shown}:{bound_port}"
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="backup-simulator", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, drop open connections and release the port. Safe to call twice."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.close_all_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> BackupSimulator:
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: use it as ``ARM_ENDPOINT``."""
        if self._base_url is None:
            raise RuntimeError("simulator not started")
        return self._base_url

    def in_process(self, base_url: str = IN_PROCESS_URL) -> HandlerTransport:
        """Serve in this process instead of over HTTP: the transport to give the ARM client
        (``ArmClient(..., http=sim.in_process())``); ``base_url`` (the ``ARM_ENDPOINT`` to use) is where the
        simulator says it is in nextLinks and operation URLs. Nothing listens on a port."""
        if self._server is not None:
            raise RuntimeError("simulator already serving over HTTP")
        self._base_url = base_url.rstrip("/")
        return HandlerTransport(self.respond)

    def respond(self, request: HttpRequest) -> HttpResponse:
        """One request as the HTTP server answers it (``handle``), without the server: a slow answer waits on
        ``sleep``; a reset raises ``TransportError`` (nothing came back)."""
        split = urlsplit(request.url)
        target = f"{split.path}?{split.query}" if split.query else split.path
        headers = Headers(request.headers)  # as the server's: names without regard to case
        response = self.handle(request.method, target, headers, request.body or b"")
        if response.delay > 0:
            self.sleep(response.delay)
        if response.reset:
            raise TransportError("ConnectionError")
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = ""
        return HttpResponse(response.status, Headers(response.headers), response.body, reason)

    # -- scripting ----------------------------------------------------------------------------------------------

    def _vault(self, ref: VaultRef) -> Vault:
        vault = self._vaults.get(ref.key)
        if vault is None:
            vault = self._vaults[ref.key] = Vault(ref)
        return vault

    def add_vault(self, vault_id: str) -> None:
        """Make a vault exist (with no jobs). Vaults are also created by add_job and trigger_backup."""
        with self._lock:
            if dpp.is_vault_id(vault_id):
                self._dpp.vault(dpp.parse_vault(vault_id))
                return
            self._vault(VaultRef.parse(vault_id))

    def _create_job(self, vault: Vault, script: JobScript, t0: float, wall0: datetime) -> Job:
        script.validate()
        job_id = script.job_id or str(uuid.uuid4())
        if job_id.lower() in vault.jobs:
            raise ValueError(f"job {job_id} already exists in vault {vault.ref.name}")
        self._seq += 1
        job = Job(vault, script, job_id, self._seq, t0, wall0, self.seed)
        vault.jobs[job_id.lower()] = job
        if vault.region is None:  # a vault's own job, not one of the passive stamp's (Resource Graph shows those)
            self._by_name.setdefault(job_id.lower(), []).append(job)
        return job

    def add_job(self, vault_id: str, script: JobScript | None = None, starts_at: float | None = None) -> str:
        """Create a job that follows ``script`` from now, or from ``starts_at`` (a later reading of ``clock``:
        until then Azure does not know it); returns its jobId. A Backup vault's job (``Microsoft.DataProtection``
        vault id) follows the same script (``data_source``, ``status_words``)."""
        backup_vault = dpp.is_vault_id(vault_id)
        ref = dpp.parse_vault(vault_id) if backup_vault else VaultRef.parse(vault_id)
        with self._lock:
            now, wall = self.clock(), self.wall_clock()
            start = now if starts_at is None else float(starts_at)
            wall_start = wall + timedelta(seconds=start - now)
            if backup_vault:
                return self._dpp.create_job(self._dpp.vault(ref), script or JobScript(), start, wall_start).job_id
            job = self._create_job(self._vault(ref), script or JobScript(), start, wall_start)
            return job.job_id

    def trigger_backup(
        self,
        vault_id: str,
        script: JobScript | None = None,
        operation_delay: float = 1.0,
        operation_outcome: str = "Succeeded",
        container: str | None = None,
        protected_item: str | None = None,
        failed_jobs: dict[str, str] | None = None,
        backup_vault_scope: str = "vault",
        job_id_form: str = "name",
    ) -> TriggeredOperation:
        """What a Backups_Trigger POST does: an operation that ends after ``operation_delay`` with
        ``operation_outcome``; on success a job (``script``) that starts when the operation succeeds. A Backup
        vault's (BackupInstances_AdhocBackup): ``backup_vault_scope`` says which operationStatus URL (``vault``,
        ``location``), ``job_id_form`` how the operation names its job (``name``, or its full ARM ``id``)."""
        if dpp.is_vault_id(vault_id):
            script = script or JobScript()
            with self._lock:
                return self._dpp.trigger(dpp.parse_vault(vault_id), script, float(operation_delay),
                                         operation_outcome, backup_vault_scope, job_id_form)
        ref = VaultRef.parse(vault_id)
        script = script or JobScript()
        script.validate()
        if container is None or protected_item is None:
            default_container, default_item = _default_item_names(script, ref, self._rng)
            container = container or default_container
            protected_item = protected_item or default_item
        with self._lock:
            return self._trigger(ref, "Azure", container, protected_item, script, operation_delay, operation_outcome,
                                 failed_jobs=failed_jobs)

    def _trigger(
        self,
        ref: VaultRef,
        fabric: str,
        container: str,
        item: str,
        script: JobScript,
        delay: float,
        outcome: str,
        restore_point: str | None = None,
        failed_jobs: dict[str, str] | None = None,
    ) -> TriggeredOperation:
        if outcome not in cat.OPERATION_OUTCOMES:
            raise ValueError(f"operation_outcome must be one of {', '.join(cat.OPERATION_OUTCOMES)}, not {outcome!r}")
        if not (isinstance(delay, int | float) and delay >= 0 and not math.isnan(delay)):
            raise ValueError(f"operation_delay must be a number >= 0, not {delay!r}")
        vault = self._vault(ref)
        now, wall = self.clock(), self.wall_clock()
        job_id: str | None = None
        if outcome == "Succeeded":
            job = self._create_job(vault, script, now + delay, wall + timedelta(seconds=delay))
            job_id = job.job_id
        op_id = str(uuid.uuid4())
        kind = "restore" if restore_point is not None else "backup"
        item_path = (
            f"{ref.path('Subscriptions')}/backupFabrics/{fabric}/protectionContainers/{container}/protectedItems/{item}"
        )
        vault.operations[op_id] = Operation(
            op_id, vault, now, wall, float(delay), outcome, job_id, kind, item_path, self._rng.randint(1, 9),
            failed_jobs,
        )
        version = RESTORE_API_VERSION if kind == "restore" else TRIGGER_API_VERSION
        base = self._base_url or ""
        return TriggeredOperation(
            operation_id=op_id,
            azure_async_operation=f"{base}{item_path}/operationsStatus/{op_id}?api-version={version}",
            location=f"{base}{item_path}/operationResults/{op_id}?api-version={version}",
            retry_after=self.operation_retry_after,
            job_id=job_id,
            vault_id=ref.vault_id,
        )

    def add_crr_job(self, vault_id: str, region: str, script: JobScript | None = None) -> str:
        """A cross-region restore job of the vault in its secondary ``region`` (read with backupCrrJob), from now."""
        ref = VaultRef.parse(vault_id)
        script = script or JobScript(operation="CrossRegionRestore")
        script.validate()
        with self._lock:
            return self._crr.add_job(ref, region, script)

    def trigger_cross_region_restore(
        self,
        vault_id: str,
        region: str,
        script: JobScript | None = None,
        operation_delay: float = 1.0,
        operation_outcome: str = "Succeeded",
        api_version: str = "2023-01-15",
    ) -> TriggeredOperation:
        """What a CrossRegionRestore_Trigger POST does: a base64-named operation in ``region`` that names its job
        (``properties.jobId``) when it succeeds; the job starts then."""
        ref = VaultRef.parse(vault_id)
        script = script or JobScript(operation="CrossRegionRestore")
        script.validate()
        if operation_outcome not in cat.OPERATION_OUTCOMES:
            raise ValueError(f"operation_outcome must be one of {', '.join(cat.OPERATION_OUTCOMES)}")
        with self._lock:
            return self._crr.trigger(ref, region, script, float(operation_delay), operation_outcome, api_version)

    def crr_job_resource(self, vault_id: str, region: str, job_id: str) -> dict[str, Any]:
        """The JobResource that BackupCrrJobDetails_Get returns right now. KeyError for an unknown job."""
        ref = VaultRef.parse(vault_id)
        with self._lock:
            vault = self._crr.vaults.get((ref.key, region.lower()))
            job = vault.jobs.get(job_id.lower()) if vault else None
            if job is None:
                raise KeyError(job_id)
            return job.resource(self.clock(), extended=True)

    def unprotect_item(self, vault_id: str, container: str, protected_item: str) -> None:
        """Makes a trigger on this item answer Azure's 400 (the item is not protected)."""
        with self._lock:
            self._vault(VaultRef.parse(vault_id)).unprotected_items.add((container.lower(), protected_item.lower()))

    def cancel_job(self, vault_id: str, job_id: str) -> bool:
        """JobCancellations_Trigger without HTTP: True if the running job now goes Cancelling -> Cancelled."""
        ref = _any_vault(vault_id)
        with self._lock:
            vault = self._dpp.vault(ref) if dpp.is_vault_id(vault_id) else self._vault(ref)
            job = vault.jobs.get(job_id.lower())
            if job is None:
                raise KeyError(job_id)
            return job.cancel(self.clock(), job.script.cancelling_for or self.default_cancelling_for)

    def deny_vault(self, vault_id: str) -> None:
        """Every request on that vault answers 403 AuthorizationFailed (the identity lacks Backup Reader)."""
        with self._lock:
            self._denied.add(_any_vault(vault_id).key)

    def allow_vault(self, vault_id: str) -> None:
        """Undo deny_vault."""
        with self._lock:
            self._denied.discard(_any_vault(vault_id).key)

    def set_faults(self, config: FaultConfig) -> None:
        """Replace the fault configuration (also resets the token buckets and the on-cue counter)."""
        config.validate()
        with self._lock:
            self._faults.configure(config)
            self._buckets.clear()

    def faults(self) -> FaultConfig:
        with self._lock:
            return FaultConfig(**asdict(self._faults.config))

    def fail_vault_reads(self, vault_id: str, kind: str = "503") -> None:
        """Every ARM request under ``vault_id`` (job GETs, list pages, operations) answers ``kind`` (a fault kind:
        ``503``, ``500``, ``reset`` ...) until ``heal_vault_reads``; ``set_faults`` leaves it in place."""
        with self._lock:
            self._faults.fail_vault(vault_id, kind)

    def heal_vault_reads(self, vault_id: str) -> None:
        with self._lock:
            self._faults.heal_vault(vault_id)

    def set_list_lag(self, seconds: float) -> None:
        """BackupJobs_List matches its ``$filter`` against each job as it was ``seconds`` ago, and shows it as it is:
        a job that ended within the lag is listed under ``status eq 'InProgress'`` with its terminal status."""
        with self._lock:
            self._faults.list_lag_seconds = max(0.0, float(seconds))

    def stats(self) -> dict[str, Any]:
        """Counters since start or the last reset_stats() (a copy). ``by_status`` keys are ints."""
        with self._lock:
            snapshot = json.loads(json.dumps(self._stats))
            snapshot["by_status"] = {int(k): v for k, v in snapshot["by_status"].items()}
            return snapshot

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = _new_stats()

    def job_resource(self, vault_id: str, job_id: str) -> dict[str, Any]:
        """The JobResource that JobDetails_Get returns right now (with extendedInfo).

        Also returns it while the job is still in its not-found window (where GET would answer 404).
        Raises KeyError for an unknown job.
        """
        ref = _any_vault(vault_id)
        with self._lock:
            vault = (self._dpp.vaults if dpp.is_vault_id(vault_id) else self._vaults).get(ref.key)
            job = vault.jobs.get(job_id.lower()) if vault else None
            if job is None:
                raise KeyError(job_id)
            return job.resource(self.clock(), extended=True)

    def _vault_resources(self) -> list[tuple[str, str]]:
        """(id, type) of every vault, in the order they were made (Recovery Services vaults, then Backup vaults):
        what Resource Manager's resource lists show."""
        return [*((vault.ref.vault_id, "Microsoft.RecoveryServices/vaults") for vault in self._vaults.values()),
                *((dpp.vault_id_of(vault.ref), "Microsoft.DataProtection/backupVaults")
                  for vault in self._dpp.vaults.values())]

    def _all_jobs(self) -> list[Job]:
        return [job for vault in self._vaults.values() for job in vault.jobs.values()]

    def _jobs_named(self, names: set[str] | None) -> list[Job]:
        """The vaults' jobs with one of ``names`` (lower-case job ids), or all of them for None."""
        if names is None:
            return self._all_jobs()
        return [job for name in names for job in self._by_name.get(name, ())]

    def job_ids(self, vault_id: str) -> list[str]:
        """Every job of the vault, newest first (visible or not)."""
        ref = _any_vault(vault_id)
        with self._lock:
            vault = (self._dpp.vaults if dpp.is_vault_id(vault_id) else self._vaults).get(ref.key)
            return [j.job_id for j in sorted(vault.jobs.values(), key=sort_key)] if vault else []

    # -- request pipeline ---------------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> arm.Response:
        """Answer one HTTP request (``target`` = path + query as sent). Used by the HTTP server."""
        try:
            split = urlsplit(target)
            query: dict[str, str] = {}
            for key, value in parse_qsl(split.query, keep_blank_values=True):
                query.setdefault(key.lower(), value)
            path = split.path
            if path.lower().rstrip("/").startswith("/_simulator"):
                with self._lock:
                    self._count("control", None)
                    response = self._control(method, path, query, body)
                    self._count_status(response)
                    return response
            with self._lock:
                return self._arm(method, path, split.query, query, headers, body)
        except Exception:  # a bug in the simulator: say so loudly, answer like ARM would
            traceback.print_exc(file=sys.stderr)
            return arm.error_response(500, "InternalServerError", "The simulator failed to process the request.")

    def _count(self, kind: str, job_key: str | None) -> None:
        stats = self._stats
        stats["total"] += 1
        stats["by_kind"][kind] = stats["by_kind"].get(kind, 0) + 1
        if kind != "control":
            stats["arm_requests"] += 1
        if job_key is not None:
            stats["job_gets"][job_key] = stats["job_gets"].get(job_key, 0) + 1

    def _count_status(self, response: arm.Response) -> None:
        if response.reset:
            return
        by_status = self._stats["by_status"]
        key = str(response.status)
        by_status[key] = by_status.get(key, 0) + 1

    def _arm(
        self,
        method: str,
        path: str,
        raw_query: str,
        query: dict[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> arm.Response:
        route = arm.match_route(method, path)
        crr_route = crr.match_route(method, path) if route is None else None
        dpp_route = dpp.match_route(method, path) if route is None and crr_route is None else None
        if route is not None:
            kind = route.kind
        elif crr_route is not None:
            kind = crr_route.kind
        elif dpp_route is not None:
            kind = dpp_route.kind
        else:
            kind = "resource_graph" if _is_graph(path) else "vault_list" if resources.matches(path) else "other"
        job_key: str | None = None
        if route is not None and kind == "job_get":
            vault = self._vaults.get(VaultRef(route.subscription, route.resource_group, route.vault).key)
            job = vault.jobs.get(route.params["job"].lower()) if vault else None
            job_key = job.job_id if job else route.params["job"].lower()
        elif dpp_route is not None and kind == "job_get":
            key = VaultRef(dpp_route.subscription, dpp_route.resource_group or "", dpp_route.vault or "").key
            dpp_vault = self._dpp.vaults.get(key)
            dpp_job = dpp_vault.jobs.get(dpp_route.params["job"].lower()) if dpp_vault else None
            job_key = dpp_job.job_id if dpp_job else dpp_route.params["job"].lower()
        self._count(kind, job_key)
        request_id = str(uuid.uuid4())
        correlation_id = headers.get("x-ms-correlation-request-id") or str(uuid.uuid4())
        response = self._arm_inner(method, path, raw_query, query, headers, body, route, request_id, correlation_id)
        if not response.reset:
            response.headers.extend(
                [
                    ("Cache-Control", "no-cache"),
                    ("Pragma", "no-cache"),
                    ("Expires", "-1"),
                    ("x-ms-request-id", request_id),
                    ("x-ms-correlation-request-id", correlation_id),
                    ("x-ms-routing-request-id", f"SIMULATOR:{self._wall_stamp()}:{request_id}"),
                    ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
                    ("X-Content-Type-Options", "nosniff"),
                ]
            )
        self._count_status(response)
        return response

    def _wall_stamp(self) -> str:
        return self.wall_clock().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    def _arm_inner(
        self,
        method: str,
        path: str,
        raw_query: str,
        query: dict[str, str],
        headers: Mapping[str, str],
        body: bytes,
        route: arm.Route | None,
        request_id: str,
        correlation_id: str,
    ) -> arm.Response:
        stats = self._stats
        # 1. authentication (ARM front door)
        if self.token is not None:
            authz = headers.get("Authorization")
            if not authz:
                stats["unauthorized"] += 1
                return arm.auth_missing()
            scheme, _, presented = authz.partition(" ")
            if scheme.lower() != "bearer" or presented.strip() != self.token:
                stats["unauthorized"] += 1
                return arm.auth_invalid()
        sub_match = arm.SUBSCRIPTION_PREFIX.match(path)
        subscription = route.subscription if route else (sub_match["sub"] if sub_match else None)
        sub_key = subscription.lower() if subscription else None
        now = self.clock()
        # 2. a request that arrives while a Retry-After we gave this subscription runs is a violation
        if sub_key is not None and now < self._retry_until.get(sub_key, -math.inf):
            stats["retry_after_violations"] += 1
        # 3. ARM read throttling (token bucket per subscription)
        is_read = method in ("GET", "HEAD")
        config = self._faults.config
        remaining: int | None = None
        if is_read and sub_key is not None:
            if config.throttle:
                bucket = self._buckets.get(sub_key)
                if bucket is None:
                    bucket = self._buckets[sub_key] = TokenBucket.full(
                        config.bucket_size, config.refill_per_second, now
                    )
                allowed, remaining, retry_after = bucket.take(now)
                if not allowed:
                    return self._throttle_response(subscription or "", sub_key, retry_after, now)
            else:
                remaining = UNTHROTTLED_READS_REMAINING
        # 4. injected transient faults (and vaults whose every read fails)
        decision = self._faults.draw(path)
        if decision.slow > 0:
            stats["faults"]["slow"] += 1
        fault = decision.kind
        if fault is not None:
            stats["faults"][fault] += 1
        if fault == "429":
            response = self._throttle_response(subscription or "", sub_key, config.retry_after_seconds, now)
        elif fault == "500":
            response = arm.internal_error(subscription or "", request_id, correlation_id, self._wall_stamp())
        elif fault == "503":
            response = arm.service_unavailable()
        elif fault == "reset":
            response = arm.Response(0, reset=True)
        else:
            response = self._resource_provider(method, path, raw_query, query, body, route)
            if fault == "truncated" and response.body:
                response.body = response.body[: max(1, len(response.body) // 2)]
        response.delay = decision.slow
        if remaining is not None and response.status != 429:
            response.headers.append(("x-ms-ratelimit-remaining-subscription-reads", str(remaining)))
        if not is_read and response.status != 429:
            response.headers.append(("x-ms-ratelimit-remaining-subscription-writes", str(WRITES_REMAINING)))
        return response

    def _throttle_response(self, subscription: str, sub_key: str | None, retry_after: int, now: float) -> arm.Response:
        self._stats["throttled"] += 1
        if sub_key is not None:
            self._retry_until[sub_key] = max(self._retry_until.get(sub_key, -math.inf), now + retry_after)
        return arm.throttled(subscription, retry_after)

    def _resource_provider(
        self,
        method: str,
        path: str,
        raw_query: str,
        query: dict[str, str],
        body: bytes,
        route: arm.Route | None,
    ) -> arm.Response:
        if route is None and (crr_route := crr.match_route(method, path)) is not None:
            return self._crr.handle(method, path, query, body, crr_route)  # the passive stamp: its own versions
        if route is None and (dpp_route := dpp.match_route(method, path)) is not None:
            return self._dpp.handle(method, path, query, body, dpp_route)  # Backup vaults: their own versions
        if _is_graph(path):
            return self.resource_graph.handle(method, query, body, self._jobs_named)
        if route is None and resources.matches(path):  # a watch's vaults: Microsoft.Resources' own api-versions
            return resources.handle(method, path, query, self.base_url, self.page_size, self._vault_resources)
        api_version = query.get("api-version")
        if api_version is None or api_version == "":
            return arm.missing_api_version()
        if not arm.API_VERSION.match(api_version):
            return arm.invalid_api_version(api_version)
        if not arm.api_version_supported(api_version):
            return arm.no_registered_provider(api_version)
        if route is None or route.kind == "other":
            return arm.invalid_resource_type(path, api_version)
        if not route.method_ok:
            return arm.method_not_allowed(method)
        ref = VaultRef(route.subscription, route.resource_group, route.vault)
        if ref.key in self._denied:
            self._stats["forbidden"] += 1
            return arm.authorization_failed(route.action, path)
        vault = self._vaults.get(ref.key)
        if vault is None:
            return arm.vault_not_found(route.resource_group, route.vault)
        now = self.clock()
        if route.kind == "job_get":
            job = vault.jobs.get(route.params["job"].lower())
            if job is None or not job.visible(now):
                return arm.job_not_found(route.params["job"])
            if job.internal_error(now):
                return arm.cloud_internal_error()
            return arm.json_response(200, job.resource(now, extended=True))
        if route.kind == "job_list":
            return self._list(vault, query, now)
        if route.kind in ("operation_status", "operation_result"):
            op = vault.operations.get(route.params["op"].lower())
            if op is None:
                return arm.operation_not_found(route.params["op"])
            if route.kind == "operation_status":
                return arm.json_response(200, op.payload(now))
            return self._operation_result(op, path, raw_query, now)
        if route.kind == "trigger":
            return self._http_trigger(vault, route, body)
        if route.kind == "cancel":
            return self._http_cancel(vault, route, now)
        return arm.invalid_resource_type(path, api_version)

    def _list(self, vault: Vault, query: dict[str, str], now: float) -> arm.Response:
        filter_text = query.get("$filter")
        try:
            job_filter = JobFilter.parse(filter_text, self.wall_clock())
        except FilterError as exc:
            return arm.invalid_input(f"Input provided for the call is invalid. {exc}")
        token = query.get("$skiptoken")
        after: tuple[int, int] | None = None
        if token:
            try:
                after = parse_skip_token(token)
            except (ValueError, UnicodeDecodeError):
                return arm.invalid_input("Input provided for the call is invalid. The $skipToken is not valid.")
        # The vault's jobs in list order (newest first), from after the previous page's last; only as many as the
        # page needs (and one more, to know whether there is a next page) are checked against the filter.
        ordered = vault.in_list_order()
        start = 0 if after is None else bisect.bisect_right(ordered, after, key=sort_key)
        size = max(1, int(self.page_size))
        jobs: list[Job] = []
        for job in itertools.islice(ordered, start, None):
            if job.visible(now) and job_filter.matches(job, now - self._faults.list_lag_seconds):
                jobs.append(job)
                if len(jobs) > size:
                    break
        page, more = jobs[:size], len(jobs) > size
        payload: dict[str, Any] = {"value": [j.resource(now, extended=False) for j in page]}
        if more:
            payload["nextLink"] = next_link(self._next_link_base(), vault, filter_text,
                                            make_skip_token(vault, page[-1]))
        self._stats["list_pages"] += 1
        return arm.json_response(200, payload)

    def _next_link_base(self) -> str:
        """Where nextLinks point: ``base_url``, with the scheme's default port spelled out when asked."""
        base = self.base_url
        parts = urlsplit(base)
        if self.next_link_default_port and parts.port is None:
            return f"{parts.scheme}://{parts.hostname}:{443 if parts.scheme == 'https' else 80}{parts.path}"
        return base

    def _operation_result(self, op: Operation, path: str, raw_query: str, now: float) -> arm.Response:
        status = op.status(now)
        if status == "InProgress":
            location = f"{self.base_url}{path}" + (f"?{raw_query}" if raw_query else "")
            headers = [("Location", location), ("Retry-After", str(self.operation_retry_after))]
            if op.item_path is not None:
                version = RESTORE_API_VERSION if op.kind == "restore" else TRIGGER_API_VERSION
                headers.insert(
                    0,
                    (
                        "Azure-AsyncOperation",
                        f"{self.base_url}{op.item_path}/operationsStatus/{op.op_id}?api-version={version}",
                    ),
                )
            return arm.Response(202, b"", headers)
        if status == "Succeeded":
            return arm.Response(204)
        error = op.error()
        return arm.error_response(400, error["code"], error["message"])

    def _http_trigger(self, vault: Vault, route: arm.Route, body: bytes) -> arm.Response:
        restore_point = route.params.get("rp")
        # Backups_Trigger and Restores_Trigger take a required body (BackupRequestResource, RestoreRequestResource,
        # bms.json) whose properties.objectType names the request type; Azure refuses anything else. The codes are
        # those ARM and the Backup RP use for a bad request body; the exact text is not verified.
        request = arm.request_body(body)
        if isinstance(request, arm.Response):
            return request
        properties = request.get("properties")
        object_type = properties.get("objectType") if isinstance(properties, dict) else None
        allowed = arm.RESTORE_REQUEST_TYPES if restore_point is not None else arm.BACKUP_REQUEST_TYPES
        if object_type not in allowed:
            return arm.error_response(
                400, "BMSUserErrorInvalidInput", f"Input provided for the call is invalid: objectType {object_type!r}."
            )
        item_key = (route.params["container"].lower(), route.params["item"].lower())
        if item_key in vault.unprotected_items:
            return arm.error_response(
                400, "BMSUserErrorItemNotProtected", "The item is not protected: configure protection before backup."
            )
        if self.default_trigger_script is not None:
            script = JobScript(**asdict(self.default_trigger_script))
            script.job_id = None
        else:
            script = JobScript(
                job_type=_job_type_for_container(route.params["container"]),
                entity_friendly_name=route.params["item"].split(";")[-1] or None,
            )
        if restore_point is not None:
            script.operation = "Restore"
        op = self._trigger(
            vault.ref,
            route.params["fabric"],
            route.params["container"],
            route.params["item"],
            script,
            self.default_operation_delay,
            self.default_operation_outcome,
            restore_point,
        )
        return arm.Response(
            202,
            b"",
            [
                ("Azure-AsyncOperation", op.azure_async_operation),
                ("Location", op.location),
                ("Retry-After", str(op.retry_after)),
            ],
        )

    def _http_cancel(self, vault: Vault, route: arm.Route, now: float) -> arm.Response:
        job = vault.jobs.get(route.params["job"].lower())
        if job is None or not job.visible(now):
            return arm.job_not_found(route.params["job"])
        ok = job.cancel(now, job.script.cancelling_for or self.default_cancelling_for)
        op_id = str(uuid.uuid4())
        vault.operations[op_id] = Operation(
            op_id, vault, now, self.wall_clock(), 0.0, "Succeeded" if ok else "Failed", None, "cancel", None, 1
        )
        location = (
            f"{self.base_url}{vault.ref.path('Subscriptions')}/backupJobs/{job.job_id}/operationResults/{op_id}"
            f"?api-version={TRIGGER_API_VERSION}"
        )
        return arm.Response(202, b"", [("Location", location), ("Retry-After", str(self.operation_retry_after))])

    # -- /_simulator/ control API -------------------------------------------------------------------------------

    def _control(self, method: str, path: str, query: dict[str, str], body: bytes) -> arm.Response:
        name = path.rstrip("/").lower()[len("/_simulator") :]
        try:
            data = json.loads(body) if body.strip() else {}
            if not isinstance(data, dict):
                raise ValueError("the body must be a JSON object")
            if (method, name) == ("POST", "/jobs"):
                vault_id = _required(data, "vaultId")
                job_id = self.add_job(vault_id, _script_from(data))
                vaults = self._dpp.vaults if dpp.is_vault_id(vault_id) else self._vaults
                vault = vaults[_any_vault(vault_id).key]
                return arm.json_response(201, {"jobId": job_id, "id": vault.jobs[job_id.lower()].resource_id})
            if (method, name) == ("POST", "/crr-jobs"):
                vault_id, region = _required(data, "vaultId"), _required(data, "region")
                script = _script_from({"operation": "CrossRegionRestore", **data})
                job_id = self.add_crr_job(vault_id, region, script)
                return arm.json_response(201, {"jobId": job_id, "region": region.lower()})
            if (method, name) == ("POST", "/crr-trigger"):
                op = self.trigger_cross_region_restore(
                    _required(data, "vaultId"), _required(data, "region"),
                    _script_from({"operation": "CrossRegionRestore", **data}),
                    operation_delay=float(data.get("operationDelaySeconds", 1.0)),
                    operation_outcome=str(data.get("operationOutcome", "Succeeded")),
                )
                return arm.json_response(201, {
                    "operationId": op.operation_id, "azureAsyncOperation": op.azure_async_operation,
                    "location": op.location, "retryAfter": op.retry_after, "jobId": op.job_id,
                    "vaultId": op.vault_id,
                })
            if (method, name) == ("POST", "/vaults"):
                self.add_vault(_required(data, "vaultId"))
                return arm.Response(204)
            if (method, name) == ("POST", "/trigger"):
                op = self.trigger_backup(
                    _required(data, "vaultId"),
                    _script_from(data),
                    operation_delay=float(data.get("operationDelaySeconds", 1.0)),
                    operation_outcome=str(data.get("operationOutcome", "Succeeded")),
                    container=data.get("containerName"),
                    protected_item=data.get("protectedItemName"),
                    failed_jobs=data.get("failedJobsError"),
                    backup_vault_scope=str(data.get("backupVaultScope", "vault")),
                    job_id_form=str(data.get("jobIdForm", "name")),
                )
                return arm.json_response(
                    201,
                    {
                        "operationId": op.operation_id,
                        "azureAsyncOperation": op.azure_async_operation,
                        "location": op.location,
                        "retryAfter": op.retry_after,
                        "jobId": op.job_id,
                        "vaultId": op.vault_id,
                    },
                )
            if (method, name) == ("PUT", "/faults"):
                self.set_faults(_faults_from(data))
                return arm.json_response(200, _camel(asdict(self.faults())))
            if (method, name) == ("GET", "/faults"):
                return arm.json_response(200, _camel(asdict(self.faults())))
            if (method, name) == ("GET", "/stats"):
                return arm.json_response(200, self._stats)
            if (method, name) == ("POST", "/reset-stats"):
                self.reset_stats()
                return arm.Response(204)
            if (method, name) == ("POST", "/deny"):
                self.deny_vault(_required(data, "vaultId"))
                return arm.Response(204)
            if (method, name) == ("POST", "/allow"):
                self.allow_vault(_required(data, "vaultId"))
                return arm.Response(204)
            if (method, name) == ("POST", "/cancel"):
                ok = self.cancel_job(_required(data, "vaultId"), _required(data, "jobId"))
                return arm.json_response(200, {"cancelled": ok})
            if (method, name) == ("PUT", "/settings"):
                if "pageSize" in data:
                    self.page_size = int(data["pageSize"])
                if "operationRetryAfterSeconds" in data:
                    self.operation_retry_after = int(data["operationRetryAfterSeconds"])
                if "resourceGraphLagSeconds" in data:  # a number, or "never": no end is ever shown
                    lag = data["resourceGraphLagSeconds"]
                    self.resource_graph.lag_seconds = math.inf if lag == "never" else float(lag)
                if "resourceGraphRefuseStatus" in data:  # an error status for every query, or null
                    refuse = data["resourceGraphRefuseStatus"]
                    self.resource_graph.refuse_status = None if refuse is None else int(refuse)
                lag = self.resource_graph.lag_seconds
                return arm.json_response(
                    200, {"pageSize": self.page_size, "operationRetryAfterSeconds": self.operation_retry_after,
                          "resourceGraphLagSeconds": "never" if math.isinf(lag) else lag,
                          "resourceGraphRefuseStatus": self.resource_graph.refuse_status}
                )
            if (method, name) == ("GET", "/job"):
                return arm.json_response(200, self.job_resource(query["vaultid"], query["jobid"]))
            if (method, name) in (("GET", ""), ("GET", "/health")):
                return arm.json_response(200, {"status": "ok", "baseUrl": self._base_url})
        except KeyError as exc:
            return arm.error_response(404 if name == "/job" else 400, "InvalidRequest", f"missing or unknown: {exc}")
        except (ValueError, TypeError) as exc:
            return arm.error_response(400, "InvalidRequest", str(exc))
        return arm.error_response(404, "NotFound", f"No control endpoint {method} /_simulator{name}.")


# -- helpers ------------------------------------------------------------------------------------------------------


def _is_graph(path: str) -> bool:
    return path.lower().rstrip("/") == graph.PATH


def _any_vault(vault_id: str) -> VaultRef:
    """A Recovery Services or a Backup vault's id, as the simulator keys its vaults."""
    return dpp.parse_vault(vault_id) if dpp.is_vault_id(vault_id) else VaultRef.parse(vault_id)


def _required(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"'{key}' is required (a string)")
    return value


def _script_from(data: Mapping[str, Any]) -> JobScript:
    script = JobScript()
    mapping = {
        "jobType": "job_type",
        "operation": "operation",
        "finalStatus": "final_status",
        "durationSeconds": "duration",
        "notFoundSeconds": "not_found_for",
        "entityFriendlyName": "entity_friendly_name",
        "jobId": "job_id",
        "cancellingSeconds": "cancelling_for",
        "propertyBag": "property_bag",
        "internalErrorSeconds": "internal_error_for",
        "dataSource": "data_source",
        "statusWords": "status_words",
    }
    for key, attr in mapping.items():
        if key in data and data[key] is not None:
            value = data[key]
            if attr in ("duration", "not_found_for", "cancelling_for", "internal_error_for"):
                value = float(value)
            setattr(script, attr, value)
    script.validate()
    return script


def _camel(values: dict[str, Any]) -> dict[str, Any]:
    return {_to_camel(k): v for k, v in values.items()}


def _to_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _faults_from(data: Mapping[str, Any]) -> FaultConfig:
    known = {_to_camel(f.name): f for f in fields(FaultConfig)}
    known.update({f.name: f for f in fields(FaultConfig)})
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        spec = known.get(key)
        if spec is None:
            raise ValueError(f"unknown fault setting '{key}'")
        default = getattr(FaultConfig(), spec.name)
        kwargs[spec.name] = type(default)(value) if not isinstance(default, bool) else bool(value)
    return FaultConfig(**kwargs)


def _job_type_for_container(container: str) -> str:
    kind = container.split(";")[0].lower()
    if kind == "storagecontainer":
        return "AzureStorageJob"
    if kind in ("vmappcontainer", "sqlagworkloadcontainer"):
        return "AzureWorkloadJob"
    return "AzureIaaSVMJob"


def _default_item_names(script: JobScript, ref: VaultRef, rng: random.Random) -> tuple[str, str]:
    name = script.entity_friendly_name or f"vm-app{rng.randint(1, 99):02d}"
    rg = ref.resource_group.lower()
    if script.job_type == "AzureStorageJob":
        return f"StorageContainer;Storage;{rg};stbackupdata01", f"AzureFileShare;{name}"
    if script.job_type == "AzureWorkloadJob":
        return f"VMAppContainer;Compute;{rg};sqlvm01", f"SQLDataBase;mssqlserver;{name}"
    return f"IaasVMContainer;iaasvmcontainerv2;{rg};{name}", f"VM;iaasvmcontainerv2;{rg};{name}"
