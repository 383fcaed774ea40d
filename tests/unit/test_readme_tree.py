"""The README's tree is the architecture a newcomer reads: it must match the files."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_tree() -> list[str]:
    """Every path the README's tree names (the code block that starts with ``function_app.py``)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```\n(function_app\.py.*?)```", text, re.S)
    assert block, "the README has no tree starting with function_app.py"
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
