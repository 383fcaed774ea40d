"""ARM plumbing: error bodies, route table, request/response values."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$", re.IGNORECASE)

# "The client ... with object id ..." in 403 bodies and "actor ..." in 429 bodies: the simulated principal.
SIM_PRINCIPAL = "3f0c2d7a-5b8e-4c1d-9a6f-2e4b7c8d9a01"


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0  # seconds to wait before answering ("slow" fault)
    reset: bool = False  # close the connection without answering ("reset" fault)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def json_response(status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return Response(status, body, [("Content-Type", "application/json; charset=utf-8"), *(headers or [])])


def error_response(status: int, code: str, message: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return json_response(status, {"error": {"code": code, "message": message}}, headers)


def request_body(body: bytes) -> dict[str, Any] | Response:
    """A request's JSON object body, or ARM's 400 for an empty, unreadable or non-object one (the codes ARM uses for
    a bad request body; the exact text is not verified)."""
    if not body.strip():
        return error_response(400, "InvalidRequestContent", "The request content was invalid: it is empty.")
    try:
        request = json.loads(body)
    except ValueError:
        return error_response(
            400, "InvalidRequestContent", "The request content was invalid and could not be deserialized."
        )
    if not isinstance(request, dict):
        return error_response(400, "InvalidRequestContent", "The request content must be a JSON object.")
    return request


def missing_api_version() -> Response:
    return error_response(
        400,
        "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all requests.",
    )


# api-versions of the Recovery Services backup surface (the stable/ and preview/ folders of
# specification/recoveryservicesbackup/resource-manager/Microsoft.RecoveryServices in Azure/azure-rest-api-specs,
# plus the versions the real examples put in their URLs: 2016-12-01 TriggerBackup_Post.json, 2017-07-01
# ListJobsWithStartTimeAndEndTimeFilters.json's nextLink, 2020-09-01
# TriggerRestore_RestoreDisks_IaasVMRestoreRequest.json).
# Not every folder was checked one by one: see docs/fidelity.md.
SUPPORTED_API_VERSIONS = (
    "2026-11-01", "2026-10-01", "2026-08-01", "2026-05-01", "2026-02-01", "2026-01-01", "2025-08-01", "2025-02-01",
    "2025-01-01", "2024-10-01", "2024-07-30-preview", "2024-04-01", "2024-02-01", "2024-01-01", "2023-08-01",
    "2023-06-01", "2023-04-01", "2023-02-01", "2023-01-01", "2022-10-01", "2022-09-01-preview", "2022-09-30-preview",
    "2022-06-01-preview", "2022-04-01", "2022-03-01", "2022-02-01", "2022-01-01", "2021-12-01", "2021-11-15",
    "2021-10-01", "2021-08-01", "2021-07-01", "2021-06-01", "2021-04-01", "2021-03-01", "2021-02-10",
    "2021-02-01", "2021-01-01", "2020-12-01", "2020-10-01", "2020-09-01", "2020-02-02", "2019-06-15",
    "2019-05-13", "2017-07-01", "2016-12-01", "2016-08-10", "2016-06-01",
)
_SUPPORTED_LOWER = frozenset(v.lower() for v in SUPPORTED_API_VERSIONS)


def api_version_supported(value: str) -> bool:
    return value.lower() in _SUPPORTED_LOWER


def no_registered_provider(value: str, resource_type: str = "vaults") -> Response:
    """ARM's answer to a well-formed api-version the resource provider does not register for the type."""
    return error_response(
        400,
        "NoRegisteredProviderFound",
        f"No registered resource provider found for location 'westeurope' and API version '{value}' for type "
        f"'{resource_type}'. The supported api-versions are '{', '.join(SUPPORTED_API_VERSIONS)}'. The supported "
        "locations are 'westeurope, northeurope, eastus, westus'.",
    )


def cloud_internal_error() -> Response:
    """The 500 a fresh job's GET may answer before it is visible (observed; body shape as ARM's errors)."""
    return error_response(500, "CloudInternalError", "An internal error occurred. Please retry the operation.")


# BackupRequest and RestoreRequest ``objectType`` values of bms.json (2026-11-01) that a trigger may carry.
BACKUP_REQUEST_TYPES = frozenset({"AzureFileShareBackupRequest", "AzureWorkloadBackupRequest", "IaasVMBackupRequest"})
RESTORE_REQUEST_TYPES = frozenset({
    "AzureFileShareRestoreRequest", "AzureWorkloadPointInTimeRestoreRequest", "AzureWorkloadRestoreRequest",
    "AzureWorkloadSAPHanaPointInTimeRestoreRequest", "AzureWorkloadSAPHanaRestoreRequest",
    "AzureWorkloadSAPHanaRestoreWithRehydrateRequest", "AzureWorkloadSQLPointInTimeRestoreRequest",
    "AzureWorkloadSQLRestoreRequest", "AzureWorkloadSQLRestoreWithRehydrateRequest", "IaasVMRestoreRequest",
    "IaasVMRestoreWithRehydrationRequest", "AzureWorkloadSAPAsePointInTimeRestoreRequest",
    "AzureWorkloadSAPAseRestoreRequest", "AzureWorkloadSQLPointInTimeRestoreWithRehydrateRequest",
    "AzureWorkloadSAPHanaPointInTimeRestoreWithRehydrateRequest",
})


def invalid_api_version(value: str) -> Response:
    return error_response(
        400,
        "InvalidApiVersionParameter",
        f"The api-version '{value}' is invalid. The supported versions are '2026-11-01,2026-10-01,2026-08-01,"
        "2026-05-01,2026-02-01,2026-01-01,2025-08-01,2025-02-01,2024-10-01,2024-04-01,2023-06-01,2021-12-01,"
        "2019-05-13,2017-07-01,2016-12-01,2016-06-01'.",
    )


def auth_missing() -> Response:
    return error_response(
        401,
        "AuthenticationFailed",
        "Authentication failed. The 'Authorization' header is missing.",
        [
            (
                "WWW-Authenticate",
                'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token", '
                "error_description=\"The authentication failed because of missing 'Authorization' header.\"",
            )
        ],
    )


def auth_invalid() -> Response:
    return error_response(
        401,
        "InvalidAuthenticationToken",
        "The access token is invalid.",
        [
            (
                "WWW-Authenticate",
                'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token", '
                'error_description="The access token is invalid."',
            )
        ],
    )


def throttled(subscription: str, retry_after: int) -> Response:
    return error_response(
        429,
        "SubscriptionRequestsThrottled",
        f"Number of 'read' requests for subscription '{subscription}' actor '{SIM_PRINCIPAL}' exceeded. Please try "
        f"again after '{retry_after}' seconds after the additional tokens are available. Refer to "
        "https://aka.ms/arm-throttling",
        [("Retry-After", str(retry_after))],
    )


def internal_error(subscription: str, request_id: str, correlation_id: str, when: str) -> Response:
    return error_response(
        500,
        "InternalServerError",
        f"Encountered internal server error. Diagnostic information: timestamp '{when}', subscription id "
        f"'{subscription}', tracking id '{request_id}', request correlation id '{correlation_id}'.",
    )


def service_unavailable() -> Response:
    return error_response(
        503,
        "ServiceUnavailable",
        "The server is currently unable to handle the request due to a temporary overload or maintenance. "
        "Please retry the request.",
    )


def authorization_failed(action: str, scope: str) -> Response:
    return error_response(
        403,
        "AuthorizationFailed",
        f"The client '{SIM_PRINCIPAL}' with object id '{SIM_PRINCIPAL}' does not have authorization to perform "
        f"action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please "
        "refresh your credentials.",
    )


def vault_not_found(resource_group: str, vault: str) -> Response:
    return error_response(
        404,
        "ResourceNotFound",
        f"The Resource 'Microsoft.RecoveryServices/vaults/{vault}' under resource group '{resource_group}' was not "
        "found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def job_not_found(job_id: str) -> Response:
    # Plausible Recovery Services (BMS) error code, NOT verified against a live 404 for an unknown/young job.
    return error_response(
        404,
        "BMSUserErrorJobNotFound",
        f"The job '{job_id}' was not found. A job can take a few minutes to appear after the operation that created "
        "it; retry later.",
    )


def operation_not_found(op_id: str) -> Response:
    # Plausible, not verified.
    return error_response(404, "BMSUserErrorOperationNotFound", f"The operation '{op_id}' was not found.")


def invalid_input(message: str) -> Response:
    # Plausible Backup RP code for a rejected $filter / $skipToken (not verified).
    return error_response(400, "BMSUserErrorInvalidInput", message)


def invalid_resource_type(path: str, api_version: str) -> Response:
    return error_response(
        404,
        "InvalidResourceType",
        f"The resource type could not be found in the namespace 'Microsoft.RecoveryServices' for api version "
        f"'{api_version}' (path '{path}').",
    )


def method_not_allowed(method: str) -> Response:
    return error_response(
        405, "HttpMethodNotAllowed", f"The HTTP method '{method}' is not supported for this resource."
    )


# -- routes -------------------------------------------------------------------------------------------------------

VAULT_PREFIX = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.recoveryservices"
    r"/vaults/(?P<vault>[^/]+)(?P<rest>/.*)?$",
    re.IGNORECASE,
)
SUBSCRIPTION_PREFIX = re.compile(r"^/subscriptions/(?P<sub>[^/]+)", re.IGNORECASE)
_ITEM = r"/backupfabrics/(?P<fabric>[^/]+)/protectioncontainers/(?P<container>[^/]+)/protecteditems/(?P<item>[^/]+)"

# (method, pattern on the part after /vaults/{name}, kind, action for 403 bodies)
_ROUTES: list[tuple[str, re.Pattern[str], str, str]] = [
    ("GET", r"^/backupjobs/?$", "job_list", "Microsoft.RecoveryServices/vaults/backupJobs/read"),
    ("GET", r"^/backupjobs/(?P<job>[^/]+)/?$", "job_get", "Microsoft.RecoveryServices/vaults/backupJobs/read"),
    (
        "POST",
        r"^/backupjobs/(?P<job>[^/]+)/cancel$",
        "cancel",
        "Microsoft.RecoveryServices/vaults/backupJobs/cancel/action",
    ),
    (
        "GET",
        r"^/backupjobs/(?P<job>[^/]+)/operationresults/(?P<op>[^/]+)$",
        "operation_result",
        "Microsoft.RecoveryServices/vaults/backupJobs/operationResults/read",
    ),
    (
        "GET",
        r"^/backupjobs/(?P<job>[^/]+)/operationsstatus/(?P<op>[^/]+)$",
        "operation_status",
        "Microsoft.RecoveryServices/vaults/backupJobs/operationsStatus/read",
    ),
    (
        "GET",
        r"^/backupoperations/(?P<op>[^/]+)$",
        "operation_status",
        "Microsoft.RecoveryServices/vaults/backupOperations/read",
    ),
    (
        "GET",
        r"^/backupoperationresults/(?P<op>[^/]+)$",
        "operation_result",
        "Microsoft.RecoveryServices/vaults/backupOperationResults/read",
    ),
    (
        "POST",
        _ITEM + r"/backup$",
        "trigger",
        "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems/backup/action",
    ),
    (
        "POST",
        _ITEM + r"/recoverypoints/(?P<rp>[^/]+)/restore$",
        "trigger",
        "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems/recoveryPoints/restore/action",
    ),
    (
        "GET",
        _ITEM + r"/operationsstatus/(?P<op>[^/]+)$",
        "operation_status",
        "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems/operationsStatus/read",
    ),
    (
        "GET",
        _ITEM + r"/operationresults/(?P<op>[^/]+)$",
        "operation_result",
        "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems/operationResults/read",
    ),
]
ROUTES = [(m, re.compile(p, re.IGNORECASE), k, a) for m, p, k, a in _ROUTES]


@dataclass
class Route:
    kind: str
    subscription: str
    resource_group: str
    vault: str
    params: dict[str, str]
    action: str
    method_ok: bool


def match_route(method: str, path: str) -> Route | None:
    """Match an ARM path (case-insensitive, as ARM is). None = not a Recovery Services vault path we serve."""
    vault_match = VAULT_PREFIX.match(path)
    if not vault_match:
        return None
    rest = vault_match["rest"] or ""
    sub, rg, vault = (unquote(vault_match[g]) for g in ("sub", "rg", "vault"))
    wrong_method: Route | None = None
    for route_method, pattern, kind, action in ROUTES:
        match = pattern.match(rest)
        if not match:
            continue
        params = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
        verb = "GET" if method == "HEAD" else method
        if verb == route_method:
            return Route(kind, sub, rg, vault, params, action, True)
        wrong_method = wrong_method or Route(kind, sub, rg, vault, params, action, False)
    return wrong_method or Route("other", sub, rg, vault, {}, "Microsoft.RecoveryServices/vaults/read", True)
