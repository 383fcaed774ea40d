"""Times and durations as Azure writes them: ``2026-01-05T22:00:07.1234567Z``; a .NET TimeSpan (``00:20:23.0896697``,
``1.02:03:04``) or ISO 8601 (``PT9.87S``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import isodate

__all__ = ["duration_seconds", "parse_duration", "parse_time"]

# .NET TimeSpan.ToString() ("c"): [d.]hh:mm:ss[.fffffff], as Azure writes IaaS VM jobs' durations.
_TIMESPAN = re.compile(r"(?:(\d{1,8})\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?")


def parse_duration(value: object) -> timedelta | None:
    """A duration in either form Azure writes: a .NET TimeSpan (``00:20:23.0896697``, ``1.02:03:04``) or ISO 8601
    (``PT1M30.5S``, read by ``isodate``), to the microsecond. ``None`` for none, a negative duration, one in years
    or months, or text that is neither."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    span = _TIMESPAN.fullmatch(text)
    try:
        if span:
            days, hours, minutes, seconds, fraction = span.groups()
            if int(hours) > 23 or int(minutes) > 59 or int(seconds) > 59:
                return None
            ticks = int((fraction or "").ljust(7, "0"))  # 100 ns each
            duration = timedelta(days=int(days or 0), hours=int(hours), minutes=int(minutes), seconds=int(seconds),
                                 microseconds=round(ticks / 10))
        else:
            parsed = isodate.parse_duration(text)
            if not isinstance(parsed, timedelta):  # years or months: no fixed length
                return None
            duration = parsed
    except (isodate.ISO8601Error, ValueError, OverflowError):
        return None
    return None if duration < timedelta(0) else duration


def duration_seconds(value: object) -> float | None:
    """Seconds of a duration in either of Azure's forms (``parse_duration``)."""
    duration = parse_duration(value)
    return None if duration is None else duration.total_seconds()


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
