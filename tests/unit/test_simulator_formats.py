"""Wire formats and model pieces of the Backup REST API simulator (no HTTP)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from devtools.simulator._formats import (
    dotnet_url_encode,
    format_timestamp,
    iso_duration,
    parse_filter_date,
    timespan_string,
)
from devtools.simulator._model import JobFilter, JobScript, make_skip_token, parse_skip_token, sort_key


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "PT0S"),
        (9.8782791, "PT9.8782791S"),
        (12.5, "PT12.5S"),
        (60, "PT1M"),
        (3723.25, "PT1H2M3.25S"),
        (86400, "P1D"),
        (93600, "P1DT2H"),
    ],
)
def test_iso_duration_matches_xmlconvert(seconds: float, text: str) -> None:
    assert iso_duration(seconds) == text


def test_timestamps_use_up_to_seven_fraction_digits() -> None:
    moment = datetime(2018, 5, 21, 8, 35, 40, 948896, tzinfo=UTC)
    assert format_timestamp(moment, 7) == "2018-05-21T08:35:40.9488967Z"
    assert format_timestamp(datetime(2017, 8, 3, 5, 31, 7, 14604, tzinfo=UTC)) == "2017-08-03T05:31:07.014604Z"
    assert format_timestamp(datetime(2017, 8, 3, 5, 31, 7, tzinfo=UTC)) == "2017-08-03T05:31:07Z"
    assert timespan_string(65.4) == "00:01:05"
    assert timespan_string(93600) == "1.02:00:00"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2016-01-01 00:00:00 AM", datetime(2016, 1, 1, tzinfo=UTC)),
        ("2016-01-01 12:00:00 AM", datetime(2016, 1, 1, tzinfo=UTC)),
        ("2016-01-01 12:30:00 PM", datetime(2016, 1, 1, 12, 30, tzinfo=UTC)),
        ("2016-01-01 01:30:05 PM", datetime(2016, 1, 1, 13, 30, 5, tzinfo=UTC)),
        ("2016-01-01 13:30:05", datetime(2016, 1, 1, 13, 30, 5, tzinfo=UTC)),
        ("2016-01-01T13:30:05Z", datetime(2016, 1, 1, 13, 30, 5, tzinfo=UTC)),
        ("2016-01-01T13:30:05+01:00", datetime(2016, 1, 1, 12, 30, 5, tzinfo=UTC)),
    ],
)
def test_filter_dates(text: str, expected: datetime) -> None:
    assert parse_filter_date(text) == expected


def test_filter_parsing_matches_the_real_example() -> None:
    parsed = JobFilter.parse(
        "startTime eq '2017-11-01 00:00:00 AM' and endTime eq '2017-11-29 00:00:00 AM' and operation eq 'Backup' "
        "and backupManagementType eq 'AzureIaasVM' and status eq 'InProgress'"
    )
    assert parsed.start == datetime(2017, 11, 1, tzinfo=UTC)
    assert parsed.end == datetime(2017, 11, 29, tzinfo=UTC)
    assert parsed.equals == {"operation": "backup", "backupManagementType": "azureiaasvm", "status": "inprogress"}
    # ...but the real example's range (23 months) is more than Azure's clients send: refused as a whole
    with pytest.raises(ValueError, match="30 days"):
        JobFilter.parse("startTime eq '2016-01-01 00:00:00 AM' and endTime eq '2017-11-29 00:00:00 AM'",
                        datetime(2017, 11, 29, tzinfo=UTC))
    with pytest.raises(ValueError):
        JobFilter.parse("startTime eq '2017-01-01 00:00:00 AM' and endTime eq '2016-01-01 00:00:00 AM'")


def test_url_encoding_is_dotnet_style() -> None:
    assert dotnet_url_encode("startTime eq '2016-01-01 00:00:00 AM'") == (
        "startTime+eq+%272016-01-01+00%3a00%3a00+AM%27"
    )


def test_skip_token_round_trip_rejects_garbage() -> None:
    vault = SimpleNamespace(ref=SimpleNamespace(name="Prod-Vault"))
    for ticks, seq, job_id in ((638_700_000_000_000_000, 1, "7ddead57-bcb9-4269-ac31-6a1b57588700"),
                               (1, 123_456, "00000000-0000-0000-0000-000000000000")):
        job = SimpleNamespace(start_ticks=ticks, seq=seq, job_id=job_id)
        token = make_skip_token(vault, job)  # type: ignore[arg-type]
        assert parse_skip_token(token) == sort_key(job) == (-ticks, -seq)  # type: ignore[arg-type]
    good = make_skip_token(vault, SimpleNamespace(start_ticks=5, seq=6, job_id="j"))  # type: ignore[arg-type]
    for garbage in ("", "not a token", "<NextRowKey>1!4!Zm9v</NextRowKey>", good.replace("<NextRowKey>", "<Row>"),
                    "<NextRowKey>1!8!" + base64.b64encode(b"other_0_5_6_j").decode() + "</NextRowKey>"):
        with pytest.raises(ValueError):
            parse_skip_token(garbage)


def test_job_script_validation() -> None:
    JobScript().validate()
    for bad in (
        JobScript(job_type="AzureVM"),
        JobScript(final_status="InProgress"),
        JobScript(duration=-1),
        JobScript(job_id="a/b"),
    ):
        with pytest.raises(ValueError):
            bad.validate()
