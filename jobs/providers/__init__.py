"""Vault kinds behind one seam (``base.Provider``), and the registry that picks one for a reference.

``PROVIDERS`` lists the provider classes, once; adding a vault kind is one module and one line there. A provider is
found by the namespace an id names (``/providers/<Namespace>/``) and by whether the reference is of the vault's
secondary region (``VaultRef.region``, kept in the stored vault locator ``<vault id>@<region>``): one provider per
pair. Shape 2 of the intake (``subscriptionId``, ``resourceGroup``, ``vaultName``) names no namespace: it means the
first provider listed. An operation URL goes to the first cross-region provider of its namespace that recognises its
shape (cross-region restores' ``backupCrrOperationsStatus``), else to the namespace's own.

Parsing and mapping need no settings: the module-level functions (``parse_job_id``, ``for_vault``...) answer with
the provider classes. Reads need each provider's api-version: ``Providers.from_settings`` builds the one configured
instance of each class, and only the tracker holds it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from jobs.domain.references import InvalidReference, JobRef, OperationRef, VaultRef
from jobs.providers.base import Provider
from jobs.providers.cross_region_restore import CrossRegionRestore
from jobs.providers.data_protection import DataProtection
from jobs.providers.recovery_services import RecoveryServices

__all__ = [
    "PROVIDERS",
    "Provider",
    "Providers",
    "Registry",
    "for_vault",
    "in_region",
    "job_resource_id",
    "parse_job_id",
    "parse_operation_url",
    "parse_vault_id",
    "vault_from_parts",
    "vault_operation",
]

# Every provider the tracker knows; the first is the default (shape 2, ids that name no known namespace).
PROVIDERS: tuple[type[Provider], ...] = (RecoveryServices, CrossRegionRestore, DataProtection)

_NAMESPACE_IN_ID = re.compile(r"/providers/([^/?#]+)/", re.IGNORECASE)


class Registry:
    """Which provider class a reference, a stored locator or an operation URL belongs to. Needs no settings."""

    def __init__(self, kinds: Sequence[type[Provider]] = PROVIDERS) -> None:
        if not kinds:
            raise ValueError("a registry needs at least one provider")
        self.kinds = tuple(kinds)
        self._by_key = {(kind.namespace.lower(), kind.cross_region): kind for kind in self.kinds}

    @property
    def default(self) -> type[Provider]:
        return self.kinds[0]

    def for_id(self, resource_id: object) -> type[Provider]:
        """The provider whose namespace ``resource_id`` names, else the default (whose parse then says no)."""
        namespace = _namespace_of(resource_id)
        return self._by_key.get((namespace, False), self.default) if namespace else self.default

    def for_operation_url(self, url: object) -> type[Provider]:
        """The first cross-region provider of the URL's namespace that recognises its shape, else that namespace's
        own."""
        namespace = _namespace_of(url)
        if namespace and isinstance(url, str):
            for kind in self.kinds:
                if kind.namespace.lower() == namespace and kind.cross_region and kind.recognises_operation_url(url):
                    return kind
        return self.for_id(url)

    def for_vault(self, vault: VaultRef | str) -> type[Provider]:
        """The provider of a vault reference or of a stored locator (``<vault id>[@<region>]``)."""
        if isinstance(vault, str):
            try:
                vault = VaultRef.from_locator(vault)
            except InvalidReference:
                return self.for_id(vault)
        kind = self._by_key.get((vault.namespace.lower(), vault.region is not None))
        if kind is None:
            if vault.region is not None:
                raise InvalidReference(f"cross-region restore jobs are not supported for {vault.namespace} vaults")
            return self.for_id(vault.id)
        return kind

    def in_region(self, vault: VaultRef, region: object, field: str = "crossRegionRestore.region") -> VaultRef:
        """``vault``'s jobs in its secondary ``region``, if a provider serves them; else ``InvalidReference``."""
        located = vault.in_region(region, field)
        self.for_vault(located)
        return located


_REGISTRY = Registry()  # the classes: parsing and mapping


def _namespace_of(resource_id: object) -> str | None:
    if isinstance(resource_id, str) and (match := _NAMESPACE_IN_ID.search(resource_id)):
        return match[1].lower()
    return None


class Providers:
    """The configured providers: one instance of each class, reading at the api-version its setting gives."""

    def __init__(self, versions: Mapping[str, str] | None = None, kinds: Sequence[type[Provider]] = PROVIDERS) -> None:
        self.registry = Registry(kinds)
        versions = versions or {}
        self._instances = {kind: kind(versions.get(kind.api_version_setting)) for kind in self.registry.kinds}

    @classmethod
    def from_settings(cls, settings: Any, kinds: Sequence[type[Provider]] = PROVIDERS) -> Providers:
        """Each provider at the api-version of its own setting (``api_version_setting``), else its default."""
        return cls(settings.api_versions, kinds)

    @property
    def default(self) -> Provider:
        return self._instances[self.registry.default]

    def for_id(self, resource_id: object) -> Provider:
        return self._instances[self.registry.for_id(resource_id)]

    def for_operation_url(self, url: object) -> Provider:
        return self._instances[self.registry.for_operation_url(url)]

    def for_vault(self, vault: VaultRef | str) -> Provider:
        return self._instances[self.registry.for_vault(vault)]

    def in_region(self, vault: VaultRef, region: object, field: str = "crossRegionRestore.region") -> VaultRef:
        return self.registry.in_region(vault, region, field)


def parse_vault_id(resource_id: object, field: str = "vaultId") -> VaultRef:
    return _REGISTRY.for_id(resource_id).parse_vault_id(resource_id, field)


def vault_from_parts(subscription_id: object, resource_group: object, name: object, beside: object = None) -> VaultRef:
    """A vault from its three parts: of the default provider, or of the provider of the operation URL ``beside``
    it (a Backup vault's location-scoped operation URL names no vault: the parts name a Backup vault)."""
    kind = _REGISTRY.for_operation_url(beside) if beside is not None else _REGISTRY.default
    return kind.vault_from_parts(subscription_id, resource_group, name)


def parse_job_id(resource_id: object, field: str = "jobResourceId") -> JobRef:
    return _REGISTRY.for_id(resource_id).parse_job_id(resource_id, field)


def job_resource_id(job: JobRef) -> str:
    """The job's ARM id as its provider writes it (the event's ``jobResourceId``)."""
    return _REGISTRY.for_vault(job.vault).job_resource_id(job)


def parse_operation_url(
    url: object, arm_endpoint: str, field: str = "operationUrl", vault: VaultRef | None = None
) -> OperationRef:
    return _REGISTRY.for_operation_url(url).parse_operation_url(url, arm_endpoint, field, vault)


def vault_operation(vault: VaultRef, operation_id: object, field: str = "operation.id") -> OperationRef:
    return _REGISTRY.for_vault(vault).vault_operation(vault, operation_id, field)


def in_region(vault: VaultRef, region: object, field: str = "crossRegionRestore.region") -> VaultRef:
    return _REGISTRY.in_region(vault, region, field)


def for_vault(vault: VaultRef | str) -> type[Provider]:
    """The provider class of a vault, for parsing and mapping (which need no settings; reads need ``Providers``)."""
    return _REGISTRY.for_vault(vault)
