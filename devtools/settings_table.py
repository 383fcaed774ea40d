"""The README's settings table, generated from ``jobs.config.SETTINGS``.

``python -m devtools.settings_table`` prints it, ``--write`` puts it into README.md between the marker lines, and
``--check`` exits 1 when the README's table is not the code's (``tests/unit/test_settings_table.py`` checks the same).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

from jobs.config import SETTINGS
from jobs.setting import Setting

__all__ = ["END", "README", "START", "readme_table", "render", "with_table"]

README = Path(__file__).resolve().parent.parent / "README.md"
START = "<!-- settings-table:start -->"
END = "<!-- settings-table:end -->"


def render(settings: Iterable[Setting] = SETTINGS) -> str:
    """The Markdown table: name, default, what it accepts (its bounds), meaning; one row per setting."""
    lines = ["| name | default | accepts | meaning |", "|---|---|---|---|"]
    for setting in settings:
        cells = (f"`{setting.name}`", setting.default_text, setting.parse.accepts, setting.doc)
        if any("|" in cell or "\n" in cell for cell in cells):
            raise ValueError(f"{setting.name}: a table cell cannot hold '|' or a line break")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _split(text: str) -> tuple[str, str, str]:
    head, start, rest = text.partition(START + "\n")
    body, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"README.md must hold the lines {START} and {END}")
    return head + start, body, end + tail


def readme_table(text: str) -> str:
    """What the README holds between the markers."""
    return _split(text)[1]


def with_table(text: str, table: str) -> str:
    """``text`` with ``table`` between the markers."""
    head, _, tail = _split(text)
    return head + table + tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.settings_table", description=__doc__.split("\n")[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help="write the table into README.md")
    action.add_argument("--check", action="store_true", help="exit 1 when README.md's table is not the code's")
    args = parser.parse_args(argv)
    table = render()
    if args.write:
        README.write_text(with_table(README.read_text(encoding="utf-8"), table), encoding="utf-8")
    elif args.check:
        if readme_table(README.read_text(encoding="utf-8")) != table:
            print("README.md's settings table is not the code's: python -m devtools.settings_table --write",
                  file=sys.stderr)
            return 1
    else:
        sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
