"""References to Azure Backup resources: vaults, jobs and the operations that name jobs.

Everything that comes from a message is validated here before it can reach a URL: subscription, job and operation
ids are GUIDs, resource group and vault names follow Azure's naming rules, and paths are rebuilt from validated
parts, never copied. Resource ids are case-insensitive, so every reference has a ``key`` that folds case.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

__all__ = [
    "RECOVERY_SERVICES",
    "InvalidReference",
    "JobRef",
    "OperationRef",
    "VaultRef",
    "is_guid",
]

RECOVERY_SERVICES = "Microsoft.RecoveryServices"

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Resource group: 1-90 characters, letters (Unicode), digits, underscores, parentheses, hyphens and periods,
# not ending in a period.
_RESOURCE_GROUP = re.compile(r"^[-\w.()]{1,90}$")
# Recovery Services vault: 2-50 characters, letters, digits and hyphens, starting with a letter.
_VAULT = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,49}$")
# Backup fabric, container and protected item names, e.g. "IaasVMContainer;iaasvmcontainerv2;rg;vm".
_BACKUP_NAME = re.compile(r"^[-\w;.()$:]{1,260}$")

_VAULT_PATH = (
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.RecoveryServices"
    r"/vaults/(?P<vault>[^/]+)"
)
_VAULT_ID = re.compile(rf"^{_VAULT_PATH}/?$", re.IGNORECASE)
_JOB_ID = re.compile(rf"^{_VAULT_PATH}/backupJobs/(?P<job>[^/]+)/?$", re.IGNORECASE)
_ITEM_OPERATION = re.compile(
    rf"^{_VAULT_PATH}/backupFabrics/(?P<fabric>[^/]+)/protectionContainers/(?P<container>[^/]+)"
    r"/protectedItems/(?P<item>[^/]+)/(?P<kind>operationsStatus|operationResults)/(?P<op>[^/]+)/?$",
    re.IGNORECASE,
)
_VAULT_OPERATION = re.compile(
    rf"^{_VAULT_PATH}/(?P<kind>backupOperations|backupOperationResults)/(?P<op>[^/]+)/?$", re.IGNORECASE
)


class InvalidReference(ValueError):
    """A resource id or name that cannot be used. ``str(exc)`` is one sentence naming the field."""


def is_guid(value: object) -> bool:
    return isinstance(value, str) and bool(_GUID.fullmatch(value))


def _short_hash(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def _check_guid(field: str, value: object) -> str:
    if not isinstance(value, str) or not _GUID.fullmatch(value):
        raise InvalidReference(f"{field} must be a GUID, got {_show(value)}")
    return value.lower()


def _check_name(field: str, value: object, pattern: re.Pattern[str], rule: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value) or value.endswith(".") or set(value) <= {"."}:
        raise InvalidReference(f"{field} {_show(value)} is not a valid name: {rule}")
    return value


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class VaultRef:
    """A Recovery Services vault. Names keep the casing first seen; ``key`` folds case."""

    subscription_id: str
    resource_group: str
    name: str

    @classmethod
    def from_parts(cls, subscription_id: object, resource_group: object, name: object) -> VaultRef:
        return cls(
            subscription_id=_check_guid("subscriptionId", subscription_id),
            resource_group=_check_name(
                "resourceGroup",
                resource_group,
                _RESOURCE_GROUP,
                "1-90 letters, digits, underscores, parentheses, hyphens and periods, not ending in a period",
            ),
            name=_check_name(
                "vaultName", name, _VAULT, "2-50 letters, digits and hyphens, starting with a letter"
            ),
        )

    @classmethod
    def parse(cls, resource_id: object, field: str = "vaultId") -> VaultRef:
        if not isinstance(resource_id, str):
            raise InvalidReference(f"{field} must be a string, got {_show(resource_id)}")
        match = _VAULT_ID.fullmatch(resource_id.strip())
        if not match:
            raise InvalidReference(
                f"{field} {_show(resource_id)} is not a Recovery Services vault id "
                "(/subscriptions/<guid>/resourceGroups/<rg>/providers/Microsoft.RecoveryServices/vaults/<name>)"
            )
        return cls.from_parts(match["sub"], match["rg"], match["vault"])

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{RECOVERY_SERVICES}/vaults/{self.name}"
        )

    @property
    def key(self) -> str:
        return self.id.lower()

    def path(self) -> str:
        """The ARM path of the vault, every part URL-quoted."""
        return (
            f"/subscriptions/{quote(self.subscription_id, safe='')}"
            f"/resourceGroups/{quote(self.resource_group, safe='')}"
            f"/providers/{RECOVERY_SERVICES}/vaults/{quote(self.name, safe='')}"
        )


@dataclass(frozen=True)
class JobRef:
    """A backup job in a vault: the unit the tracker follows."""

    vault: VaultRef
    job_id: str

    @classmethod
    def create(cls, vault: VaultRef, job_id: object, field: str = "jobId") -> JobRef:
        return cls(vault=vault, job_id=_check_guid(field, job_id))

    @classmethod
    def parse(cls, resource_id: object, field: str = "jobResourceId") -> JobRef:
        if not isinstance(resource_id, str):
            raise InvalidReference(f"{field} must be a string, got {_show(resource_id)}")
        match = _JOB_ID.fullmatch(resource_id.strip())
        if not match:
            raise InvalidReference(
                f"{field} {_show(resource_id)} is not a backup job id "
                "(/subscriptions/<guid>/resourceGroups/<rg>/providers/Microsoft.RecoveryServices/vaults/<name>"
                "/backupJobs/<guid>)"
            )
        return cls.create(VaultRef.from_parts(match["sub"], match["rg"], match["vault"]), match["job"], field)

    @property
    def id(self) -> str:
        return f"{self.vault.id}/backupJobs/{self.job_id}"

    @property
    def key(self) -> str:
        """The tracking id: the job's GUID plus a short hash of the vault, stable under any casing."""
        return f"{self.job_id}-{_short_hash(self.vault.key)}"

    def path(self) -> str:
        return f"{self.vault.path()}/backupJobs/{quote(self.job_id, safe='')}"


@dataclass(frozen=True)
class OperationRef:
    """An asynchronous operation of a vault that will name the job(s) it started.

    Either a protected item's ``operationsStatus/{id}`` (what ``Azure-AsyncOperation`` of a backup or restore trigger
    points at) or a vault's ``backupOperations/{id}``. A ``Location`` URL (``operationResults``) is turned into the
    matching status URL, since only the status names the jobId.
    """

    vault: VaultRef
    operation_id: str
    fabric: str | None = None
    container: str | None = None
    item: str | None = None

    @classmethod
    def for_vault(cls, vault: VaultRef, operation_id: object, field: str = "operation.id") -> OperationRef:
        return cls(vault=vault, operation_id=_check_guid(field, operation_id))

    @classmethod
    def parse_url(cls, url: object, arm_endpoint: str, field: str = "operationUrl") -> OperationRef:
        """Accepts only URLs on ``arm_endpoint`` that point at an operation of a Recovery Services vault."""
        if not isinstance(url, str) or not url.strip():
            raise InvalidReference(f"{field} must be a non-empty string")
        if len(url) > 4096:
            raise InvalidReference(f"{field} is longer than 4096 characters")
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise InvalidReference(f"{field} is not a valid URL: {exc}") from None
        endpoint = urlsplit(arm_endpoint)
        if (
            parts.scheme.lower() != endpoint.scheme.lower()
            or (parts.hostname or "").lower() != (endpoint.hostname or "").lower()
            or (port or _default_port(parts.scheme)) != (endpoint.port or _default_port(endpoint.scheme))
            or parts.username is not None
            or parts.password is not None
        ):
            raise InvalidReference(
                f"{field} must point at ARM_ENDPOINT ({arm_endpoint}); the tracker sends its Azure token nowhere else"
            )
        path = parts.path
        if "%" in path or "\\" in path or "/../" in path or "/./" in path:
            raise InvalidReference(f"{field} has an encoded or relative path segment")
        if match := _ITEM_OPERATION.fullmatch(path):
            vault = _vault_in(field, match)
            names = {}
            for part in ("fabric", "container", "item"):
                names[part] = _check_name(
                    f"{field} {part} name", match[part], _BACKUP_NAME, "letters, digits and ;._-()$: only"
                )
            return cls(vault=vault, operation_id=_check_guid(f"{field} operation id", match["op"]), **names)
        if match := _VAULT_OPERATION.fullmatch(path):
            vault = _vault_in(field, match)
            return cls.for_vault(vault, match["op"], f"{field} operation id")
        raise InvalidReference(
            f"{field} is not an operation of a Recovery Services vault (expected .../protectedItems/<item>/"
            "operationsStatus/<id>, .../operationResults/<id> or .../vaults/<vault>/backupOperations/<id>)"
        )

    def path(self) -> str:
        """The ARM path of the operation's status (rebuilt from validated parts)."""
        if self.item is None:
            return f"{self.vault.path()}/backupOperations/{quote(self.operation_id, safe='')}"
        return (
            f"{self.vault.path()}/backupFabrics/{quote(self.fabric or '', safe=';')}"
            f"/protectionContainers/{quote(self.container or '', safe=';')}"
            f"/protectedItems/{quote(self.item, safe=';')}/operationsStatus/{quote(self.operation_id, safe='')}"
        )

    @property
    def key(self) -> str:
        """Tracking id of the operation while it has not named its job yet."""
        return f"op-{self.operation_id}-{_short_hash(self.path().lower())}"


def _vault_in(field: str, match: re.Match[str]) -> VaultRef:
    try:
        return VaultRef.from_parts(match["sub"], match["rg"], match["vault"])
    except InvalidReference as exc:
        raise InvalidReference(f"{field} names an invalid vault: {exc}") from None


def _default_port(scheme: str) -> int:
    return 443 if scheme.lower() == "https" else 80
