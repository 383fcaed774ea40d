"""Issue 20, point 9: a nextLink on ARM_ENDPOINT with its default port written out is ARM_ENDPOINT; a list whose
nextLink points elsewhere fails for a reason that will not change, and is remembered as a 400 is.

The simulator is served in this process through the ARM transport's seam, as if at ``https://management.azure.com``
(or ``http://127.0.0.1``; nothing listens there: each request goes to the simulator's handler), writing its
nextLinks with the scheme's default port (``:443``, ``:80``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from devtools.simulator import BackupSimulator, JobScript
from jobs.arm import ArmClient, StaticToken
from jobs.config import Settings
from jobs.tracker import Tracker
from tests.conftest import VAULT, ManualClock, poll_once

AZURE = "https://management.azure.com"


@pytest.fixture
def azure_like() -> Iterator[BackupSimulator]:
    simulator = BackupSimulator(token="sim-token")
    simulator.add_vault(VAULT)
    simulator.page_size = 2
    simulator.next_link_default_port = True
    yield simulator


def _tracker(env: dict[str, str], clock: ManualClock, simulator: BackupSimulator, endpoint: str,
             served_at: str = AZURE) -> Tracker:
    """The tracker on ``endpoint``, its requests served by ``simulator``, which says it is at ``served_at``."""
    # JOBS_END_HINTS off: every job is due every round (a GET's estimate would let it rest), so each round lists
    settings = Settings.from_env({**env, "ARM_ENDPOINT": endpoint, "JOBS_END_HINTS": "off"})
    arm = ArmClient(endpoint, StaticToken("sim-token"), http=simulator.in_process(served_at))
    tracker = Tracker(settings, arm=arm, clock=clock)
    tracker.setup()
    return tracker


def _track_five(tracker: Tracker, simulator: BackupSimulator) -> None:
    for _ in range(5):  # three pages of the running list
        job_id = simulator.add_job(VAULT, JobScript(duration=3600))
        tracker.accept_message(json.dumps({"jobId": job_id, "vaultId": VAULT}))


@pytest.mark.parametrize("endpoint", [AZURE, "http://127.0.0.1"])  # :443 and :80 written out
def test_point9_next_link_default_port(azurite, env, clock, azure_like, endpoint):
    tracker = _tracker(env, clock, azure_like, endpoint, served_at=endpoint)
    _track_five(tracker, azure_like)
    for _ in range(3):
        azure_like.reset_stats()
        clock.advance(tracker.settings.poll_seconds)
        assert poll_once(tracker) == 1
        stats = azure_like.stats()
        assert stats["by_kind"]["job_list"] == stats["list_pages"] == 3  # every page, through ``:443`` links
        assert stats["job_gets"] == {}  # no fallback to one GET per job


def test_point9_next_link_elsewhere_is_remembered_like_a_400(azurite, env, clock, azure_like, caplog):
    """ARM_ENDPOINT on port 8443: the simulator's ``:443`` links point elsewhere. The list is not followed, and it
    is not asked again every round: the jobs are read one by one, the list left alone for a while."""
    tracker = _tracker(env, clock, azure_like, f"{AZURE}:8443")
    _track_five(tracker, azure_like)
    lists = []
    for _ in range(3):
        azure_like.reset_stats()
        clock.advance(tracker.settings.poll_seconds)
        assert poll_once(tracker) == 1
        stats = azure_like.stats()
        lists.append(stats["list_pages"])
        assert sum(stats["job_gets"].values()) == 5  # every job still read
    assert lists == [1, 0, 0]  # one page, its link refused, then not listed again
    assert any("UnexpectedNextLink" in r.getMessage() and "asking per job for" in r.getMessage()
               for r in caplog.records)
