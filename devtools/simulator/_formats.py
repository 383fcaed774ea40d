"""Wire formats that Azure Resource Manager and the Recovery Services RP use.

- Timestamps: .NET ``yyyy-MM-ddTHH:mm:ss.FFFFFFFZ`` (up to 7 fractional digits, trailing zeros trimmed), as in
  ``"2018-05-21T08:35:40.9488967Z"`` and ``"2017-08-03T05:31:07.014604Z"`` (fixtures).
- Durations: ``XmlConvert.ToString(TimeSpan)``, as in ``"PT9.8782791S"`` / ``"PT0S"`` (GetJobDetails.json).
- ``$filter`` dates: ``yyyy-MM-dd hh:mm:ss tt`` (``'2016-01-01 00:00:00 AM'``, ListJobsWithAllSupportedFilters.json).
- Query strings that the service writes (nextLink): .NET ``HttpUtility.UrlEncode`` style (``+`` for spaces, lower-case
  hex escapes), as in ListJobsWithStartTimeAndEndTimeFilters.json.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote_plus

TICKS_PER_SECOND = 10_000_000
MIN_DATE_OPERATION = "0001-01-01T00:00:00.00000Z"  # OperationStatus.endTime while InProgress (fixture)
MIN_DATE_TASK = "0001-01-01T00:00:00Z"  # DPM/MAB task start/end before they happen (azure-cli PR #24207)


def format_timestamp(moment: datetime, tick: int = 0) -> str:
    """Render ``moment`` as ARM does; ``tick`` supplies the 7th fractional digit (100 ns) Python lacks."""
    moment = moment.astimezone(UTC)
    frac = f"{moment.microsecond:06d}{tick % 10}".rstrip("0")
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{frac}Z" if frac else f"{base}Z"


def iso_duration(seconds: float) -> str:
    """``XmlConvert.ToString(TimeSpan)``: ``PT0S``, ``PT9.8782791S``, ``PT1H2M3.5S``, ``P1DT2H``."""
    ticks = max(0, round(seconds * TICKS_PER_SECOND))
    days, rem = divmod(ticks, 86_400 * TICKS_PER_SECOND)
    hours, rem = divmod(rem, 3_600 * TICKS_PER_SECOND)
    minutes, rem = divmod(rem, 60 * TICKS_PER_SECOND)
    secs, frac = divmod(rem, TICKS_PER_SECOND)
    out = "P"
    if days:
        out += f"{days}D"
    time_part = ""
    if hours:
        time_part += f"{hours}H"
    if minutes:
        time_part += f"{minutes}M"
    if secs or frac:
        fraction = f"{frac:07d}".rstrip("0")
        time_part += f"{secs}.{fraction}S" if fraction else f"{secs}S"
    if time_part:
        out += "T" + time_part
    elif not days:
        out += "T0S"
    return out


def timespan_string(seconds: float) -> str:
    """.NET ``TimeSpan.ToString()`` (``c`` format) to whole seconds: ``00:12:05``, ``1.02:00:00``."""
    total = max(0, round(seconds))
    days, rem = divmod(total, 86_400)
    hours, rem = divmod(rem, 3_600)
    minutes, secs = divmod(rem, 60)
    core = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}.{core}" if days else core


def dotnet_timespan(seconds: float) -> str:
    """.NET ``TimeSpan.ToString()`` with its 7 fractional digits, as the real job GET writes ``duration`` for IaaS VM
    jobs: ``"00:20:23.0896697"`` (seed-job-response.json, a JobDetails_Get answer recorded from Azure)."""
    ticks = max(0, round(seconds * TICKS_PER_SECOND))
    whole, frac = divmod(ticks, TICKS_PER_SECOND)
    core = timespan_string(whole)
    return f"{core}.{frac:07d}" if frac else core


def ticks_of(moment: datetime) -> int:
    """100-ns ticks since the Unix epoch (used for stable ordering and continuation tokens)."""
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * TICKS_PER_SECOND + delta.microseconds * 10


_FILTER_DATE = re.compile(
    r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?\s*(AM|PM)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?\s*$",
    re.IGNORECASE,
)


def parse_filter_date(text: str) -> datetime:
    """Parse a ``$filter`` date, leniently as .NET ``DateTime.Parse`` would; values are UTC.

    Accepts ``2016-01-01 00:00:00 AM`` (hour 00 with AM is what the real example sends), ``2016-01-01 01:30:00 PM``,
    24-hour ``2016-01-01 13:30:00`` and ISO 8601 ``2016-01-01T13:30:00Z``. Raises ValueError otherwise.
    """
    match = _FILTER_DATE.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a date")
    year, month, day, hour, minute, second, fraction, ampm, zone = match.groups()
    h = int(hour or 0)
    if ampm:
        if h > 12:
            raise ValueError(f"'{text}' has hour {h} with {ampm}")
        if ampm.upper() == "PM" and h < 12:
            h += 12
        elif ampm.upper() == "AM" and h == 12:
            h = 0
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    moment = datetime(int(year), int(month), int(day), h, int(minute or 0), int(second or 0), micro, tzinfo=UTC)
    if zone and zone.upper() != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        moment -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return moment


# What Azure's own clients send: ``yyyy-MM-dd hh:mm:ss tt`` (azure-cli custom.py, ``'%Y-%m-%d %I:%M:%S %p'``;
# PowerShell's ``ToString("yyyy-MM-dd hh:mm:ss tt")``), hour 00-12 (ListJobsWithAllSupportedFilters.json sends 00 AM).
CLIENT_FILTER_DATE = re.compile(r"^\d{4}-\d{2}-\d{2} (0\d|1[0-2]):[0-5]\d:[0-5]\d (AM|PM)$")


def format_filter_date(moment: datetime) -> str:
    """The form azure-cli writes into ``$filter``: ``'%Y-%m-%d %I:%M:%S %p'`` (UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %I:%M:%S %p")


def dotnet_url_encode(value: str) -> str:
    """``HttpUtility.UrlEncode``: ``+`` for spaces, lower-case hex, ``!*()`` left alone."""
    encoded = quote_plus(value, safe="!*()")
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded)
