"""The architecture a newcomer reads must match the files: the README's package table names every package and
top-level module, and the tree of every file (docs/architecture.md) names exactly the repository's."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_tree() -> list[str]:
    """Every path the tree names (the code block of docs/architecture.md that starts with ``function_app.py``)."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = re.search(r"```\n(function_app\.py.*?)```", text, re.S)
    assert block, "docs/architecture.md has no tree starting with function_app.py"
    stack: list[str] = []
    paths = []
    for line in block.group(1).splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        assert indent % 2 == 0, line
        level = indent // 2
        names = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
        del stack[level:]
        for name in (n.strip() for n in names.split(",")):
            paths.append("/".join([*stack, name]).rstrip("/"))
        if names.endswith("/") and "," not in names:
            stack.append(names.rstrip("/"))
    return paths


def test_every_path_in_the_readme_tree_exists() -> None:
    missing = [path for path in readme_tree() if not (ROOT / path).exists()]
    assert missing == []


def test_every_module_of_the_app_is_in_the_readme_tree() -> None:
    listed = set(readme_tree())
    modules = sorted(
        p.relative_to(ROOT).as_posix() for p in (ROOT / "jobs").rglob("*.py") if "__pycache__" not in p.parts
    )
    unlisted = [m for m in modules if m not in listed and not m.endswith("/__init__.py")]
    assert unlisted == []
    packages = {m.rsplit("/", 1)[0] for m in modules}
    assert packages <= listed


def readme_package_table() -> str:
    """The README's package table: the rows of the table under Architecture whose first cell is a path."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert rows, "the README's Architecture section has no package table"
    return "\n".join(rows)


def test_the_readme_package_table_names_every_package_and_module_a_newcomer_meets() -> None:
    table = readme_package_table()
    cells = {row.split("|")[1].strip().strip("`") for row in table.splitlines()}
    packages = sorted(p.relative_to(ROOT).as_posix() + "/" for p in (ROOT / "jobs").iterdir()
                      if p.is_dir() and (p / "__init__.py").exists())
    top_modules = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "jobs").glob("*.py")
                         if p.name not in ("__init__.py", "__main__.py"))
    assert [name for name in [*packages, *top_modules, "function_app.py", "devtools/"] if name not in cells] == []
    # the modules of the flows and outputs, each named in its package's row
    for package in ("flows", "outputs"):
        row = next((r for r in table.splitlines() if r.startswith(f"| `jobs/{package}/`")), "")
        modules = sorted(p.stem for p in (ROOT / "jobs" / package).glob("*.py") if p.name != "__init__.py")
        assert [m for m in modules if f"`{m}`" not in row] == [], package
