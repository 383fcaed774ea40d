"""JOBS_RETENTION_DAYS: how long ended jobs stay in the table; validated like every setting, in one line."""

from __future__ import annotations

import pytest

from jobs.config import ConfigError, Settings

STORAGE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}


def test_ended_jobs_are_kept_30_days_by_default_and_decimals_are_allowed() -> None:
    assert Settings.from_env(STORAGE).retention_days == 30
    assert Settings.from_env({**STORAGE, "JOBS_RETENTION_DAYS": "1.5"}).retention_days == 1.5
    assert Settings.from_env({**STORAGE, "JOBS_RETENTION_DAYS": " "}).retention_days == 30


@pytest.mark.parametrize("value", ["soon", "-1", "0", "nan", "inf", "0.5"])
def test_a_wrong_retention_stops_start_up_with_one_line_naming_it(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**STORAGE, "JOBS_RETENTION_DAYS": value})
    message = str(info.value)
    assert "JOBS_RETENTION_DAYS" in message and "\n" not in message, message


def test_the_retention_must_outlast_webhook_retries() -> None:
    """A job swept while its webhook delivery is still being retried would drop that delivery."""
    assert Settings.from_env({**STORAGE, "JOBS_RETENTION_DAYS": "0.25",
                              "JOBS_DELIVERY_RETRY_HOURS": "2"}).retention_days == 0.25
    with pytest.raises(ConfigError, match=r"JOBS_RETENTION_DAYS .*JOBS_DELIVERY_RETRY_HOURS"):
        Settings.from_env({**STORAGE, "JOBS_RETENTION_DAYS": "0.5", "JOBS_DELIVERY_RETRY_HOURS": "24"})
