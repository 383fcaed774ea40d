"""Times and durations as Azure writes them: ``2026-01-05T22:00:07.1234567Z``; a .NET TimeSpan (``00:20:23.0896697``,
``1.02:03:04``) or ISO 8601 (``PT9.87S``)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

__all__ = ["duration_seconds", "parse_time"]

_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)$")
_ISO = re.compile(r"^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def duration_seconds(value: object) -> float | None:
    """Seconds of a TimeSpan or ISO 8601 duration (days at most: no years or months); ``None`` for anything else."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    timespan = _TIMESPAN.match(text)
    if timespan:
        days, hours, minutes, seconds = timespan.groups()
        if int(minutes) > 59 or float(seconds) >= 60 or (int(hours) > 23 and days is not None):
            return None
        return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    iso = _ISO.match(text.upper())
    if iso and text.upper() not in ("P", "PT") and not text.upper().endswith("T"):
        days, hours, minutes, seconds = (float(part) if part else 0.0 for part in iso.groups())
        total = days * 86400 + hours * 3600 + minutes * 60 + seconds
        return total if math.isfinite(total) else None
    return None


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 time as Azure writes it (seven fractional digits, ``Z``), aware; ``None`` for anything else."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # .NET writes 7 fractional digits; Python reads at most 6
        digits = "".join(c for c in rest if c.isdigit())
        text = f"{head}.{digits[:6]}{rest[len(digits):]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
