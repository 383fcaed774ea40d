"""The Tracker is the one front door: adapters call its public methods and read none of its parts.

The adapters are the modules that turn a trigger, a request or a command into a call of the tracker. Each use of a
tracker in them (``tracker``, ``self.tracker``, ``get_tracker()``, ``self._tracker()``, ``_tracker()``) must be a
call of one of the Tracker's public methods: reading ``tracker.store`` or ``tracker.settings`` in an adapter puts
a rule in the wrong place. The parts themselves are private to the Tracker.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from jobs.config import Settings
from jobs.tracker import Tracker

ROOT = Path(__file__).resolve().parents[2]
ADAPTERS = ("jobs/http_api.py", "jobs/http_functions.py", "jobs/functions.py", "jobs/cli.py", "jobs/local_host.py",
            "jobs/local_http.py")
TRACKER_CALLS = {"get_tracker", "_get_tracker", "_tracker"}


def _front_door() -> set[str]:
    return {name for name, member in inspect.getmembers(Tracker, inspect.isfunction) if not name.startswith("_")}


def _is_tracker(node: ast.expr) -> bool:
    """Whether ``node`` is an expression that names the tracker in an adapter."""
    if isinstance(node, ast.Name):
        return node.id == "tracker"
    if isinstance(node, ast.Attribute):
        return node.attr == "tracker" and isinstance(node.value, ast.Name) and node.value.id == "self"
    if isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        return name in TRACKER_CALLS
    return False


def _tracker_uses(source: str) -> list[tuple[int, str]]:
    """Every ``<tracker>.<name>`` in ``source``, with its line."""
    return [(node.lineno, node.attr) for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Attribute) and _is_tracker(node.value)]


def test_adapters_use_only_the_trackers_public_methods() -> None:
    allowed = _front_door()
    wrong = [f"{path}:{line} tracker.{name}" for path in ADAPTERS
             for line, name in _tracker_uses((ROOT / path).read_text()) if name not in allowed]
    assert wrong == []


def test_the_guard_sees_a_part_read_through_every_spelling_of_the_tracker() -> None:
    source = ("tracker.store.get(x)\nself.tracker.settings.table\nget_tracker().intake.parse(b)\n"
              "self._tracker().store\ntracker.run_poll_round()\n")
    uses = _tracker_uses(source)
    assert sorted(name for _, name in uses if name not in _front_door()) == ["intake", "settings", "store", "store"]


def test_the_trackers_parts_are_private() -> None:
    tracker = Tracker(Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true",
                                         "JOBS_ARM_TOKEN": "t", "JOBS_WEBHOOK_URLS": ""}))
    public = sorted(name for name in vars(tracker) if not name.startswith("_"))
    assert public == ["settings"]  # read-only configuration; everything else is reached through methods


def test_an_ended_job_goes_from_the_poll_worker_to_the_publisher() -> None:
    """Not back through the intake: the worker's ``conclude`` is the publisher's, and neither module imports the
    intake."""
    tracker = Tracker(Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true",
                                         "JOBS_ARM_TOKEN": "t", "JOBS_WEBHOOK_URLS": ""}))
    assert tracker._poller.conclude.__self__ is tracker._publisher
    for module in ("jobs/flows/poll_worker.py", "jobs/flows/publisher.py"):
        tree = ast.parse((ROOT / module).read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert "jobs.flows.intake" not in imported, module


def _reads_strategy(node: ast.AST) -> bool:
    """``settings.poll_strategy`` or ``settings.resource_graph`` (also ``self.settings.…``)."""
    if not (isinstance(node, ast.Attribute) and node.attr in ("poll_strategy", "resource_graph")):
        return False
    owner = node.value
    return (isinstance(owner, ast.Name) and owner.id == "settings") or (
        isinstance(owner, ast.Attribute) and owner.attr in ("settings", "_settings"))


def test_only_the_policy_reads_the_strategy_settings() -> None:
    readers = sorted(
        path.relative_to(ROOT).as_posix() for path in (ROOT / "jobs").rglob("*.py")
        if any(_reads_strategy(node) for node in ast.walk(ast.parse(path.read_text())))
    )
    assert readers == ["jobs/flows/policy.py"]
