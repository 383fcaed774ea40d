"""The Recovery Services provider: list windows and filter dates, references and the messages that refuse them,
job ids and paths, statuses, the event's type and subject, and its Resource Graph table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from jobs.domain.references import InvalidReference, JobRef
from jobs.providers.recovery_services import (
    DEFAULT_API_VERSION,
    RecoveryServices,
    ended_jobs_query,
    filter_date,
    job_of_row,
    job_path,
    job_resource_id,
    list_window,
    parse_job_id,
    parse_operation_url,
    parse_vault_id,
    vault_from_parts,
    vault_operation,
)

VAULT_ID = (
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/backup-rg"
    "/providers/Microsoft.RecoveryServices/vaults/prod-vault"
)
OP = "cd153561-20d3-467a-b911-cc1de47d4763"
JOB = "41f3e94b-ae6b-4a20-b422-65abfcaf03e5"
JOB2 = "7ddead57-bcb9-4269-ac31-6a1b57588700"
NOW = datetime(2025, 3, 31, 14, 5, 9, 987654, tzinfo=UTC)


def test_filter_dates_are_12_hour_clock_with_am_pm_in_utc() -> None:
    assert filter_date(datetime(2025, 3, 1, 0, 5, 9, tzinfo=UTC)) == "2025-03-01 12:05:09 AM"
    assert filter_date(datetime(2025, 3, 1, 9, 7, 3, tzinfo=UTC)) == "2025-03-01 09:07:03 AM"
    assert filter_date(datetime(2025, 3, 1, 11, 59, 59, tzinfo=UTC)) == "2025-03-01 11:59:59 AM"
    assert filter_date(datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)) == "2025-03-01 12:00:00 PM"
    assert filter_date(datetime(2025, 12, 31, 23, 1, 2, tzinfo=UTC)) == "2025-12-31 11:01:02 PM"
    assert filter_date(datetime(987, 1, 2, 13, 0, 0, tzinfo=UTC)) == "0987-01-02 01:00:00 PM"


def test_filter_dates_are_converted_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert filter_date(datetime(2025, 3, 1, 1, 30, 0, tzinfo=plus_two)) == "2025-02-28 11:30:00 PM"


def test_the_list_window_starts_a_day_before_the_oldest_job_and_ends_now_in_whole_seconds() -> None:
    start, end = list_window(NOW - timedelta(hours=5), NOW)
    assert end == datetime(2025, 3, 31, 14, 5, 9, tzinfo=UTC)
    assert start == datetime(2025, 3, 30, 9, 5, 9, tzinfo=UTC)


def test_the_list_window_is_never_longer_than_30_days() -> None:
    start, end = list_window(NOW - timedelta(days=90), NOW)
    assert (start, end) == (datetime(2025, 3, 1, 14, 5, 9, tzinfo=UTC), datetime(2025, 3, 31, 14, 5, 9, tzinfo=UTC))
    start, _ = list_window(NOW - timedelta(days=29), NOW)
    assert start == datetime(2025, 3, 1, 14, 5, 9, tzinfo=UTC)
    start, _ = list_window(NOW - timedelta(days=28, hours=23), NOW)
    assert start == datetime(2025, 3, 1, 15, 5, 9, tzinfo=UTC)


def test_the_list_window_never_starts_after_it_ends_and_is_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    start, end = list_window(NOW + timedelta(days=3), NOW.astimezone(plus_two))
    assert start == end == datetime(2025, 3, 31, 14, 5, 9, tzinfo=UTC)
    assert start.utcoffset() == end.utcoffset() == timedelta(0)
    start, _ = list_window((NOW - timedelta(hours=1)).astimezone(plus_two), NOW)
    assert start.tzinfo == UTC and start == datetime(2025, 3, 30, 13, 5, 9, tzinfo=UTC)
    start, _ = list_window(NOW.replace(microsecond=500000) + timedelta(days=1, microseconds=1), NOW)
    assert start.microsecond == 0


def test_an_operation_id_that_is_not_a_guid_is_named_by_its_field() -> None:
    vault = parse_vault_id(VAULT_ID)
    with pytest.raises(InvalidReference, match=r"^operation\.id must be a GUID, got 'nope'$"):
        vault_operation(vault, "nope")
    with pytest.raises(InvalidReference, match=r"^operation\.id must be a GUID, got 'nope'$"):
        RecoveryServices().vault_operation(vault, "nope")
    op = vault_operation(vault, OP.upper())
    assert op.path() == f"{vault.path()}/backupOperations/{OP}"


def test_the_provider_keeps_its_api_version_and_maps_a_job_detailed_unless_told() -> None:
    assert RecoveryServices().api_version == DEFAULT_API_VERSION
    assert RecoveryServices("2024-04-01").api_version == "2024-04-01"
    state = RecoveryServices().job_state({"properties": {"status": "Completed"}})
    assert state.detailed is True and state.terminal is True and state.status == "Completed"
    odd = RecoveryServices().job_state({"properties": {"status": "Paused"}}, detailed=False)
    assert (odd.status, odd.terminal, odd.detailed) == ("Paused", False, False)
    assert RecoveryServices().job_state({"properties": {}}).status == "None"


def test_an_operation_in_any_other_status_is_running_and_keeps_its_status_as_sent() -> None:
    state = RecoveryServices().operation_state({"status": "inprogress"})
    assert (state.status, state.outcome, state.known) == ("InProgress", "running", True)
    state = RecoveryServices().operation_state({"status": "Paused"})
    assert (state.status, state.outcome, state.known) == ("Paused", "running", False)
    assert RecoveryServices().operation_state({}).status == "None"


def test_jobs_azure_failed_to_create_keep_their_code_or_an_empty_one() -> None:
    operation = {"properties": {"failedJobsError": {JOB.upper(): "UserError", JOB2: None, "": "X"}}}
    assert RecoveryServices().failed_jobs(operation) == {JOB: "UserError", JOB2: ""}


VAULT_SHAPE = "(/subscriptions/<guid>/resourceGroups/<rg>/providers/Microsoft.RecoveryServices/vaults/<name>"
ARM = "https://management.azure.com"


def reason(call: Any, *args: object) -> str:
    with pytest.raises(InvalidReference) as info:
        call(*args)
    return str(info.value)


def test_a_wrong_vault_or_job_id_is_named_by_its_default_field_with_the_expected_shape() -> None:
    for parse in (parse_vault_id, RecoveryServices().parse_vault_id):
        assert reason(parse, 5) == "vaultId must be a string, got 5"
        assert reason(parse, "/x") == f"vaultId '/x' is not a Recovery Services vault id {VAULT_SHAPE})"
    for parse in (parse_job_id, RecoveryServices().parse_job_id):
        assert reason(parse, 5) == "jobResourceId must be a string, got 5"
        assert reason(parse, "/x") == f"jobResourceId '/x' is not a backup job id {VAULT_SHAPE}/backupJobs/<guid>)"


def test_an_operation_url_is_named_by_its_default_field() -> None:
    for parse in (parse_operation_url, RecoveryServices().parse_operation_url):
        assert reason(parse, 5, ARM) == "operationUrl must be a non-empty string"
    url = f"{ARM}{VAULT_ID}/backupOperations/{OP}"
    assert reason(parse_operation_url, url + "x" * (4096 - len(url) + 1), ARM) == (
        "operationUrl is longer than 4096 characters"
    )
    assert reason(parse_operation_url, url + "/" * (4096 - len(url)), ARM).startswith("operationUrl is not")


def test_an_operation_url_may_spell_out_the_default_port_of_its_scheme() -> None:
    path = f"{VAULT_ID}/backupOperations/{OP}"
    assert parse_operation_url(f"http://127.0.0.1:80{path}", "http://127.0.0.1").operation_id == OP
    assert parse_operation_url(f"https://127.0.0.1:443{path}", "https://127.0.0.1").operation_id == OP
    assert reason(parse_operation_url, f"http://127.0.0.1:81{path}", "http://127.0.0.1") == (
        "operationUrl must point at ARM_ENDPOINT (http://127.0.0.1); the tracker sends its Azure token nowhere else"
    )
    assert reason(parse_operation_url, f"https:///{path}", "https://").startswith("operationUrl is not")


def item_url(container: str) -> str:
    vault = f"{ARM}{VAULT_ID}/backupFabrics/Azure"
    return f"{vault}/protectionContainers/{container}/protectedItems/i/operationsStatus/{OP}"


def test_each_decoded_segment_is_judged() -> None:
    for container in ("a%2Fb", "%2E", "%2E%2E", ".", "..", "a%25b", "a%5Cb"):
        assert reason(parse_operation_url, item_url(container), ARM) == (
            "operationUrl has an encoded or relative path segment"
        ), container
    assert reason(parse_operation_url, item_url("a\\b"), ARM) == "operationUrl has an encoded or relative path segment"
    assert reason(parse_operation_url, item_url("%FF"), ARM) == (
        "operationUrl has a path segment that is not UTF-8 once decoded"
    )
    for container in ("X", "XX", "a.b", "IaasVMContainer%3Bv2%3Brg%3Bvm"):
        assert parse_operation_url(item_url(container), ARM).operation_id == OP


def test_the_provider_passes_the_callers_field_on() -> None:
    provider = RecoveryServices()
    assert reason(provider.parse_vault_id, 5, "message") == "message must be a string, got 5"
    assert reason(provider.parse_job_id, 5, "message") == "message must be a string, got 5"
    assert reason(provider.parse_operation_url, 5, ARM, "status") == "status must be a non-empty string"
    assert reason(provider.vault_operation, parse_vault_id(VAULT_ID), "x", "name") == "name must be a GUID, got 'x'"


def test_an_operation_url_of_something_else_or_a_bad_name_says_what_is_expected() -> None:
    assert reason(parse_operation_url, f"{ARM}{VAULT_ID}/backupJobs/{OP}", ARM) == (
        "operationUrl is not an operation of a Recovery Services vault (expected .../protectedItems/<item>/"
        "operationsStatus/<id>, .../operationResults/<id> or .../vaults/<vault>/backupOperations/<id>)"
    )
    assert reason(parse_operation_url, item_url("x.."), ARM) == (
        "operationUrl container name 'x..' is not a valid name: letters, digits and ;._-()$: only"
    )


def test_an_item_operation_keeps_semicolons_in_names_and_quotes_the_rest() -> None:
    url = (f"{ARM}{VAULT_ID}/backupFabrics/Az%3Bure/protectionContainers/c%3Bd(1)/protectedItems/vm%3B1$"
           f"/operationsStatus/{OP}")
    assert parse_operation_url(url, ARM).path().endswith(
        f"/backupFabrics/Az;ure/protectionContainers/c;d%281%29/protectedItems/vm;1%24/operationsStatus/{OP}"
    )


def test_vault_parts_are_named_with_their_rules() -> None:
    sub = "11111111-2222-3333-4444-555555555555"
    assert reason(vault_from_parts, "x", "rg", "v1") == "subscriptionId must be a GUID, got 'x'"
    assert reason(vault_from_parts, sub, "rg.", "v1") == (
        "resourceGroup 'rg.' is not a valid name: 1-90 letters, digits, underscores, parentheses, hyphens and "
        "periods, not ending in a period"
    )
    assert reason(vault_from_parts, sub, "rg", "1v") == (
        "vaultName '1v' is not a valid name: 2-50 letters, digits and hyphens, starting with a letter"
    )
    vault = vault_from_parts(sub.upper(), "rg", "v1")
    assert (vault.subscription_id, vault.namespace, vault.vault_type) == (sub, "Microsoft.RecoveryServices", "vaults")


# -- what the provider owns of its kind: job ids and paths, the event's subject, its api-version setting -----------

def test_a_job_id_is_azures_spelling_and_its_path_is_quoted() -> None:
    job = JobRef.create(vault_from_parts("11111111-2222-3333-4444-555555555555", "rg-é(1)", "prod-vault"), JOB)
    vault_id = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-é(1)/providers/" \
        "Microsoft.RecoveryServices/vaults/prod-vault"
    assert job_resource_id(job) == RecoveryServices.job_resource_id(job) == f"{vault_id}/backupJobs/{JOB}"
    assert job_path(job) == f"{vault_id.replace('rg-é(1)', 'rg-%C3%A9%281%29')}/backupJobs/{JOB}"
    assert parse_job_id(job_resource_id(job)) == job


def test_an_event_is_a_backup_job_event_about_the_job_or_the_operation() -> None:
    assert RecoveryServices.event_type("Failed") == "BackupJob.Failed"
    assert RecoveryServices.event_subject(JOB, OP) == f"backupJobs/{JOB}"
    assert RecoveryServices.event_subject(None, OP) == f"backupOperations/{OP}"
    assert RecoveryServices.reference_fields(parse_vault_id(VAULT_ID)) == {}


def test_its_api_version_comes_from_its_own_setting() -> None:
    assert RecoveryServices.api_version_setting == "JOBS_ARM_API_VERSION"
    assert RecoveryServices.default_api_version == DEFAULT_API_VERSION
    assert RecoveryServices.api_version_doc and "\n" not in RecoveryServices.api_version_doc
    assert RecoveryServices(None).api_version == DEFAULT_API_VERSION


# -- its Resource Graph table -----------------------------------------------------------------------------------

def test_the_query_asks_its_own_table_for_the_jobs_named_that_ended() -> None:
    query = ended_jobs_query([JOB.upper(), JOB2])
    assert RecoveryServices.resource_graph is True and RecoveryServices.ended_jobs_query([JOB.upper(), JOB2]) == query
    assert query == (
        "RecoveryServicesResources | where type =~ 'microsoft.recoveryservices/vaults/backupjobs'"
        f" | where name in~ ('{JOB}', '{JOB2}')"
        " | where tostring(properties.status) in~ ('Completed', 'CompletedWithWarnings', 'Failed', 'Cancelled')"
        " | project id, name, status = tostring(properties.status)"
    )


def test_a_row_is_read_as_its_vault_and_job_in_lower_case() -> None:
    assert job_of_row({"id": f"{VAULT_ID.upper()}/backupJobs/{JOB.upper()}", "name": JOB}) == (VAULT_ID.lower(), JOB)
    assert RecoveryServices.job_of_row({"id": f"{VAULT_ID}/BACKUPJOBS/{JOB}"}) == (VAULT_ID.lower(), JOB)
    assert job_of_row({"id": f"{VAULT_ID}/backupOperations/{JOB}"}) is None
    assert job_of_row({"name": JOB}) is None and job_of_row({"id": None}) is None
