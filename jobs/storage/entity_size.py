"""Table Storage's size rules, checked before a write, so that the emulator fails where Azure would.

Azure refuses an entity larger than 1 MiB (HTTP 413 ``EntityTooLarge``) or with more than 255 properties; Azurite
accepts both. The size is Azure's documented formula: 4 bytes, plus the keys' UTF-16 lengths times 2, plus for each
property 8 bytes, its name's UTF-16 length times 2, and the size of its value (a string: 4 bytes plus 2 per UTF-16
unit; a number or date: 8; a bool: 1; a GUID: 16; bytes: 4 plus their length).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

__all__ = ["MAX_ENTITY_BYTES", "MAX_PROPERTIES", "EntityTooLarge", "check_entity", "entity_size"]

MAX_ENTITY_BYTES = 1024 * 1024
MAX_PROPERTIES = 252  # 255 less PartitionKey, RowKey and Timestamp


class EntityTooLarge(ValueError):
    """An entity Table Storage would refuse (413): too many bytes or too many properties."""


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _value_size(value: Any) -> int:
    if isinstance(value, str):
        return 4 + 2 * _utf16_units(value)
    if isinstance(value, bool):
        return 1
    if isinstance(value, int | float | datetime):
        return 8
    if isinstance(value, UUID):
        return 16
    if isinstance(value, bytes | bytearray):
        return 4 + len(value)
    return 4 + 2 * _utf16_units(str(value))


def entity_size(entity: Mapping[str, Any]) -> int:
    """Bytes the entity takes in Table Storage, by Azure's formula."""
    keys = str(entity.get("PartitionKey", "")) + str(entity.get("RowKey", ""))
    size = 4 + 2 * _utf16_units(keys)
    for name, value in entity.items():
        if name in ("PartitionKey", "RowKey") or value is None:
            continue
        size += 8 + 2 * _utf16_units(name) + _value_size(value)
    return size


def check_entity(entity: Mapping[str, Any]) -> None:
    """Raises ``EntityTooLarge`` for an entity Azure would refuse."""
    count = sum(1 for name, value in entity.items() if name not in ("PartitionKey", "RowKey") and value is not None)
    if count > MAX_PROPERTIES:
        raise EntityTooLarge(f"the entity has {count} properties, more than the {MAX_PROPERTIES} Table Storage allows")
    size = entity_size(entity)
    if size > MAX_ENTITY_BYTES:
        raise EntityTooLarge(f"the entity is {size} bytes, more than the 1 MiB Table Storage allows")
