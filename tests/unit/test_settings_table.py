"""The settings table (``jobs.config.SETTINGS``) is the one place a setting is declared: the README's table, ``run
--help``, ``local.settings.example.json`` and the ``Settings`` object all agree with it.

Not for mutation testing: mutmut's copy of the project has no README.md (what the table holds is tested in
test_config.py)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from devtools.settings_table import README, readme_table, render, with_table
from jobs.cli import main
from jobs.config import SETTINGS, Settings
from jobs.providers import PROVIDERS
from jobs.setting import Number, Setting

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_table_is_the_codes() -> None:
    assert readme_table(README.read_text(encoding="utf-8")) == render(), (
        "README.md's settings table is not the code's: run python -m devtools.settings_table --write"
    )


def _changed_default(setting: Setting) -> Setting:
    return dataclasses.replace(setting, default=f"{setting.default}0")


@pytest.mark.parametrize(
    "change",
    [
        lambda table: table[:-1],  # a setting dropped
        lambda table: (*table, Setting("JOBS_NEW", "new", Number(1), "1", "a new setting")),  # one added
        lambda table: tuple(_changed_default(s) if s.name == "JOBS_POLL_SECONDS" else s for s in table),
        lambda table: tuple(dataclasses.replace(s, parse=Number(2, whole=True)) if s.name == "JOBS_POLL_SECONDS"
                            else s for s in table),  # a bound changed
    ],
    ids=["dropped", "added", "default", "bound"],
)
def test_a_change_to_the_table_is_a_readme_that_disagrees(change: object) -> None:
    readme = README.read_text(encoding="utf-8")
    assert readme_table(readme) != render(change(SETTINGS))  # type: ignore[operator]


def test_writing_the_table_replaces_only_what_is_between_the_markers() -> None:
    text = "# Title\n\n<!-- settings-table:start -->\nold\n<!-- settings-table:end -->\n\nafter\n"
    assert with_table(text, "| new |\n") == (
        "# Title\n\n<!-- settings-table:start -->\n| new |\n<!-- settings-table:end -->\n\nafter\n"
    )
    with pytest.raises(ValueError, match="settings-table:start"):
        readme_table("no markers here")


def test_run_help_shows_each_default_of_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "--help"])
    assert exited.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())
    defaults = [s for s in SETTINGS if s.default is not None]
    assert {"JOBS_POLL_SECONDS", "JOBS_ARM_API_VERSION"} <= {s.name for s in defaults}
    for setting in defaults:
        assert f"{setting.name}={setting.default}" in shown, setting.name
    assert "AzureWebJobsStorage (required)" in shown


def test_each_setting_is_declared_once_and_fills_one_attribute() -> None:
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    attributes = [s.attribute for s in SETTINGS if s.attribute]
    assert len(attributes) == len(set(attributes))
    derived = {"api_versions", "webhook_secret_problem", "eventgrid_key_problem"}
    assert set(attributes) | derived == {f.name for f in dataclasses.fields(Settings)}
    assert {kind.api_version_setting for kind in PROVIDERS} <= set(names)


def test_the_example_local_settings_hold_the_tables_defaults() -> None:
    values = json.loads((ROOT / "local.settings.example.json").read_text(encoding="utf-8"))["Values"]
    table = {s.name: s for s in SETTINGS}
    for name, value in values.items():
        if name in ("FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage"):
            continue
        assert name in table, f"{name} is not a setting of the table"
        assert value == (table[name].default or ""), f"{name}: {value!r} is not the table's default"
