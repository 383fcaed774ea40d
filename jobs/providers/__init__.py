"""Vault kinds behind one seam (``base.Provider``), and the registry that picks one for a reference.

Every caller goes through the functions here and never names a provider. A provider is found by the namespace an
id names (``/providers/<Namespace>/``) and by whether the reference is of the vault's secondary region
(``VaultRef.region``, kept in the stored vault locator ``<vault id>@<region>``): one provider per pair. Shape 2 of
the intake (``subscriptionId``, ``resourceGroup``, ``vaultName``) names no namespace: it means the default provider,
Recovery Services. An operation URL goes to the first provider of its namespace that recognises its shape
(cross-region restores' ``backupCrrOperationsStatus``), else to the namespace's own. A new vault kind is one more
module in ``PROVIDERS``.
"""

from __future__ import annotations

import re
from typing import Any

from jobs.domain.references import InvalidReference, JobRef, OperationRef, VaultRef
from jobs.providers.base import Provider
from jobs.providers.cross_region_restore import CrossRegionRestore
from jobs.providers.recovery_services import RecoveryServices

__all__ = [
    "PROVIDERS",
    "Provider",
    "Providers",
    "for_vault",
    "in_region",
    "parse_job_id",
    "parse_operation_url",
    "parse_vault_id",
    "vault_from_parts",
    "vault_operation",
]

# Every provider the tracker knows; the first is the default (shape 2, ids that name no known namespace).
PROVIDERS: tuple[type[Provider], ...] = (RecoveryServices, CrossRegionRestore)

_NAMESPACE_IN_ID = re.compile(r"/providers/([^/?#]+)/", re.IGNORECASE)


class Providers:
    """One configured instance per provider (its api-version from the settings), found by namespace and region."""

    def __init__(self, providers: list[Provider] | None = None) -> None:
        self._all = providers or [kind() for kind in PROVIDERS]
        self._by_key = {(p.namespace.lower(), p.cross_region): p for p in self._all}

    @classmethod
    def from_settings(cls, settings: Any) -> Providers:
        """``JOBS_ARM_API_VERSION`` is the api-version of Recovery Services calls, ``JOBS_CRR_API_VERSION`` that of
        the passive stamp (cross-region restore jobs)."""
        return cls([
            RecoveryServices(api_version=settings.arm_api_version),
            CrossRegionRestore(api_version=settings.crr_api_version),
        ])

    @property
    def default(self) -> Provider:
        return self._all[0]

    def _namespace_of(self, resource_id: object) -> str | None:
        if isinstance(resource_id, str) and (match := _NAMESPACE_IN_ID.search(resource_id)):
            return match[1].lower()
        return None

    def for_id(self, resource_id: object) -> Provider:
        """The provider whose namespace ``resource_id`` names, else the default (whose parse then says no)."""
        namespace = self._namespace_of(resource_id)
        return self._by_key.get((namespace, False), self.default) if namespace else self.default

    def for_operation_url(self, url: object) -> Provider:
        """The first provider of the URL's namespace that recognises its shape, else that namespace's own."""
        namespace = self._namespace_of(url)
        if namespace and isinstance(url, str):
            for provider in self._all:
                if provider.namespace.lower() == namespace and provider.cross_region and \
                        provider.recognises_operation_url(url):
                    return provider
        return self.for_id(url)

    def for_vault(self, vault: VaultRef | str) -> Provider:
        """The provider of a vault reference or of a stored locator (``<vault id>[@<region>]``)."""
        if isinstance(vault, str):
            try:
                vault = VaultRef.from_locator(vault)
            except InvalidReference:
                return self.for_id(vault)
        provider = self._by_key.get((vault.namespace.lower(), vault.region is not None))
        if provider is None:
            if vault.region is not None:
                raise InvalidReference(f"cross-region restore jobs are not supported for {vault.namespace} vaults")
            return self.for_id(vault.id)
        return provider

    def in_region(self, vault: VaultRef, region: object, field: str = "crossRegionRestore.region") -> VaultRef:
        """``vault``'s jobs in its secondary ``region``, if a provider serves them; else ``InvalidReference``."""
        located = vault.in_region(region, field)
        self.for_vault(located)
        return located


_DEFAULTS = Providers()  # parsing needs no settings


def parse_vault_id(resource_id: object, field: str = "vaultId") -> VaultRef:
    return _DEFAULTS.for_id(resource_id).parse_vault_id(resource_id, field)


def vault_from_parts(subscription_id: object, resource_group: object, name: object) -> VaultRef:
    return _DEFAULTS.default.vault_from_parts(subscription_id, resource_group, name)


def parse_job_id(resource_id: object, field: str = "jobResourceId") -> JobRef:
    return _DEFAULTS.for_id(resource_id).parse_job_id(resource_id, field)


def parse_operation_url(
    url: object, arm_endpoint: str, field: str = "operationUrl", vault: VaultRef | None = None
) -> OperationRef:
    return _DEFAULTS.for_operation_url(url).parse_operation_url(url, arm_endpoint, field, vault)


def vault_operation(vault: VaultRef, operation_id: object, field: str = "operation.id") -> OperationRef:
    return _DEFAULTS.for_vault(vault).vault_operation(vault, operation_id, field)


def in_region(vault: VaultRef, region: object, field: str = "crossRegionRestore.region") -> VaultRef:
    return _DEFAULTS.in_region(vault, region, field)


def for_vault(vault: VaultRef | str) -> Provider:
    """The (default-configured) provider of a vault: for mapping, which needs no settings."""
    return _DEFAULTS.for_vault(vault)
