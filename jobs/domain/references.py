"""References to the Azure resources the tracker follows: a vault, a job in it, an operation that names jobs.

They are provider-neutral values: a provider (``jobs.providers``) parses and validates them from what messages
carry, and builds the ids and paths of a vault's jobs and operations. Here are the parts every vault kind shares:
GUIDs, validation helpers, a vault's ARM id and path from validated parts (never copied), and case-insensitive
``key``s.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, replace
from urllib.parse import quote

__all__ = [
    "InvalidReference",
    "JobRef",
    "OperationRef",
    "VaultRef",
    "check_guid",
    "check_name",
    "check_region",
    "is_guid",
    "short_hash",
    "show",
]

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Any ARM vault id: /subscriptions/<sub>/resourceGroups/<rg>/providers/<Namespace>/<type>/<name>.
_ARM_VAULT_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/(?P<ns>[^/]+)/(?P<type>[^/]+)"
    r"/(?P<name>[^/]+)/?$",
    re.IGNORECASE,
)


# An Azure region's programmatic name as ARM writes it in paths and hosts: "eastus2", "southeastasia",
# "usgovvirginia" (letters and digits only; display names such as "East US 2" are not accepted).
_REGION = re.compile(r"^[A-Za-z][A-Za-z0-9]{1,39}$")
# Between a vault id and the secondary region in ``VaultRef.locator`` (never part of an ARM id or region name).
LOCATOR_SEPARATOR = "@"


class InvalidReference(ValueError):
    """A resource id or name that cannot be used. ``str(exc)`` is one sentence naming the field."""


def is_guid(value: object) -> bool:
    return isinstance(value, str) and bool(_GUID.fullmatch(value))


def short_hash(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def check_guid(field: str, value: object) -> str:
    """``value`` as a lower-case GUID, or ``InvalidReference`` naming ``field``."""
    if not isinstance(value, str) or not _GUID.fullmatch(value):
        raise InvalidReference(f"{field} must be a GUID, got {show(value)}")
    return value.lower()


def check_name(field: str, value: object, pattern: re.Pattern[str], rule: str) -> str:
    """``value`` if it matches ``pattern`` whole (and is not only periods), else ``InvalidReference``."""
    if not isinstance(value, str) or not pattern.fullmatch(value) or value.endswith(".") or set(value) <= {"."}:
        raise InvalidReference(f"{field} {show(value)} is not a valid name: {rule}")
    return value


def check_region(field: str, value: object) -> str:
    """``value`` as a lower-case Azure region name (``eastus2``), or ``InvalidReference`` naming ``field``."""
    if not isinstance(value, str) or not _REGION.fullmatch(value):
        raise InvalidReference(
            f"{field} {show(value)} is not an Azure region name (letters and digits, as in 'eastus2' or "
            "'southeastasia')"
        )
    return value.lower()


def show(value: object) -> str:
    """``repr(value)``, cut to 80 characters for error messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class VaultRef:
    """A vault of some provider namespace and type. Names keep the casing first seen; ``key`` folds case.

    ``region`` is set for the vault's jobs in its secondary region (cross-region restores, read on that region's
    passive stamp): the same vault, a different place to ask. It is part of ``key`` and ``locator`` (what the
    store keeps as the item's vault), never of ``id`` (the ARM id, the event's ``source``).
    """

    subscription_id: str
    resource_group: str
    name: str
    namespace: str  # the ARM resource provider, as its provider writes it
    vault_type: str  # the vault's resource type in ids
    region: str | None = None

    @classmethod
    def from_locator(cls, locator: str) -> VaultRef:
        """A ``locator`` the tracker stored itself: a vault id, or ``<vault id>@<region>``."""
        vault_id, separator, region = locator.strip().partition(LOCATOR_SEPARATOR)
        vault = cls.from_resource_id(vault_id)
        return vault.in_region(region) if separator else vault

    def in_region(self, region: object, field: str = "region") -> VaultRef:
        """The same vault, its jobs read in ``region`` (a secondary region), or ``InvalidReference``."""
        return replace(self, region=check_region(field, region))

    @classmethod
    def from_resource_id(cls, resource_id: str) -> VaultRef:
        """A vault id the tracker stored itself (already validated by its provider when it was first seen)."""
        if cls is VaultRef:  # the poll worker asks for the same few vaults for every job of every round
            return _vault_from_stored_id(resource_id)
        return cls._parse(resource_id)

    @classmethod
    def _parse(cls, resource_id: str) -> VaultRef:
        match = _ARM_VAULT_ID.fullmatch(resource_id.strip())
        if not match:
            raise InvalidReference(f"{show(resource_id)} is not a vault resource id")
        return cls(
            subscription_id=check_guid("subscriptionId", match["sub"]),
            resource_group=match["rg"],
            name=match["name"],
            namespace=match["ns"],
            vault_type=match["type"],
        )

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{self.namespace}/{self.vault_type}/{self.name}"
        )

    @property
    def key(self) -> str:
        key = self.id.lower()
        return f"{key}{LOCATOR_SEPARATOR}{self.region}" if self.region else key

    @property
    def locator(self) -> str:
        """What the store keeps as the item's vault: the vault id, with ``@<region>`` for a secondary region."""
        return f"{self.id}{LOCATOR_SEPARATOR}{self.region}" if self.region else self.id

    def path(self) -> str:
        """The ARM path of the vault, every variable part URL-quoted."""
        return (
            f"/subscriptions/{quote(self.subscription_id, safe='')}"
            f"/resourceGroups/{quote(self.resource_group, safe='')}"
            f"/providers/{self.namespace}/{self.vault_type}/{quote(self.name, safe='')}"
        )


@functools.lru_cache(maxsize=4096)
def _vault_from_stored_id(resource_id: str) -> VaultRef:
    return VaultRef._parse(resource_id)


@dataclass(frozen=True)
class JobRef:
    """A backup job in a vault: the unit the tracker follows. Its ARM id and path are its provider's to build
    (``jobs.providers.job_resource_id``)."""

    vault: VaultRef
    job_id: str

    @classmethod
    def create(cls, vault: VaultRef, job_id: object, field: str = "jobId") -> JobRef:
        return cls(vault=vault, job_id=check_guid(field, job_id))

    @property
    def key(self) -> str:
        """The tracking id: the job's GUID plus a short hash of the vault, stable under any casing."""
        return f"{self.job_id}-{short_hash(self.vault.key)}"


@dataclass(frozen=True)
class OperationRef:
    """An asynchronous operation of a vault that will name the job(s) it started.

    ``arm_path`` is the ARM path of the operation's status, built by the vault's provider from validated parts.
    """

    vault: VaultRef
    operation_id: str
    arm_path: str

    def path(self) -> str:
        """The ARM path of the operation's status."""
        return self.arm_path

    @property
    def key(self) -> str:
        """Tracking id of the operation while it has not named its job yet. A GUID operation id shows in it;
        any other (cross-region restores' base64 ids may hold ``/`` or ``+``, which a table key refuses) is hashed."""
        shown = self.operation_id if is_guid(self.operation_id) else short_hash(self.operation_id, 32)
        return f"op-{shown}-{short_hash(self.arm_path.lower())}"
