"""``pip install .``: the client side as a consumer installs it, in a virtual environment of its own.

The wheel is built from a copy of the repository (a build writes ``build/`` and ``*.egg-info`` next to the
sources) without build isolation, so nothing is downloaded: setuptools comes from the project's venv. The new venv
sees the project venv's packages (the runtime dependencies) but not the repository, and gets the wheel with
``--no-deps``. It must hold ``jobs`` and its subpackages only, declare requirements.txt as its dependencies, and
give a ``backup-jobs`` command that is ``python -m jobs``, exit code included.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("run", "track", "wait", "list", "status")
_SKIP = shutil.ignore_patterns(
    ".git", ".venv*", "node_modules", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
    ".ruff_cache", ".hypothesis", ".python_packages", ".tmp", "local.settings.json",
)


def _run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def _clean_env(venv: Path) -> dict[str, str]:
    """The consumer's shell: the new venv first on PATH, no PYTHONPATH, no tracker settings."""
    env = {k: v for k, v in os.environ.items()
           if k != "PYTHONPATH" and not k.startswith(("JOBS_", "AzureWebJobsStorage", "ARM_"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INDEX"] = "1"  # offline: a download attempt fails the test instead of hanging on the network
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("pip-install")
    source = tmp / "src"
    shutil.copytree(ROOT, source, ignore=_SKIP, symlinks=True)
    wheels = tmp / "wheels"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                  "--disable-pip-version-check", "-w", str(wheels), str(source)], cwd=tmp)
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = wheels.glob("*.whl")

    venv = tmp / "consumer-venv"
    made = _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], cwd=tmp)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    # A venv made from a venv inherits the base interpreter's site-packages, not the project venv's: point it at
    # those (pip and the runtime dependencies are there) so that nothing has to be downloaded.
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=tmp).stdout.strip())
    (site / "project-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = _clean_env(venv)
    done = _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)], cwd=tmp, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return {"tmp": tmp, "venv": venv, "python": python, "wheel": wheel, "site": site}


def test_the_wheel_holds_the_jobs_package_only(installed: dict[str, Path]) -> None:
    with zipfile.ZipFile(installed["wheel"]) as wheel:
        names = wheel.namelist()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        entry_points = wheel.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
        requires = [line.split(":", 1)[1].strip() for line in wheel.read(metadata).decode().splitlines()
                    if line.startswith("Requires-Dist:")]
    top = {name.split("/", 1)[0] for name in names if not name.split("/", 1)[0].endswith(".dist-info")}
    assert top == {"jobs"}, sorted(top)
    packages = {str(Path(n).parent) for n in names if n.endswith("/__init__.py")}
    expected = {str(p.parent.relative_to(ROOT)) for p in (ROOT / "jobs").rglob("__init__.py")}
    assert packages == expected  # every subpackage, and nothing else
    assert not [n for n in names if "devtools" in n or n.startswith("tests/")]
    assert "backup-jobs = jobs.cli:main" in entry_points.replace(" ", "").replace("=", " = ")
    pinned = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.lstrip().startswith("#")]
    assert sorted(r.replace(" ", "") for r in requires) == sorted(pinned)


def test_backup_jobs_lists_the_commands(installed: dict[str, Path]) -> None:
    script = installed["venv"] / "bin" / "backup-jobs"
    assert script.is_file()
    shown = _run([str(script), "--help"], cwd=installed["tmp"], env=_clean_env(installed["venv"]))
    assert shown.returncode == 0, shown.stderr
    for command in COMMANDS:
        assert f"\n    {command} " in shown.stdout, shown.stdout


def test_backup_jobs_is_python_m_jobs_exit_code_included(installed: dict[str, Path]) -> None:
    """``main`` returns the exit code: a missing setting is exit 2 and one line, from both spellings."""
    env = _clean_env(installed["venv"])
    script = _run([str(installed["venv"] / "bin" / "backup-jobs"), "list"], cwd=installed["tmp"], env=env)
    module = _run([str(installed["python"]), "-m", "jobs", "list"], cwd=installed["tmp"], env=env)
    assert script.returncode == module.returncode == 2, script.stderr + module.stderr
    assert script.stderr == module.stderr
    assert script.stderr.startswith("error: AzureWebJobsStorage")


def test_the_installed_distribution_has_no_tooling(installed: dict[str, Path]) -> None:
    code = (
        "import importlib.metadata as m, importlib.util as u, jobs; "
        "files = [str(f) for f in m.distribution('backup-job-tracker').files]; "
        "print(jobs.__file__); "
        "print(any('devtools' in f or f.startswith('tests/') for f in files)); "
        "print(u.find_spec('devtools') is not None)"
    )
    shown = _run([str(installed["python"]), "-c", code], cwd=installed["tmp"], env=_clean_env(installed["venv"]))
    assert shown.returncode == 0, shown.stderr
    where, tooling_files, tooling_importable = shown.stdout.split()
    assert Path(where).is_relative_to(installed["site"])  # the installed copy, not the repository
    assert (tooling_files, tooling_importable) == ("False", "False")
