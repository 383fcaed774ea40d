"""The parts of watching vaults that need no storage: the scopes a watch accepts, the window a listing asks for,
the simulator's resource lists (strict about api-versions and filters, paged), and the discover message."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests

from devtools.simulator import BackupSimulator
from jobs.config import ConfigError, Settings, parse_watch_scope, scope_kind
from jobs.domain.references import InvalidReference
from jobs.flows.watches import DiscoverWork
from jobs.providers.recovery_services import recent_filter
from jobs.storage.watch_store import WatchedVault

SUB = "11111111-2222-3333-4444-555555555555"
GROUP = f"/subscriptions/{SUB}/resourceGroups/rg-a"
VAULT = f"{GROUP}/providers/Microsoft.RecoveryServices/vaults/v-one"


def test_a_scope_is_a_vault_a_resource_group_or_a_subscription_kept_in_one_spelling() -> None:
    assert parse_watch_scope(f" /Subscriptions/{SUB.upper()}/ ") == f"/subscriptions/{SUB}"
    assert parse_watch_scope(f"/subscriptions/{SUB}/resourcegroups/rg-a") == GROUP
    assert parse_watch_scope(VAULT.replace("Microsoft.RecoveryServices", "microsoft.recoveryservices")) == VAULT
    assert [scope_kind(s) for s in (f"/subscriptions/{SUB}", GROUP, VAULT)] == ["subscription", "resourceGroup",
                                                                                "vault"]
    for wrong in ("", "/subscriptions/not-a-guid", f"{GROUP}/providers/Microsoft.Compute/virtualMachines/vm", 42,
                  f"/subscriptions/{SUB}/resourceGroups/bad/name/x"):
        with pytest.raises(InvalidReference):
            parse_watch_scope(wrong)


def test_the_setting_names_the_entry_that_is_wrong_and_drops_repeats() -> None:
    base = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    settings = Settings.from_env({**base, "JOBS_WATCH_SCOPES": f"{GROUP}, {VAULT},{GROUP.upper()},"})
    assert settings.watch_scopes == (GROUP, VAULT)
    assert Settings.from_env(base).watch_scopes == ()
    with pytest.raises(ConfigError, match="JOBS_WATCH_SCOPES entry 2 subscription id must be a GUID, got 'x'"):
        Settings.from_env({**base, "JOBS_WATCH_SCOPES": f"{GROUP},/subscriptions/x"})


def test_a_listing_asks_for_every_status_since_its_mark_never_more_than_30_days_nor_past_now() -> None:
    now = datetime(2026, 12, 5, 14, 30, 15, 999, tzinfo=UTC)
    assert recent_filter(now - timedelta(minutes=16), now) == (
        "startTime eq '2026-12-05 02:14:15 PM' and endTime eq '2026-12-05 02:30:15 PM'")
    assert recent_filter(now - timedelta(days=90), now).startswith("startTime eq '2026-11-05 02:30:15 PM'")
    assert recent_filter(now + timedelta(minutes=1), now).startswith("startTime eq '2026-12-05 02:30:15 PM'")
    assert "status" not in recent_filter(now - timedelta(minutes=1), now)


def test_a_discover_message_carries_each_watchs_mark_and_is_told_from_a_poll() -> None:
    began = datetime(2026, 12, 5, 14, 0, tzinfo=UTC)
    rows = (WatchedVault("a", VAULT, began, began), WatchedVault("b", VAULT, began, began, began + timedelta(days=1)))
    work = DiscoverWork.from_message(DiscoverWork(VAULT, rows).to_message())
    assert work is not None and work.vault_id == VAULT
    later = began + timedelta(days=1)
    assert [(r.watch, r.began_at, r.since) for r in work.rows] == [("a", began, None), ("b", began, later)]
    assert DiscoverWork.from_message('{"kind":"poll","vaultId":"x","trackingIds":[],"lease":""}') is None


@pytest.fixture
def sim() -> BackupSimulator:
    with BackupSimulator() as simulator:
        yield simulator


def _list(sim: BackupSimulator, scope: str, **query: str) -> requests.Response:
    return requests.get(f"{sim.base_url}{scope}/resources", params=query,
                        headers={"Authorization": "Bearer sim-token"}, timeout=10)


def _every_page(answer: requests.Response) -> list[tuple[str, str, str]]:
    seen = []
    while True:
        assert answer.status_code == 200, answer.text
        page = answer.json()
        seen += [(item["id"], item["type"], item["name"]) for item in page["value"]]
        if "nextLink" not in page:
            return seen
        answer = requests.get(page["nextLink"], headers={"Authorization": "Bearer sim-token"}, timeout=10)


def test_the_simulator_lists_a_scopes_vaults_by_type_page_by_page(sim: BackupSimulator) -> None:
    vaults = [f"{GROUP}/providers/Microsoft.RecoveryServices/vaults/v-{n}" for n in range(5)]
    elsewhere = f"/subscriptions/{SUB}/resourceGroups/rg-b/providers/Microsoft.RecoveryServices/vaults/v-b"
    for vault in [*vaults, elsewhere]:
        sim.add_vault(vault)
    sim.page_size = 2
    kind = "resourceType eq 'Microsoft.RecoveryServices/vaults' or resourceType eq 'Microsoft.DataProtection/x'"
    seen = _every_page(_list(sim, GROUP, **{"api-version": "2021-04-01", "$filter": kind}))
    assert [s[0] for s in seen] == vaults and {s[1] for s in seen} == {"Microsoft.RecoveryServices/vaults"}
    assert [s[2] for s in seen] == [f"v-{n}" for n in range(5)]
    whole = _every_page(_list(sim, f"/subscriptions/{SUB}", **{"api-version": "2021-04-01", "$filter": kind}))
    assert [s[0] for s in whole] == [*vaults, elsewhere]
    other = _list(sim, GROUP, **{"api-version": "2021-04-01", "$filter": "resourceType eq 'Microsoft.Compute/disks'"})
    assert other.json() == {"value": []}
    assert sim.stats()["by_kind"]["vault_list"] >= 4


def test_the_simulator_refuses_a_resource_list_at_a_wrong_api_version_or_filter(sim: BackupSimulator) -> None:
    assert _list(sim, GROUP).json()["error"]["code"] == "MissingApiVersionParameter"
    assert _list(sim, GROUP, **{"api-version": "2025-08-01"}).json()["error"]["code"] == "NoRegisteredProviderFound"
    refused = _list(sim, GROUP, **{"api-version": "2021-04-01", "$filter": "name eq 'v-one'"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "InvalidFilterInQueryString"
    assert requests.get(f"{sim.base_url}{GROUP}/resources", params={"api-version": "2021-04-01"},
                        timeout=10).status_code == 401


def test_a_summary_keeps_its_counts_whole_and_cuts_its_lists_to_fit_a_queue_message() -> None:
    from datetime import date

    from jobs.domain.references import JobRef, VaultRef
    from jobs.domain.tracked_item import TrackedItem
    from jobs.flows.watches import SUMMARY_MAX_BYTES, summarize

    vault = VaultRef.from_resource_id(VAULT)
    now = datetime(2026, 12, 5, tzinfo=UTC)
    items = []
    for n in range(400):
        item = TrackedItem.for_job(JobRef.create(vault, f"00000000-0000-4000-8000-{n:012d}"), now, now)
        item.result_status = "Failed" if n % 2 else "CompletedWithWarnings"
        item.errors = [{"code": "1", "message": "x" * 300, "recommendations": []}]
        items.append(item)
    summary = summarize("w", date(2026, 12, 4), items)
    assert summary["counts"] == {"CompletedWithWarnings": 200, "Failed": 200} and summary["total"] == 400
    assert summary["truncated"] is True and 0 < len(summary["failed"]) < 200 and 0 < len(summary["warned"]) < 200
    assert len(json.dumps(summary, separators=(",", ":"))) <= SUMMARY_MAX_BYTES
    small = summarize("w", date(2026, 12, 4), items[:4])
    assert "truncated" not in small and len(small["failed"]) == len(small["warned"]) == 2
