"""No module of ``devtools/`` imports a private (underscored) name of ``jobs``: what a tool needs from the tracker
is public, typed and documented there, or the tool does without it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def private_imports(source: str) -> list[str]:
    """Every ``jobs`` name ``source`` imports whose name or module path has a part starting with an underscore
    (``from jobs.x import _y``, ``from jobs._x import y``, ``import jobs._x``), and every ``jobs.<...>._y``
    attribute it reads."""
    found: list[str] = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            if parts[0] != "jobs":
                continue
            for alias in node.names:
                if any(part.startswith("_") for part in [*parts, alias.name]):
                    found.append(f"from {node.module} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "jobs" and any(part.startswith("_") for part in parts):
                    found.append(f"import {alias.name}")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            chain = node.value
            while isinstance(chain, ast.Attribute):
                chain = chain.value
            if isinstance(chain, ast.Name) and chain.id == "jobs":
                found.append(ast.unparse(node))
    return found


def test_the_check_sees_each_way_of_reaching_a_private_name() -> None:
    assert private_imports("from jobs.storage.job_store import SUBSCRIBER_PREFIX, _ended_keys") == [
        "from jobs.storage.job_store import _ended_keys"]
    assert private_imports("from jobs.storage._x import y") == ["from jobs.storage._x import y"]
    assert private_imports("import jobs.storage._x as x") == ["import jobs.storage._x"]
    assert private_imports("import jobs.storage\nk = jobs.storage.job_store._ended_keys") == [
        "jobs.storage.job_store._ended_keys"]
    assert private_imports("from jobs.storage.job_store import index_partition\nfrom ._model import _load") == []


def test_no_devtools_module_imports_a_private_name_of_jobs() -> None:
    modules = sorted((ROOT / "devtools").rglob("*.py"))
    assert len(modules) > 10  # the walk found the package
    offenders = {str(path.relative_to(ROOT)): names for path in modules
                 if (names := private_imports(path.read_text(encoding="utf-8")))}
    assert offenders == {}
