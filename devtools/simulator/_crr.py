"""Cross-region restore (CRR): the passive stamp's endpoints, where a vault's restores to its secondary region run.

Sources (Azure/azure-rest-api-specs, MIT): ``specification/recoveryservicesbackup/resource-manager/
Microsoft.RecoveryServices/RecoveryServicesBackupCrr/stable/2023-01-15/bms.json`` (paths, models) and its
``examples/AzureIaasVm/``, copied verbatim into ``payloads/`` (see ``payloads/SOURCES.md``):

    POST .../locations/{region}/backupCrossRegionRestore       CrossRegionRestore_Trigger: 202 + Azure-AsyncOperation,
                                                               Location, Retry-After
                                                               (TriggerCrossRegionRestore_Post.json)
    GET  .../locations/{region}/backupCrrOperationsStatus/{id}  CrrOperationStatus_Get: OperationStatus
                                                               (GetCrrOperationStatus_Get.json), properties.jobId
    GET  .../locations/{region}/backupCrrOperationResults/{id}  CrrOperationResults_Get: 202 while running, then 200
    POST .../locations/{region}/backupCrrJob                   BackupCrrJobDetails_Get, body CrrJobRequest
                                                               {resourceId, jobName} (GetCrrJob_Post.json)
    POST .../locations/{region}/backupCrrJobs[?$filter&$skipToken] BackupCrrJobs_List, body {resourceId}
                                                               (ListCrrJobs_Post.json), x-ms-odata JobQueryObject

Choices where the spec leaves room (docs/fidelity.md lists them as unverified):
- the operation id is base64 of ``<digits>;<guid>``, as the example's is (``MTMzMDgz...MGYw=``);
- ``Azure-AsyncOperation`` names the regional host in Azure (``https://centraluseuap.management.azure.com/...``);
  the simulator serves every region on its one loopback port, so its URLs name that port, and they carry the
  trigger's own api-version (the example's ``2023-01-15-preview`` is in no spec folder);
- a list's next page is POSTed again with the same body (the spec defines only POST on that path; the generated
  Python SDK re-sends it as a GET);
- the errors for a missing or wrong ``resourceId`` or ``jobName``: 400 ``BMSUserErrorInvalidInput``, 404
  ``ResourceNotFound`` for an unknown vault, as for the vault's own endpoints;
- ARM throttles POSTs in the subscription's write bucket: these reads do not take from the simulated read bucket.
"""

from __future__ import annotations

import base64
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from . import _arm as arm
from ._formats import dotnet_url_encode
from ._model import (
    OPERATION_OBJECT_TYPE,
    FilterError,
    JobFilter,
    JobScript,
    Operation,
    TriggeredOperation,
    Vault,
    VaultRef,
    make_skip_token,
    parse_skip_token,
    sort_key,
)


class SimulatorState(Protocol):
    """What the passive stamp shares with the simulator that serves it (``_simulator.BackupSimulator``): its clocks,
    settings, vaults, denials and counters. A protocol, so this module does not import the simulator back."""

    clock: Callable[[], float]
    wall_clock: Callable[[], datetime]
    page_size: int
    operation_retry_after: int
    default_trigger_script: JobScript | None
    default_operation_delay: float
    default_operation_outcome: str
    _vaults: dict[tuple[str, str, str], Vault]
    _denied: set[tuple[str, str, str]]
    _stats: dict[str, Any]

    @property
    def base_url(self) -> str: ...

    def _vault(self, ref: VaultRef) -> Vault: ...

# The passive stamp's api-versions: stable/2023-01-15 and stable/2026-07-15 of RecoveryServicesBackupCrr;
# 2021-11-15 is what the generated passivestamp Python SDK sends (azure-mgmt-recoveryservicesbackup,
# passivestamp/operations/_backup_crr_jobs_operations.py); 2018-12-20 the first passive-stamp version.
CRR_API_VERSIONS = ("2026-07-15", "2023-01-15", "2021-11-15", "2018-12-20")
_CRR_LOWER = frozenset(CRR_API_VERSIONS)

LOCATION_PREFIX = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/providers/microsoft\.recoveryservices/locations/(?P<region>[^/]+)(?P<rest>/.*)?$",
    re.IGNORECASE,
)
_NS = "Microsoft.RecoveryServices/locations"
_ROUTES = [
    ("POST", re.compile(r"^/backupcrossregionrestore/?$", re.I), "crr_trigger",
     f"{_NS}/backupCrossRegionRestore/action"),
    ("POST", re.compile(r"^/backupcrrjob/?$", re.I), "crr_job_get", f"{_NS}/backupCrrJob/action"),
    ("POST", re.compile(r"^/backupcrrjobs/?$", re.I), "crr_job_list", f"{_NS}/backupCrrJobs/action"),
    ("GET", re.compile(r"^/backupcrroperationsstatus/(?P<op>[^/]+)/?$", re.I), "crr_operation_status",
     f"{_NS}/backupCrrOperationsStatus/read"),
    ("GET", re.compile(r"^/backupcrroperationresults/(?P<op>[^/]+)/?$", re.I), "crr_operation_result",
     f"{_NS}/backupCrrOperationResults/read"),
]
KINDS = tuple(kind for _, _, kind, _ in _ROUTES)
# The resource type ARM names in NoRegisteredProviderFound: the action's type, as the provider registers it.
_RESOURCE_TYPES = {kind: action.rsplit("/", 1)[0].removeprefix("Microsoft.RecoveryServices/").lower()
                   for _, _, kind, action in _ROUTES}


@dataclass
class CrrRoute:
    kind: str
    subscription: str
    region: str
    params: dict[str, str]
    action: str
    method_ok: bool


def match_route(method: str, path: str) -> CrrRoute | None:
    """A passive-stamp path (case-insensitive, as ARM is), or None."""
    from urllib.parse import unquote

    match = LOCATION_PREFIX.match(path)
    if not match:
        return None
    rest = match["rest"] or ""
    sub, region = unquote(match["sub"]), unquote(match["region"]).lower()
    wrong: CrrRoute | None = None
    for route_method, pattern, kind, action in _ROUTES:
        found = pattern.match(rest)
        if not found:
            continue
        params = {k: unquote(v) for k, v in found.groupdict().items() if v is not None}
        if method == route_method or (method == "HEAD" and route_method == "GET"):
            return CrrRoute(kind, sub, region, params, action, True)
        wrong = wrong or CrrRoute(kind, sub, region, params, action, False)
    return wrong or CrrRoute("other", sub, region, {}, f"{_NS}/read", True)


def no_registered_provider(value: str, resource_type: str) -> arm.Response:
    """ARM's 400 for an api-version the passive stamp does not register, with its real list."""
    return arm.error_response(
        400,
        "NoRegisteredProviderFound",
        f"No registered resource provider found for location 'westeurope' and API version '{value}' for type "
        f"'{resource_type}'. The supported api-versions are '{', '.join(CRR_API_VERSIONS)}'. The supported "
        "locations are 'westeurope, northeurope, eastus, westus'.",
    )


def new_operation_id(rng: random.Random) -> str:
    """Base64 of ``<digits>;<guid>``, the shape of the example's id (TriggerCrossRegionRestore_Post.json)."""
    text = f"{rng.randint(10**18, 10**19 - 1)};{uuid.UUID(int=rng.getrandbits(128), version=4)}"
    return base64.b64encode(text.encode("ascii")).decode("ascii")


def _invalid(message: str) -> arm.Response:
    return arm.invalid_input(f"Input provided for the call is invalid. {message}")


class CrossRegion:
    """The simulator's passive stamp: each (vault, secondary region) has its own jobs and operations."""

    def __init__(self, sim: SimulatorState) -> None:
        self.sim = sim
        self.vaults: dict[tuple[tuple[str, str, str], str], Vault] = {}

    def vault(self, ref: VaultRef, region: str) -> Vault:
        key = (ref.key, region.lower())
        vault = self.vaults.get(key)
        if vault is None:
            vault = self.vaults[key] = Vault(ref, region=region.lower())
        return vault

    def location_path(self, subscription: str, region: str) -> str:
        # Azure writes these paths in lower case (GetCrrOperationStatus_Get.json, the trigger's headers).
        return f"/subscriptions/{subscription}/providers/microsoft.recoveryservices/locations/{region}"

    # -- scripting (under the simulator's lock) -------------------------------------------------------------------
    def add_job(self, ref: VaultRef, region: str, script: JobScript) -> str:
        if script.operation == "Backup":
            script.operation = "CrossRegionRestore"
        sim = self.sim
        self.sim._vault(ref)  # the vault itself exists in its primary region
        job = sim._create_job(self.vault(ref, region), script, sim.clock(), sim.wall_clock())
        return job.job_id

    def trigger(
        self, ref: VaultRef, region: str, script: JobScript, delay: float, outcome: str, api_version: str
    ) -> TriggeredOperation:
        from datetime import timedelta

        sim = self.sim
        sim._vault(ref)
        vault = self.vault(ref, region)
        now, wall = sim.clock(), sim.wall_clock()
        if script.operation == "Backup":
            script.operation = "CrossRegionRestore"
        job_id: str | None = None
        if outcome == "Succeeded":
            job_id = sim._create_job(vault, script, now + delay, wall + timedelta(seconds=delay)).job_id
        op_id = new_operation_id(sim._rng)
        vault.operations[op_id] = Operation(op_id, vault, now, wall, float(delay), outcome, job_id, "restore", None,
                                            sim._rng.randint(1, 9))
        base = f"{sim.base_url}{self.location_path(ref.subscription, region)}"
        return TriggeredOperation(
            operation_id=op_id,
            azure_async_operation=f"{base}/backupCrrOperationsStatus/{op_id}?api-version={api_version}",
            location=f"{base}/backupCrrOperationResults/{op_id}?api-version={api_version}",
            retry_after=sim.operation_retry_after,
            job_id=job_id,
            vault_id=ref.vault_id,
        )

    # -- requests -------------------------------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, str], body: bytes, route: CrrRoute) -> arm.Response:
        api_version = query.get("api-version")
        if not api_version:
            return arm.missing_api_version()
        if not arm.API_VERSION.match(api_version):
            return arm.invalid_api_version(api_version)
        resource_type = _RESOURCE_TYPES.get(route.kind, "locations")
        if api_version.lower() not in _CRR_LOWER:
            return no_registered_provider(api_version, resource_type)
        if route.kind == "other":
            return arm.invalid_resource_type(path, api_version)
        if not route.method_ok:
            return arm.method_not_allowed(method)
        now = self.sim.clock()
        if route.kind in ("crr_operation_status", "crr_operation_result"):
            return self._operation(route, path, api_version, now)
        request = arm.request_body(body)
        if isinstance(request, arm.Response):
            return request
        if route.kind == "crr_trigger":
            return self._trigger(route, request, api_version)
        vault = self._vault_of(route, request)
        if isinstance(vault, arm.Response):
            return vault
        if route.kind == "crr_job_get":
            job_name = request.get("jobName")
            if not isinstance(job_name, str) or not job_name.strip():
                return _invalid("jobName is required: the name (id) of the cross-region restore job.")
            job = vault.jobs.get(job_name.lower()) if vault else None
            if job is None or not job.visible(now):
                return arm.job_not_found(job_name)
            if job.internal_error(now):
                return arm.cloud_internal_error()
            return arm.json_response(200, job.resource(now, extended=True))
        return self._list(route, vault, query, api_version, now)

    def _vault_of(self, route: CrrRoute, request: dict[str, Any]) -> Vault | arm.Response | None:
        """The CrrJobRequest's ``resourceId``: a vault of the path's subscription that exists (None: no CRR jobs)."""
        resource_id = request.get("resourceId")
        if not isinstance(resource_id, str) or not resource_id.strip():
            return _invalid("resourceId is required: the resource id of the Recovery Services vault.")
        try:
            ref = VaultRef.parse(resource_id)
        except ValueError:
            return _invalid(f"resourceId '{resource_id}' is not a Recovery Services vault id.")
        if ref.subscription.lower() != route.subscription.lower():
            return _invalid(f"resourceId '{resource_id}' is not in subscription '{route.subscription}'.")
        if ref.key in self.sim._denied:
            self.sim._stats["forbidden"] += 1
            return arm.authorization_failed(route.action, resource_id)
        if ref.key not in self.sim._vaults:
            return arm.vault_not_found(ref.resource_group, ref.name)
        return self.vaults.get((ref.key, route.region))

    def _find_operation(self, route: CrrRoute) -> Operation | None:
        for (ref_key, region), vault in self.vaults.items():
            if region == route.region and ref_key[0] == route.subscription.lower():
                op = vault.operations.get(route.params["op"])
                if op is not None:
                    return op
        return None

    def _operation(self, route: CrrRoute, path: str, api_version: str, now: float) -> arm.Response:
        op = self._find_operation(route)
        if op is None:
            return arm.operation_not_found(route.params["op"])
        base = f"{self.sim.base_url}{self.location_path(route.subscription, route.region)}"
        if route.kind == "crr_operation_status":
            payload = op.payload(now)
            # GetCrrOperationStatus_Get.json: "id" is the status's own path, "name" the operation id.
            location = self.location_path(route.subscription, route.region)
            payload["id"] = f"{location}/backupCrrOperationsStatus/{op.op_id}"
            if "properties" in payload:
                payload["properties"] = {"objectType": OPERATION_OBJECT_TYPE, "jobId": op.job_id}
            return arm.json_response(200, payload)
        status = op.status(now)
        if status == "InProgress":  # GetCrrOperationResults_Get.json: 202 with both headers and Retry-After
            return arm.Response(202, b"", [
                ("Azure-AsyncOperation", f"{base}/backupCrrOperationsStatus/{op.op_id}?api-version={api_version}"),
                ("Location", f"{base}/backupCrrOperationResults/{op.op_id}?api-version={api_version}"),
                ("Retry-After", str(self.sim.operation_retry_after)),
            ])
        if status == "Succeeded":
            return arm.Response(200)
        error = op.error()
        return arm.error_response(400, error["code"], error["message"])

    def _trigger(self, route: CrrRoute, request: dict[str, Any], api_version: str) -> arm.Response:
        # CrossRegionRestoreRequest: crossRegionRestoreAccessDetails (CrrAccessToken, objectType
        # WorkloadCrrAccessToken) names the vault by resourceGroupName and resourceName; restoreRequest is a
        # RestoreRequest (objectType). The service's exact error texts are not verified.
        access = request.get("crossRegionRestoreAccessDetails")
        restore = request.get("restoreRequest")
        if not isinstance(access, dict) or not isinstance(restore, dict):
            return _invalid("crossRegionRestoreAccessDetails and restoreRequest are required.")
        if access.get("objectType") != "WorkloadCrrAccessToken":
            return _invalid(f"crossRegionRestoreAccessDetails.objectType {access.get('objectType')!r}.")
        if restore.get("objectType") not in arm.RESTORE_REQUEST_TYPES:
            return _invalid(f"restoreRequest.objectType {restore.get('objectType')!r}.")
        rg, name = access.get("resourceGroupName"), access.get("resourceName")
        if not isinstance(rg, str) or not isinstance(name, str) or not rg or not name:
            return _invalid("crossRegionRestoreAccessDetails.resourceGroupName and resourceName name the vault.")
        ref = VaultRef(route.subscription, rg, name)
        if ref.key not in self.sim._vaults:
            return arm.vault_not_found(rg, name)
        script = JobScript(operation="CrossRegionRestore")
        if self.sim.default_trigger_script is not None:
            from dataclasses import asdict

            script = JobScript(**asdict(self.sim.default_trigger_script))
            script.job_id = None
            script.operation = "CrossRegionRestore"
        op = self.trigger(ref, route.region, script, self.sim.default_operation_delay,
                          self.sim.default_operation_outcome, api_version)
        return arm.Response(202, b"", [
            ("Azure-AsyncOperation", op.azure_async_operation),
            ("Location", op.location),
            ("Retry-After", str(op.retry_after)),
        ])

    def _list(
        self, route: CrrRoute, vault: Vault | None, query: dict[str, str], api_version: str, now: float
    ) -> arm.Response:
        """BackupCrrJobs_List: the same JobQueryObject ``$filter`` rules and paging as BackupJobs_List."""
        filter_text = query.get("$filter")
        try:
            job_filter = JobFilter.parse(filter_text, self.sim.wall_clock())
        except FilterError as exc:
            return _invalid(str(exc))
        token = query.get("$skiptoken")
        after: tuple[int, int] | None = None
        if token:
            try:
                after = parse_skip_token(token)
            except (ValueError, UnicodeDecodeError):
                return _invalid("The $skipToken is not valid.")
        jobs = sorted((j for j in (vault.jobs.values() if vault else ()) if j.visible(now)
                       and job_filter.matches(j, now)), key=sort_key)
        if after is not None:
            jobs = [j for j in jobs if sort_key(j) > after]
        size = max(1, int(self.sim.page_size))
        page, more = jobs[:size], len(jobs) > size
        payload: dict[str, Any] = {"value": [j.resource(now, extended=False) for j in page]}
        if more and vault is not None:
            query_text = f"api-version={api_version}"
            if filter_text:
                query_text += "&%24filter=" + dotnet_url_encode(filter_text)
            query_text += "&%24skiptoken=" + dotnet_url_encode(make_skip_token(vault, page[-1]))
            payload["nextLink"] = (f"{self.sim.base_url}/subscriptions/{route.subscription}/providers/"
                                   f"Microsoft.RecoveryServices/locations/{route.region}/backupCrrJobs?{query_text}")
        self.sim._stats["list_pages"] += 1
        return arm.json_response(200, payload)
