"""The deployment package as Functions builds it: the repository minus ``.funcignore``, in a folder of its own.

It must index every function, run the operator's command line, and hold nothing of the local tooling.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLING = ROOT / "devtools"


def _patterns() -> list[str]:
    lines = (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _ignored(relative: Path, is_dir: bool, patterns: list[str]) -> bool:
    """gitignore-style matching as ``.funcignore`` uses it: ``name``, ``name/`` (folders), globs, ``a/b`` anchored."""
    text = relative.as_posix()
    for pattern in patterns:
        folder_only = pattern.endswith("/")
        pattern = pattern.rstrip("/")
        if folder_only and not is_dir:
            continue
        if "/" in pattern.lstrip("/"):
            if fnmatch.fnmatch(text, pattern.lstrip("/")):
                return True
        elif fnmatch.fnmatch(relative.name, pattern):
            return True
    return False


def build_package(target: Path) -> Path:
    """Copies the repository into ``target`` the way ``func azure functionapp publish`` / ``azd deploy`` pack it."""
    patterns = _patterns()
    for folder, dirs, files in os.walk(ROOT):
        here = Path(folder).relative_to(ROOT)
        dirs[:] = [d for d in dirs if not _ignored(here / d, True, patterns)]
        for name in files:
            relative = here / name
            if not _ignored(relative, False, patterns):
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / relative, target / relative)
    return target


def _run_in(package: Path, code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Python in isolated mode with only the package on the path: nothing of the repository can leak in."""
    return subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(package)!r}); {code}"],
        cwd=package, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_package(tmp_path_factory.mktemp("deployment") / "app")


CONTRACT_FUNCTIONS = {"intake", "poll_round", "poll_vault", "deliver"}
# The HTTP API (docs/reference.md, "HTTP API"), registered through its own blueprint.
HTTP_FUNCTIONS = {"http_track", "http_unsubscribe", "http_job_status", "http_health"}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBS_") and k != "PYTHONPATH"}
    env["AzureWebJobsStorage"] = "UseDevelopmentStorage=true"
    return env


def test_the_package_indexes_every_function(package: Path) -> None:
    code = (
        "import json, function_app; "
        "print(json.dumps(sorted(f.get_function_name() for f in function_app.app.get_functions())))"
    )
    result = _run_in(package, code, _env())
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)) == CONTRACT_FUNCTIONS | HTTP_FUNCTIONS


def test_the_package_holds_no_tooling_module(package: Path) -> None:
    tooling = {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in TOOLING.rglob("*") if p.is_file()}
    assert tooling, "the tooling package is where the test expects it"
    shipped = [p for p in package.rglob("*") if p.is_file()]
    copies = [p for p in shipped if hashlib.sha256(p.read_bytes()).hexdigest() in tooling]
    assert copies == [], f"tooling shipped in the package: {copies}"
    assert not (package / TOOLING.name).exists()
    assert {p.name for p in package.iterdir()} >= {"function_app.py", "host.json", "requirements.txt", "jobs"}
    assert not (package / "tests").exists() and not (package / "infra").exists()


def test_a_tooling_verb_in_the_package_says_what_to_install(package: Path) -> None:
    result = _run_in(package, "from jobs.cli import main; sys.exit(main(['demo']))", _env())
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "devtools" in lines[0] and "make setup" in lines[0]


def test_a_wrong_setting_still_indexes_every_function_and_says_what_is_wrong(package: Path) -> None:
    env = {**_env(), "JOBS_TABLE": "no_such-table!"}
    code = (
        "import json, logging; logging.basicConfig(level=logging.ERROR); import function_app; "
        "print(json.dumps(sorted(f.get_function_name() for f in function_app.app.get_functions()))); "
        "from jobs.functions import get_tracker\n"
        "try:\n    get_tracker()\nexcept Exception as exc:\n    print(type(exc).__name__, exc)"
    )
    result = _run_in(package, code, env)
    assert result.returncode == 0, result.stderr
    names, failure = result.stdout.strip().splitlines()
    assert set(json.loads(names)) == CONTRACT_FUNCTIONS | HTTP_FUNCTIONS
    assert failure.startswith("ConfigError") and "JOBS_TABLE" in failure
    assert "JOBS_TABLE" in result.stderr  # logged once at start-up, naming the setting
