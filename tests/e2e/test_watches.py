"""Watching whole vaults (docs/reference.md, "Watching vaults"), end to end on Azurite and the simulator.

Jobs nobody handed in (scheduled backups, portal restores) are found by listing the watched vaults and reported like
handed-in ones; a job both watched and handed in is polled once and reported once per subscriber; jobs of other
vaults, and jobs that ended before the watch, are not; a resource group's new vault is picked up; each day ends
with a summary that adds up. Most rounds are driven by hand on a clock the test moves; the latency test runs the
tracker as ``python -m jobs run`` does, on the wall clock.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema

from devtools.simulator import JobScript
from jobs.config import Settings
from jobs.tracker import Tracker
from tests.conftest import ROOT, VAULT, ManualClock, drain, poll_once, results, tracker_with_clock, wait_until

GROUP = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/backup-rg"
OTHER_VAULT = ("/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/other-rg"
               "/providers/Microsoft.RecoveryServices/vaults/other-vault")
NEW_VAULT = f"{GROUP}/providers/Microsoft.RecoveryServices/vaults/new-vault"


def _rounds(tracker: Tracker, clock: ManualClock, count: int, seconds: float = 1.0) -> None:
    for _ in range(count):
        clock.advance(seconds)
        poll_once(tracker)


def _by_job(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        found.setdefault(event["data"]["jobId"], []).append(event)
    return found


def test_scheduled_jobs_nobody_handed_in_are_reported_within_the_latency_goal(
    simulator, env: dict[str, str], run_host, https_receiver
) -> None:
    tracker = Tracker(Settings.from_env({**env, "JOBS_WATCH_SCOPES": VAULT, "JOBS_WATCH_SECONDS": "1",
                                         "JOBS_INLINE_POLL_MAX": "100"}))
    tracker.setup()
    tracker.add_watch("ops", [VAULT], callback_url=https_receiver.url, correlation_id="ops-team")
    simulator.add_vault(VAULT)
    run_host(for_tracker=tracker)
    scheduled = [simulator.add_job(VAULT, JobScript(duration=2, final_status=status, user_triggered=False))
                 for status in ("Completed", "Failed")]
    ends = {job_id: time.monotonic() + 2 for job_id in scheduled}

    seen: dict[str, float] = {}
    events: list[dict[str, Any]] = []

    def both_reported() -> bool:
        for event in results(tracker):
            events.append(event)
            seen.setdefault(event["data"]["jobId"], time.monotonic())
        return set(scheduled) <= set(seen) and len(events) >= 4

    assert wait_until(both_reported, timeout=30)
    schema = json.loads((ROOT / "schemas" / "backup-job-result.schema.json").read_text())
    for event in events:
        jsonschema.validate(event, schema)
    # The latency goal (docs/reference.md, Latency): at most JOBS_WATCH_SECONDS plus a round after the job's end
    # (a minute and a half with the defaults); here the periods are 1 s: 2 s, and 5 s for a loaded machine.
    assert max(seen[job] - ends[job] for job in scheduled) < 2 + 5
    by_job = _by_job(events)
    for job_id in scheduled:  # one event for each watch: the settings' and ops
        assert sorted(e["data"]["watch"] for e in by_job[job_id]) == ["ops", "settings"]
        assert {e["data"]["correlationId"] for e in by_job[job_id] if e["data"]["watch"] == "ops"} == {"ops-team"}
    # The watch's callbackUrl got its events (and only its own), signed like any other.
    assert https_receiver.wait_for(lambda got: len(got) >= 2, timeout=15)
    delivered = https_receiver.delivered()
    assert {r.json()["data"]["jobId"] for r in delivered} == set(scheduled) and all(r.verified for r in delivered)
    assert {r.json()["data"]["watch"] for r in delivered} == {"ops"}


def test_a_job_both_watched_and_handed_in_is_polled_once_and_reported_once_per_subscriber(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    simulator.wall_clock = clock  # Azure's times are the test's clock
    tracker = tracker_with_clock(env, clock, JOBS_WATCH_SCOPES=VAULT, JOBS_WATCH_SECONDS="1")
    simulator.add_vault(VAULT)
    poll_once(tracker)  # the watch begins
    job_id = simulator.add_job(VAULT, JobScript(duration=600))
    # Handed in with no subscriber fields, as the watch's own subscriber has none: still two subscribers.
    tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT}))
    simulator.reset_stats()

    _rounds(tracker, clock, 3)
    simulator.cancel_job(VAULT, job_id)
    wait_until(lambda: simulator.job_resource(VAULT, job_id)["properties"]["status"] == "Cancelled", timeout=10)
    _rounds(tracker, clock, 2)

    events = results(tracker)
    assert len(events) == 2 and events[0]["id"] != events[1]["id"]  # one per subscriber
    assert sorted(str(e["data"].get("watch")) for e in events) == ["None", "settings"]
    assert all(e["data"]["status"] == "Cancelled" for e in events)
    stats = simulator.stats()
    # One poll chain: the job's one item is read in detail once (when it left the running list), never per
    # subscriber; each round lists the vault once for its running jobs and once for what started.
    assert stats["job_gets"] == {job_id: 1}
    assert stats["by_kind"]["job_list"] <= 2 * 5
    assert len(tracker.list_items("all") or []) == 1
    details = tracker.find_item(job_id)  # what python -m jobs status shows: both subscribers, one a watch's
    assert details is not None and sorted(str(s.subscriber.watch) for s in details.subscribers) == ["None", "settings"]


def test_jobs_of_unwatched_vaults_and_jobs_that_ended_before_the_watch_are_not_reported(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    simulator.wall_clock = clock  # Azure's times are the test's clock
    running_before = simulator.add_job(VAULT, JobScript(duration=2))  # still running when the watch begins
    elsewhere = simulator.add_job(OTHER_VAULT, JobScript(duration=0))
    clock.advance(1190)  # more than OVERLAP later: only the first listing's running jobs reach back that far
    ended_before = simulator.add_job(VAULT, JobScript(duration=0))  # within the overlap, but ended before
    clock.advance(10)
    tracker = tracker_with_clock(env, clock, JOBS_WATCH_SCOPES=VAULT, JOBS_WATCH_SECONDS="1")
    poll_once(tracker)  # the watch begins
    started_after = simulator.add_job(VAULT, JobScript(duration=0, final_status="Failed"))
    assert wait_until(lambda: simulator.job_resource(VAULT, running_before)["properties"]["status"] == "Completed",
                      10)

    _rounds(tracker, clock, 4)

    reported = {e["data"]["jobId"] for e in results(tracker)}
    assert reported == {running_before, started_after}
    assert ended_before not in reported and elsewhere not in reported
    assert {w.watch.name: w.vaults for w in tracker.list_watches()} == {"settings": [VAULT]}


def test_a_resource_group_scope_picks_up_a_vault_created_after_the_watch_began(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    simulator.wall_clock = clock  # Azure's times follow the test's clock, which passes a minute below
    simulator.add_vault(VAULT)
    simulator.add_vault(OTHER_VAULT)  # another resource group: not in the scope
    tracker = tracker_with_clock(env, clock, JOBS_WATCH_SCOPES=GROUP, JOBS_WATCH_SECONDS="1",
                                 JOBS_WATCH_EXPAND_SECONDS="60")
    poll_once(tracker)
    assert [w.vaults for w in tracker.list_watches()] == [[VAULT]]
    simulator.add_vault(NEW_VAULT)
    job_id = simulator.add_job(NEW_VAULT, JobScript(duration=0, final_status="CompletedWithWarnings"))
    simulator.add_job(OTHER_VAULT, JobScript(duration=0))
    simulator.reset_stats()

    _rounds(tracker, clock, 3)  # within JOBS_WATCH_EXPAND_SECONDS: the group is not listed again yet
    assert results(tracker) == [] and simulator.stats()["by_kind"]["vault_list"] == 0
    clock.advance(60)
    _rounds(tracker, clock, 3)

    assert simulator.stats()["by_kind"]["vault_list"] == 1
    assert sorted(w.vaults for w in tracker.list_watches())[0] == sorted([VAULT, NEW_VAULT])
    events = results(tracker)
    assert [(e["data"]["jobId"], e["data"]["status"], e["data"]["watch"]) for e in events] == [
        (job_id, "CompletedWithWarnings", "settings")]


def test_the_daily_summary_adds_up(simulator, env: dict[str, str], clock: ManualClock, https_receiver) -> None:
    simulator.wall_clock = clock  # Azure's times are the test's clock, which passes midnight below
    tracker = tracker_with_clock(env, clock, JOBS_WATCH_SECONDS="1")
    tracker.add_watch("daily", [VAULT], correlation_id="digest", filters={"operation": "Backup"}, daily_summary=True,
                      callback_url=https_receiver.url)
    tracker.add_watch("quiet", [VAULT])  # no summary asked for
    simulator.add_vault(VAULT)
    poll_once(tracker)
    outcomes = ["Completed", "Completed", "Failed", "CompletedWithWarnings", "Cancelled"]
    jobs = {simulator.add_job(VAULT, JobScript(duration=0, final_status=status)): status for status in outcomes}
    restore = simulator.add_job(VAULT, JobScript(duration=0, operation="Restore"))  # not the watch's: a filter
    _rounds(tracker, clock, 4)
    events = [e for e in results(tracker) if e["data"]["watch"] == "daily"]
    assert sorted(e["data"]["status"] for e in events) == sorted(outcomes)
    assert restore not in {e["data"]["jobId"] for e in events}

    midnight = datetime.combine(clock.now.date() + timedelta(days=1), datetime.min.time(), UTC)
    clock.now = midnight + timedelta(seconds=30)
    poll_once(tracker)
    _rounds(tracker, clock, 2)  # once per watch and day

    summaries = [e for e in results(tracker) if e["type"] == "BackupJobs.DailySummary"]
    assert len(summaries) == 1  # the daily watch's, once
    summary = summaries[0]
    jsonschema.validate(summary, json.loads((ROOT / "schemas" / "backup-jobs-daily-summary.schema.json").read_text()))
    day = (midnight - timedelta(days=1)).date().isoformat()
    assert summary["subject"] == f"days/{day}" and summary["source"] == "/watches/daily"
    data = summary["data"]
    assert data["day"] == day and data["watch"] == "daily" and data["correlationId"] == "digest"
    assert data["counts"] == {"Cancelled": 1, "Completed": 2, "CompletedWithWarnings": 1, "Failed": 1}
    assert data["total"] == sum(data["counts"].values()) == len(jobs)
    failed = {job for job, status in jobs.items() if status == "Failed"}
    warned = {job for job, status in jobs.items() if status == "CompletedWithWarnings"}
    assert {entry["jobId"] for entry in data["failed"]} == failed
    assert {entry["jobId"] for entry in data["warned"]} == warned
    assert all(entry["errors"] for entry in data["failed"])  # Azure's errorDetails, as the job's event has them
    assert drain(tracker._storage.queue(tracker.settings.poll_queue)) == []
    # The watch's callbackUrl gets the same summary (the delivery rebuilds it from the table), signed.
    https_receiver.respond_with(200)
    for message in drain(tracker._storage.queue(tracker.settings.deliver_queue)):
        if json.loads(message)["tracking_id"].startswith("summary-"):  # the jobs' own deliveries are tested elsewhere
            tracker.handle_delivery_message(message)
    delivered = [r for r in https_receiver.delivered() if r.json()["type"] == "BackupJobs.DailySummary"]
    assert [r.json() for r in delivered] == [summary] and delivered[0].verified


def test_vaults_the_rounds_time_does_not_reach_are_listed_through_the_poll_queue(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    simulator.wall_clock = clock
    vaults = [f"{GROUP}/providers/Microsoft.RecoveryServices/vaults/many-{n}" for n in range(3)]
    ticks = iter(range(0, 10**9, 1000))  # each look at the time finds the round's time spent
    tracker = Tracker(Settings.from_env({**env, "JOBS_WATCH_SCOPES": ",".join(vaults), "JOBS_WATCH_SECONDS": "1"}),
                      clock=clock, monotonic=lambda: float(next(ticks)))
    tracker.setup()
    jobs = {simulator.add_job(vault, JobScript(duration=0)) for vault in vaults}
    simulator.reset_stats()

    tracker.run_poll_round()
    messages = drain(tracker._storage.queue(tracker.settings.poll_queue))
    assert simulator.stats()["by_kind"]["job_list"] == 0  # the round listed none itself
    assert sorted(json.loads(m)["vaultId"] for m in messages) == sorted(vaults)
    clock.advance(1)
    tracker.run_poll_round()  # not handed out again before their next listing
    assert drain(tracker._storage.queue(tracker.settings.poll_queue)) == []
    for message in messages:  # as the poll-queue trigger hands them over
        tracker.handle_poll_message(message)
    assert simulator.stats()["by_kind"]["job_list"] == 2 * 3  # a vault's first listing: what started, what runs

    _rounds(tracker, clock, 2)
    assert {e["data"]["jobId"] for e in results(tracker)} == jobs


def test_the_watch_command_adds_lists_and_removes_watches_and_says_what_is_wrong_in_one_line(
    env: dict[str, str], monkeypatch, capsys, tmp_path
) -> None:
    from jobs.cli import main

    monkeypatch.chdir(tmp_path)  # no local.settings.json
    for name, value in {**env, "JOBS_WATCH_SCOPES": VAULT}.items():
        monkeypatch.setenv(name, value)
    assert main(["watch", "add", "ops", "--scope", GROUP, "--scope", OTHER_VAULT, "--correlation-id", "team",
                 "--context", '{"team": "ops"}', "--job-type", "AzureIaaSVMJob", "--daily-summary"]) == 0
    assert "watching 2 scopes as 'ops'" in capsys.readouterr().out
    assert main(["watch", "list"]) == 0
    listing = capsys.readouterr().out
    assert "ops" in listing and "settings" in listing and "jobType=AzureIaaSVMJob, daily summary" in listing
    assert main(["watch", "add", "bad", "--scope", "/subscriptions/x"]) == 2
    assert capsys.readouterr().err == "error: scope subscription id must be a GUID, got 'x'\n"
    assert main(["watch", "add", "bad", "--scope", GROUP, "--context", "[1]"]) == 2
    assert "context must be a JSON object" in capsys.readouterr().err
    assert main(["watch", "remove", "settings"]) == 2
    assert "unset the setting" in capsys.readouterr().err
    assert main(["watch", "remove", "ops"]) == 0 and main(["watch", "remove", "ops"]) == 0
    assert "nothing to stop" in capsys.readouterr().out


def test_a_vault_whose_listing_azure_refuses_keeps_its_mark_and_is_caught_up_once_allowed(
    simulator, env: dict[str, str], clock: ManualClock, caplog
) -> None:
    simulator.wall_clock = clock
    simulator.add_vault(VAULT)
    tracker = tracker_with_clock(env, clock, JOBS_WATCH_SCOPES=VAULT, JOBS_WATCH_SECONDS="1")
    poll_once(tracker)  # the watch begins
    simulator.deny_vault(VAULT)  # the identity loses Backup Reader
    job_id = simulator.add_job(VAULT, JobScript(duration=0, final_status="Failed"))
    with caplog.at_level("WARNING", logger="jobs.flows.watches"):
        _rounds(tracker, clock, 2)
    assert results(tracker) == []
    assert any("unread" in r.getMessage() and "403 AuthorizationFailed" in r.getMessage() for r in caplog.records)

    simulator.allow_vault(VAULT)
    _rounds(tracker, clock, 2)  # the next listing covers what started while it was refused
    assert [(e["data"]["jobId"], e["data"]["status"]) for e in results(tracker)] == [(job_id, "Failed")]


BACKUP_VAULT = ("/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/backup-rg"
                "/providers/Microsoft.DataProtection/backupVaults/bv-watched")


def test_a_watched_backup_vault_reports_its_scheduled_jobs_and_not_those_that_ended_before(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    """The other kind of vault: a Backup vault's list (Jobs_List, no filter, every page) is how its new jobs are
    found; a blob and a disk backup nobody handed in are reported with the watch's name, one ended before is not."""
    simulator.wall_clock = clock  # Azure's times are the test's clock
    simulator.add_vault(BACKUP_VAULT)
    ended_before = simulator.add_job(BACKUP_VAULT, JobScript(duration=0, data_source="blob"))
    clock.advance(10)
    tracker = tracker_with_clock(env, clock, JOBS_WATCH_SCOPES=BACKUP_VAULT, JOBS_WATCH_SECONDS="1")
    poll_once(tracker)  # the watch begins
    scheduled = [simulator.add_job(BACKUP_VAULT, JobScript(duration=0, data_source=source, final_status=status))
                 for source, status in (("blob", "Completed"), ("disk", "Failed"))]

    _rounds(tracker, clock, 4)

    events = results(tracker)
    assert sorted(e["data"]["jobId"] for e in events) == sorted(scheduled)
    assert ended_before not in {e["data"]["jobId"] for e in events}
    assert {e["data"]["watch"] for e in events} == {"settings"}
    assert {e["data"]["vaultKind"] for e in events} == {"BackupVault"}
    assert sorted(e["type"] for e in events) == ["BackupJob.Completed", "BackupJob.Failed"]


def test_a_resource_group_scope_takes_in_its_backup_vaults_too(
    simulator, env: dict[str, str], clock: ManualClock
) -> None:
    """One resource list (Resource Manager's generic one, filtered on every registered vault type) finds both kinds."""
    simulator.wall_clock = clock
    simulator.add_vault(VAULT)
    simulator.add_vault(BACKUP_VAULT)  # in the same resource group
    tracker = tracker_with_clock(env, clock, JOBS_WATCH_SCOPES=GROUP, JOBS_WATCH_SECONDS="1")
    poll_once(tracker)
    assert sorted(v.lower() for w in tracker.list_watches() for v in w.vaults) == sorted(
        [VAULT.lower(), BACKUP_VAULT.lower()])
    job_id = simulator.add_job(BACKUP_VAULT, JobScript(duration=0, data_source="disk"))
    _rounds(tracker, clock, 3)
    assert [e["data"]["jobId"] for e in results(tracker)] == [job_id]
