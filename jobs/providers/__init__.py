"""Vault kinds behind one seam (``base.Provider``), and the registry that picks one for a reference.

Every caller goes through the functions here and never names a provider: an id is parsed by the provider whose
namespace it names (``/providers/<Namespace>/``), a stored vault id finds its provider the same way. Shape 2 of
the intake (``subscriptionId``, ``resourceGroup``, ``vaultName``) names no namespace: it means the default
provider, Recovery Services. A new vault kind is one more module in ``PROVIDERS``.
"""

from __future__ import annotations

import re
from typing import Any

from jobs.domain.references import JobRef, OperationRef, VaultRef
from jobs.providers.base import Provider
from jobs.providers.recovery_services import RecoveryServices

__all__ = [
    "PROVIDERS",
    "Provider",
    "Providers",
    "parse_job_id",
    "parse_operation_url",
    "parse_vault_id",
    "vault_from_parts",
    "vault_operation",
]

# Every provider the tracker knows; the first is the default (shape 2, ids that name no known namespace).
PROVIDERS: tuple[type[Provider], ...] = (RecoveryServices,)

_NAMESPACE_IN_ID = re.compile(r"/providers/([^/?#]+)/", re.IGNORECASE)


class Providers:
    """One configured instance per provider (its api-version from the settings), found by namespace."""

    def __init__(self, providers: list[Provider] | None = None) -> None:
        self._all = providers or [kind() for kind in PROVIDERS]
        self._by_namespace = {p.namespace.lower(): p for p in self._all}

    @classmethod
    def from_settings(cls, settings: Any) -> Providers:
        """``JOBS_ARM_API_VERSION`` is the api-version of Recovery Services calls."""
        return cls([RecoveryServices(api_version=settings.arm_api_version)])

    @property
    def default(self) -> Provider:
        return self._all[0]

    def for_id(self, resource_id: object) -> Provider:
        """The provider whose namespace ``resource_id`` names, else the default (whose parse then says no)."""
        if isinstance(resource_id, str) and (match := _NAMESPACE_IN_ID.search(resource_id)):
            return self._by_namespace.get(match[1].lower(), self.default)
        return self.default

    def for_vault(self, vault: VaultRef | str) -> Provider:
        return self.for_id(vault.id if isinstance(vault, VaultRef) else vault)


_DEFAULTS = Providers()  # parsing needs no settings


def parse_vault_id(resource_id: object, field: str = "vaultId") -> VaultRef:
    return _DEFAULTS.for_id(resource_id).parse_vault_id(resource_id, field)


def vault_from_parts(subscription_id: object, resource_group: object, name: object) -> VaultRef:
    return _DEFAULTS.default.vault_from_parts(subscription_id, resource_group, name)


def parse_job_id(resource_id: object, field: str = "jobResourceId") -> JobRef:
    return _DEFAULTS.for_id(resource_id).parse_job_id(resource_id, field)


def parse_operation_url(url: object, arm_endpoint: str, field: str = "operationUrl") -> OperationRef:
    return _DEFAULTS.for_id(url).parse_operation_url(url, arm_endpoint, field)


def vault_operation(vault: VaultRef, operation_id: object, field: str = "operation.id") -> OperationRef:
    return _DEFAULTS.for_vault(vault).vault_operation(vault, operation_id, field)


def for_vault(vault: VaultRef | str) -> Provider:
    """The (default-configured) provider of a vault: for mapping, which needs no settings."""
    return _DEFAULTS.for_vault(vault)
