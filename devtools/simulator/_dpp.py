"""Backup vaults (``Microsoft.DataProtection``): their jobs and operations, as the spec and its examples show them.

Sources (Azure/azure-rest-api-specs, MIT): ``specification/dataprotection/resource-manager/Microsoft.DataProtection/
DataProtection/stable/2025-09-01/dataprotection.json`` and its examples, copied into ``payloads/`` (SOURCES.md):

    GET  .../backupVaults/{v}/backupJobs/{jobId}            Jobs_Get (GetJob.json: type ``.../Backupvaults/backupJobs``)
    GET  .../backupVaults/{v}/backupJobs[?$skipToken=...]   Jobs_List: no $filter (refused), the vault's jobs,
                                                            summaries without extendedInfo (ListJobs.json), nextLink
    POST .../backupVaults/{v}/backupInstances/{bi}/backup   BackupInstances_AdhocBackup: 202, Azure-AsyncOperation at
                                                            the vault's operationStatus, Location at the backup
                                                            instance's operationResults (TriggerBackup.json)
    GET  .../backupVaults/{v}/operationStatus/{id}          OperationStatusBackupVaultContext_Get
    GET  /subscriptions/{s}/providers/Microsoft.DataProtection/locations/{l}/operationStatus/{id}   OperationStatus_Get
    GET  .../operationResults/{id} (vault, backup instance, location)   202 while running, then 200 with
                                                            ``OperationJobExtendedInfo`` ({jobId, objectType})

Choices where the spec leaves room (docs/fidelity.md):
- two status vocabularies (``JobScript.status_words``): ``"spec"`` as the examples write them (``Started``, then
  ``Succeeded``), ``"described"`` as the spec's description does (``InProgress``, then ``Completed``); Failed,
  Cancelled, CompletedWithWarnings and Cancelling are the same in both;
- operation statuses as OperationStatus_Get writes them, ``Inprogress`` while running (the spec's casing in
  azure-cli's dataprotection extension), ``Succeeded``/``Failed``/``Canceled`` after; operation ids are base64 of
  ``<guid>;<guid>`` (the examples' shape); ``jobId`` names the job, or, for a trigger asked so
  (``job_id_form="id"``), gives its full ARM id;
- ``duration`` is a .NET TimeSpan (``00:02:11.9724387``, ListJobs.json); a failed job's ``errorDetails`` is one
  ``UserFacingError`` with ``recommendedAction`` and one nested detail (codes plausible, not verified);
- the data sources (``data_source``): blob, disk, aks, postgresql (flexible server), mysql, adls, and
  postgresql-single (the examples' ``servers/databases``); their ids and names are made up.
"""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote

from . import _arm as arm
from ._formats import dotnet_timespan, dotnet_url_encode, format_timestamp
from ._model import Job, JobScript, TriggeredOperation, Vault, VaultRef, sort_key, template

NAMESPACE = "Microsoft.DataProtection"
GRAPH_TYPE = "microsoft.dataprotection/backupvaults/backupjobs"
# The readme's tags (specification/dataprotection/resource-manager/Microsoft.DataProtection/DataProtection/readme.md):
# every stable and preview api-version of the Backup vault API. Recovery Services versions are refused.
API_VERSIONS = (
    "2026-08-31-preview", "2026-06-01", "2026-04-01-preview", "2026-03-01", "2025-09-01", "2025-07-01", "2025-02-01",
    "2025-01-01", "2024-04-01", "2024-03-01", "2024-02-01-preview", "2023-12-01", "2023-11-01", "2023-08-01-preview",
    "2023-06-01-preview", "2023-05-01", "2023-04-01-preview", "2023-01-01", "2022-12-01", "2022-11-01-preview",
    "2022-10-01-preview", "2022-09-01-preview", "2022-05-01", "2022-04-01", "2022-03-31-preview", "2022-03-01",
    "2022-02-01-preview", "2022-01-01", "2021-12-01-preview", "2021-10-01-preview", "2021-07-01", "2021-06-01-preview",
    "2021-02-01-preview", "2021-01-01",
)
_VERSIONS_LOWER = frozenset(API_VERSIONS)
TRIGGER_API_VERSION = "2025-09-01"  # what TriggerBackup.json's headers carry

_EXAMPLE_JOB = template("GetJob.json")["responses"]["200"]["body"]
JOB_RESOURCE_TYPE = _EXAMPLE_JOB["type"]  # "Microsoft.DataProtection/Backupvaults/backupJobs"
OPERATION_JOB_INFO = template("TriggerBackup.json")["responses"]["200"]["body"]["objectType"]

# data source -> (dataSourceType, provider path of the resource, friendly-name shape)
DATA_SOURCES: dict[str, tuple[str, str]] = {
    "blob": ("Microsoft.Storage/storageAccounts/blobServices", "Microsoft.Storage/storageAccounts/{name}"),
    "disk": ("Microsoft.Compute/disks", "Microsoft.Compute/disks/{name}"),
    "aks": ("Microsoft.ContainerService/managedClusters", "Microsoft.ContainerService/managedClusters/{name}"),
    "postgresql": ("Microsoft.DBforPostgreSQL/flexibleServers", "Microsoft.DBforPostgreSQL/flexibleServers/{name}"),
    "mysql": ("Microsoft.DBforMySQL/flexibleServers", "Microsoft.DBforMySQL/flexibleServers/{name}"),
    "adls": ("Microsoft.Storage/storageAccounts/adlsBlobServices", "Microsoft.Storage/storageAccounts/{name}"),
    "postgresql-single": ("Microsoft.DBforPostgreSQL/servers/databases",
                          "Microsoft.DBforPostgreSQL/servers/{name}-srv/databases/{name}"),
}
STATUS_WORDS = ("spec", "described")

_VAULT_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.dataprotection"
    r"/backupvaults/(?P<vault>[^/]+)/?$",
    re.IGNORECASE,
)
_VAULT_PREFIX = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.dataprotection"
    r"/backupvaults/(?P<vault>[^/]+)(?P<rest>/.*)?$",
    re.IGNORECASE,
)
_LOCATION_PREFIX = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/providers/microsoft\.dataprotection/locations/(?P<location>[^/]+)(?P<rest>/.*)?$",
    re.IGNORECASE,
)
_V = "Microsoft.DataProtection/backupVaults"
_VAULT_ROUTES = [
    ("GET", re.compile(r"^/backupjobs/?$", re.I), "job_list", f"{_V}/backupJobs/read"),
    ("GET", re.compile(r"^/backupjobs/(?P<job>[^/]+)/?$", re.I), "job_get", f"{_V}/backupJobs/read"),
    ("POST", re.compile(r"^/backupinstances/(?P<instance>[^/]+)/backup/?$", re.I), "trigger",
     f"{_V}/backupInstances/backup/action"),
    ("GET", re.compile(r"^/operationstatus/(?P<op>[^/]+)/?$", re.I), "operation_status", f"{_V}/operationStatus/read"),
    ("GET", re.compile(r"^(?:/backupinstances/[^/]+)?/operationresults/(?P<op>[^/]+)/?$", re.I), "operation_result",
     f"{_V}/operationResults/read"),
]
_LOCATION_ROUTES = [
    ("GET", re.compile(r"^/operationstatus/(?P<op>[^/]+)/?$", re.I), "operation_status",
     "Microsoft.DataProtection/locations/operationStatus/read"),
    ("GET", re.compile(r"^/operationresults/(?P<op>[^/]+)/?$", re.I), "operation_result",
     "Microsoft.DataProtection/locations/operationResults/read"),
]


def is_vault_id(vault_id: str) -> bool:
    return bool(_VAULT_ID.match(vault_id.strip()))


def parse_vault(vault_id: str) -> VaultRef:
    match = _VAULT_ID.match(vault_id.strip())
    if not match:
        raise ValueError(f"not a Backup vault id: {vault_id!r}")
    return VaultRef(unquote(match["sub"]), unquote(match["rg"]), unquote(match["vault"]))


def vault_id_of(ref: VaultRef) -> str:
    return f"/subscriptions/{ref.subscription}/resourceGroups/{ref.resource_group}/providers/{_V}/{ref.name}"


@dataclass
class DppRoute:
    kind: str
    subscription: str
    resource_group: str | None
    vault: str | None
    location: str | None
    params: dict[str, str]
    action: str
    method_ok: bool


def match_route(method: str, path: str) -> DppRoute | None:
    """A ``Microsoft.DataProtection`` path the simulator serves (case-insensitive), or None."""
    verb = "GET" if method == "HEAD" else method
    if match := _VAULT_PREFIX.match(path):
        routes, scope = _VAULT_ROUTES, (unquote(match["rg"]), unquote(match["vault"]), None)
    elif match := _LOCATION_PREFIX.match(path):
        routes, scope = _LOCATION_ROUTES, (None, None, unquote(match["location"]).lower())
    else:
        return None
    rest = match["rest"] or ""
    wrong: DppRoute | None = None
    for route_method, pattern, kind, action in routes:
        found = pattern.match(rest)
        if not found:
            continue
        params = {k: unquote(v) for k, v in found.groupdict().items() if v is not None}
        route = DppRoute(kind, unquote(match["sub"]), *scope, params, action, verb == route_method)
        if route.method_ok:
            return route
        wrong = wrong or route
    return wrong or DppRoute("other", unquote(match["sub"]), *scope, {}, f"{_V}/read", True)


def no_registered_provider(value: str, resource_type: str) -> arm.Response:
    return arm.error_response(
        400, "NoRegisteredProviderFound",
        f"No registered resource provider found for location 'westeurope' and API version '{value}' for type "
        f"'{resource_type}'. The supported api-versions are '{', '.join(API_VERSIONS)}'. The supported locations are "
        "'westeurope, northeurope, eastus, westus'.",
    )


def vault_not_found(resource_group: str, vault: str) -> arm.Response:
    return arm.error_response(
        404, "ResourceNotFound",
        f"The Resource 'Microsoft.DataProtection/backupVaults/{vault}' under resource group '{resource_group}' was "
        "not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def job_not_found(job_id: str) -> arm.Response:
    # Plausible Data Protection (DPP) code, not verified against a live 404.
    return arm.error_response(404, "UserErrorJobNotFound", f"Job with id '{job_id}' was not found in the vault.")


def operation_not_found(op_id: str) -> arm.Response:
    return arm.error_response(404, "UserErrorOperationNotFound", f"The operation '{op_id}' was not found.")


def _invalid(message: str) -> arm.Response:
    return arm.error_response(400, "UserErrorInvalidRequestParameter", message)


class DppJob(Job):
    """A Backup vault job: the Recovery Services job's lifecycle, an ``AzureBackupJobResource`` payload."""

    graph_type = GRAPH_TYPE

    def __init__(self, vault: Vault, script: JobScript, job_id: str, seq: int, t0: float, wall0: datetime,
                 seed: int) -> None:
        super().__init__(vault, script, job_id, seq, t0, wall0, seed)
        self.data_source = script.data_source or "disk"
        kind = self.data_source.split("-")[0]
        self.source_name = script.entity_friendly_name or f"{kind}{job_id[:6]}"
        self.instance = f"{self.source_name}-{job_id[:8]}"
        self.source_group = f"{vault.ref.resource_group}-sources"

    def status(self, now: float) -> str:
        status = super().status(now)
        if self.script.status_words == "spec":
            return {"InProgress": "Started", "Completed": "Succeeded"}.get(status, status)
        return status

    @property
    def resource_id(self) -> str:
        # Azure spells the type "Backupvaults" in job ids (GetJob.json, ListJobs.json).
        ref = self.vault.ref
        return (f"/subscriptions/{ref.subscription}/resourceGroups/{ref.resource_group}/providers/"
                f"Microsoft.DataProtection/Backupvaults/{ref.name}/backupJobs/{self.job_id}")

    def _sub_tasks(self, now: float) -> list[dict[str, Any]]:
        words = self.script.status_words
        tasks = []
        for index, (name, (status, _, _, _)) in enumerate(
                zip(("Trigger Backup" if self.operation == "Backup" else "Trigger Restore", "Transfer data"),
                    self._task_states(now) * 2, strict=False), start=1):
            if words == "spec":
                status = {"InProgress": "Started", "Completed": "Succeeded"}.get(status, status)
            tasks.append({"taskId": index, "taskName": name, "taskStatus": status})
        return tasks

    def _error(self) -> dict[str, Any]:
        return {
            "code": "UserErrorSnapshotResourceNotFound" if self.data_source == "disk" else "UserErrorBackupFailed",
            "message": f"The backup of {self.source_name} failed: the data source could not be read.",
            "recommendedAction": ["Check that the data source exists and that the vault's managed identity has the "
                                  "roles it needs, then retry the backup."],
            "details": [{"code": "UserErrorMissingRequiredPermissions",
                         "message": "The vault's managed identity is missing a role on the data source.",
                         "recommendedAction": ["Assign the role and retry."], "isRetryable": True,
                         "isUserError": True}],
            "isRetryable": True,
            "isUserError": True,
            "target": self.source_name,
        }

    def resource(self, now: float, extended: bool) -> dict[str, Any]:
        """The AzureBackupJobResource: with ``extended`` as Jobs_Get returns it, else as a Jobs_List item."""
        status = self.status(now)
        terminal = status not in ("Started", "InProgress", "Cancelling")
        ref = self.vault.ref
        source_type, source_path = DATA_SOURCES[self.data_source]
        source_id = (f"/subscriptions/{ref.subscription}/resourceGroups/{self.source_group}/providers/"
                     + source_path.format(name=self.source_name))
        vault_path = f"/subscriptions/{ref.subscription}/resourceGroups/{ref.resource_group}/providers/{_V}/{ref.name}"
        x = max(0.0, self.elapsed(now))
        props: dict[str, Any] = {
            "activityID": self.traits.activity_id,
            "backupInstanceFriendlyName": self.source_name,
            "backupInstanceId": f"{vault_path}/backupInstances/{self.instance}",
            "dataSourceId": source_id,
            "dataSourceLocation": "westeurope",
            "dataSourceName": self.source_name,
            "dataSourceSetName": self.source_name,
            "dataSourceType": source_type,
            "duration": dotnet_timespan(self.end_at if terminal else x),
        }
        if terminal:
            props["endTime"] = format_timestamp(self.wall0 + timedelta(seconds=self.end_at), self.traits.tick)
        if extended:
            if status == "Failed":
                props["errorDetails"] = [self._error()]
            info: dict[str, Any] = {
                "additionalDetails": {"PolicyRuleName": "BackupDaily", "RetentionTag": "Default",
                                      "TaskId": self.traits.activity_id},
                "subTasks": self._sub_tasks(now),
            }
            if status in ("Succeeded", "Completed", "CompletedWithWarnings"):
                info["dataTransferredInBytes"] = float(self.traits.backup_size_mb * 1024 * 1024)
            props["extendedInfo"] = info
        props.update({
            "isUserTriggered": self.script.user_triggered,
            "operation": self.operation,
            "operationCategory": self.operation,
            "policyId": f"{vault_path}/backupPolicies/{self.data_source}-daily",
            "policyName": f"{self.data_source}-daily",
            "progressEnabled": False,
            "sourceResourceGroup": self.source_group,
            "sourceSubscriptionID": ref.subscription,
            "startTime": self.timestamp(0.0),
            "status": status,
            "subscriptionId": ref.subscription,
            "supportedActions": ["Cancellable"] if not terminal else [""],
            "vaultName": ref.name,
        })
        return {"name": self.job_id, "type": JOB_RESOURCE_TYPE, "id": self.resource_id, "properties": props}


class DppOperation:
    """An ad-hoc backup's operation: ``Inprogress`` for ``delay`` seconds, then ``outcome``; names its job by name or
    by full ARM id."""

    def __init__(self, op_id: str, vault: Vault, t0: float, wall0: datetime, delay: float, outcome: str,
                 job: DppJob | None, job_id_form: str, location: str) -> None:
        self.op_id, self.vault, self.t0, self.wall0 = op_id, vault, t0, wall0
        self.delay, self.outcome, self.job, self.job_id_form, self.location = delay, outcome, job, job_id_form, location

    def status(self, now: float) -> str:
        return "Inprogress" if now - self.t0 < self.delay else self.outcome

    def job_info(self) -> dict[str, Any] | None:
        if self.job is None:
            return None
        job_id = self.job.resource_id if self.job_id_form == "id" else self.job.job_id
        return {"jobId": job_id, "objectType": OPERATION_JOB_INFO}

    def payload(self, now: float, own_id: str) -> dict[str, Any]:
        """``OperationResource`` in GetOperationStatus.json's key order."""
        status = self.status(now)
        body: dict[str, Any] = {"name": self.op_id}
        if status != "Inprogress":
            body["endTime"] = format_timestamp(self.wall0 + timedelta(seconds=self.delay))
        body.update(id=own_id, startTime=format_timestamp(self.wall0, 3), status=status)
        if status == "Succeeded" and (info := self.job_info()) is not None:
            body["properties"] = info
        elif status in ("Failed", "Canceled"):
            body["error"] = {"code": "UserErrorBackupOperationInProgress" if status == "Failed" else
                             "UserErrorOperationCancelled",
                             "message": "Another backup of this backup instance is in progress." if status == "Failed"
                             else "The operation was cancelled."}
        return body


class BackupVaults:
    """The simulator's Backup vaults: jobs (``DppJob``) and ad-hoc backups' operations. Runs under the simulator's
    lock, on its clocks; its jobs are in the simulator's Resource Graph."""

    def __init__(self, sim: Any) -> None:
        self.sim = sim
        self.vaults: dict[tuple[str, str, str], Vault] = {}
        self.operations: dict[str, DppOperation] = {}

    def vault(self, ref: VaultRef) -> Vault:
        vault = self.vaults.get(ref.key)
        if vault is None:
            vault = self.vaults[ref.key] = Vault(ref)
        return vault

    def create_job(self, vault: Vault, script: JobScript, t0: float, wall0: datetime) -> DppJob:
        script.validate()
        if script.data_source is not None and script.data_source not in DATA_SOURCES:
            raise ValueError(f"data_source must be one of {', '.join(DATA_SOURCES)}, not {script.data_source!r}")
        if script.status_words not in STATUS_WORDS:
            raise ValueError(f"status_words must be one of {', '.join(STATUS_WORDS)}, not {script.status_words!r}")
        sim = self.sim
        job_id = script.job_id or str(uuid.uuid4())
        if job_id.lower() in vault.jobs:
            raise ValueError(f"job {job_id} already exists in vault {vault.ref.name}")
        sim._seq += 1
        job = DppJob(vault, script, job_id, sim._seq, t0, wall0, sim.seed)
        vault.jobs[job_id.lower()] = job
        sim._by_name.setdefault(job_id.lower(), []).append(job)
        return job

    def trigger(self, ref: VaultRef, script: JobScript, delay: float, outcome: str, scope: str = "vault",
                job_id_form: str = "name", location: str = "westeurope") -> TriggeredOperation:
        if outcome not in ("Succeeded", "Failed", "Canceled"):
            raise ValueError(f"operation_outcome must be Succeeded, Failed or Canceled, not {outcome!r}")
        if scope not in ("vault", "location") or job_id_form not in ("name", "id"):
            raise ValueError("scope is vault or location; job_id_form is name or id")
        sim = self.sim
        vault = self.vault(ref)
        now, wall = sim.clock(), sim.wall_clock()
        job = self.create_job(vault, script, now + delay, wall + timedelta(seconds=delay)) if outcome == "Succeeded" \
            else None
        first, second = (uuid.UUID(int=sim._rng.getrandbits(128), version=4) for _ in range(2))
        text = f"{first};{second}"
        op_id = base64.b64encode(text.encode("ascii")).decode("ascii")
        self.operations[op_id.lower()] = DppOperation(op_id, vault, now, wall, float(delay), outcome, job, job_id_form,
                                                      location)
        base = sim.base_url
        if scope == "vault":
            status = f"{base}{vault_id_of(ref)}/operationStatus/{op_id}"
            instance = job.instance if job else "instance"
            result = f"{base}{vault_id_of(ref)}/backupInstances/{instance}/operationResults/{op_id}"
        else:
            status = (f"{base}/subscriptions/{ref.subscription}/providers/{NAMESPACE}/locations/{location}"
                      f"/operationStatus/{op_id}")
            result = status.replace("/operationStatus/", "/operationResults/")
        return TriggeredOperation(
            operation_id=op_id,
            azure_async_operation=f"{status}?api-version={TRIGGER_API_VERSION}",
            location=f"{result}?api-version={TRIGGER_API_VERSION}",
            retry_after=sim.operation_retry_after,
            job_id=job.job_id if job else None,
            vault_id=vault_id_of(ref),
        )

    # -- requests -------------------------------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, str], body: bytes, route: DppRoute) -> arm.Response:
        api_version = query.get("api-version")
        if not api_version:
            return arm.missing_api_version()
        if not arm.API_VERSION.match(api_version):
            return arm.invalid_api_version(api_version)
        if api_version.lower() not in _VERSIONS_LOWER:
            return no_registered_provider(api_version, "backupVaults" if route.vault else "locations")
        if route.kind == "other":
            return arm.invalid_resource_type(path, api_version)
        if not route.method_ok:
            return arm.method_not_allowed(method)
        now = self.sim.clock()
        vault: Vault | None = None
        if route.vault is not None:
            ref = VaultRef(route.subscription, route.resource_group or "", route.vault)
            if ref.key in self.sim._denied:
                self.sim._stats["forbidden"] += 1
                return arm.authorization_failed(route.action, path)
            vault = self.vaults.get(ref.key)
            if vault is None:
                return vault_not_found(ref.resource_group, ref.name)
        if route.kind in ("operation_status", "operation_result"):
            return self._operation(route, path, api_version, vault, now)
        assert vault is not None
        if route.kind == "job_get":
            job = vault.jobs.get(route.params["job"].lower())
            if job is None or not job.visible(now):
                return job_not_found(route.params["job"])
            return arm.json_response(200, job.resource(now, extended=True))
        if route.kind == "job_list":
            return self._list(vault, query, api_version, now)
        return self._trigger(vault, route, body)

    def _operation(self, route: DppRoute, path: str, api_version: str, vault: Vault | None,
                   now: float) -> arm.Response:
        op = self.operations.get(route.params["op"].lower())
        if op is None or op.vault.ref.subscription.lower() != route.subscription.lower() or (
                vault is not None and op.vault is not vault) or (
                route.location is not None and route.location != op.location.lower()):
            return operation_not_found(route.params["op"])
        if route.kind == "operation_status":
            own = path if route.location is None else (
                f"/subscriptions/{route.subscription}/providers/{NAMESPACE}/locations/{op.location}/operationStatus/"
                f"{op.op_id}")
            return arm.json_response(200, op.payload(now, own))
        status = op.status(now)
        if status == "Inprogress":
            base = self.sim.base_url + re.split(r"/operationresults/", path, flags=re.IGNORECASE)[0]
            return arm.Response(202, b"", [
                ("Azure-AsyncOperation", f"{base}/operationStatus/{op.op_id}?api-version={api_version}"),
                ("Location", f"{base}/operationResults/{op.op_id}?api-version={api_version}"),
                ("Retry-After", str(self.sim.operation_retry_after)),
            ])
        if status == "Succeeded":
            return arm.json_response(200, op.job_info() or {})
        error = op.payload(now, path)["error"]
        return arm.error_response(400, error["code"], error["message"])

    def _trigger(self, vault: Vault, route: DppRoute, body: bytes) -> arm.Response:
        request = arm.request_body(body)
        if isinstance(request, arm.Response):
            return request
        options = request.get("backupRuleOptions")
        if not isinstance(options, dict) or not isinstance(options.get("ruleName"), str):
            return _invalid("backupRuleOptions.ruleName is required (TriggerBackupRequest).")
        script = JobScript(job_type="AzureStorageJob", data_source="disk")
        op = self.trigger(vault.ref, script, self.sim.default_operation_delay, self.sim.default_operation_outcome)
        return arm.Response(202, b"", [("Azure-AsyncOperation", op.azure_async_operation), ("Location", op.location),
                                       ("Retry-After", str(op.retry_after))])

    def _list(self, vault: Vault, query: dict[str, str], api_version: str, now: float) -> arm.Response:
        """Jobs_List: every visible job of the vault (no $filter), newest first, ``page_size`` a page."""
        if query.get("$filter"):
            return _invalid("Jobs_List of a Backup vault takes no $filter.")
        token = query.get("$skiptoken")
        after: tuple[int, int] | None = None
        if token:
            try:
                first, second = base64.b64decode(token.encode("ascii"), validate=True).decode("ascii").split("_")
                after = (int(first), int(second))
            except (ValueError, UnicodeDecodeError):
                return _invalid("The $skipToken is not valid.")
        jobs = [job for job in vault.in_list_order() if job.visible(now)]
        if after is not None:
            jobs = [job for job in jobs if sort_key(job) > after]
        size = max(1, int(self.sim.page_size))
        page = jobs[:size]
        payload: dict[str, Any] = {"value": [job.resource(now, extended=False) for job in page]}
        if len(jobs) > size:
            skip = base64.b64encode("_".join(map(str, sort_key(page[-1]))).encode("ascii")).decode("ascii")
            payload["nextLink"] = (f"{self.sim.base_url}{vault_id_of(vault.ref)}/backupJobs?api-version={api_version}"
                                   f"&%24skipToken={dotnet_url_encode(skip)}")
        self.sim._stats["list_pages"] += 1
        return arm.json_response(200, payload)
