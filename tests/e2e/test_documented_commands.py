"""Every ``python -m jobs ...`` line that README.md and docs/*.md show runs without crashing (issue 18, point 9).

A documented command is a line of a shell code block (```sh, bash, shell or console) or an inline code span that
starts with ``python -m jobs``. Each one becomes a case here, run as a user would: from a fresh temporary folder,
with the settings of a test (its own queues and table on the session's Azurite, the simulator as ARM), a short
timeout, and real values for what the line leaves to the reader:

- a usage line (``[--opt VALUE]`` optional, ``a|b`` alternatives) runs with no optional part, with all of them,
  and once with each alternative; options that name a place on this machine (``--port``, ``--http-port``,
  ``--url``, ``--plot``, ``--location``, Azurite's ports) always get the test's own free port, address or folder;
- placeholders (``<jobId>``, ``RESOURCE_ID``, ``ID``, ``...``) get the ids of a job the case itself tracked;
- the bare program or a verb that needs an argument (``python -m jobs track`` in a sentence) runs with ``--help``;
- long-running commands (``run`` without ``--until-idle``, ``simulate``, ``azurite``) are started, must print their
  banner (and answer HTTP where they serve it), then get Ctrl-C and must stop cleanly.

A command must exit as expected with no traceback. The slow tooling (``bench``, ``drill``) has tests of its own:
those lines are listed in ``COVERED_ELSEWHERE`` with the test that runs them, and each of their options must still
be one the verb offers. A new documented line that this file cannot run and that is not listed fails.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from devtools.simulator import BackupSimulator, JobScript
from tests.conftest import VAULT, free_ports, wait_until

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = "python -m jobs"
SHELL_BLOCKS = {"sh", "bash", "shell", "console"}
DEADLINE = 60.0  # seconds any one command may take, start-up and shutdown included

# Documented lines too slow for the suite, each with the test that runs what it runs.
COVERED_ELSEWHERE: dict[str, str] = {
    "python -m jobs bench --plot docs/img/bench.png":
        "tests/unit/test_bench.py::test_both_strategies_follow_every_job_to_its_end",
    "python -m jobs bench [--workload spread|burst|repeat|all] [--seed 1] [--plot PNG]":
        "tests/unit/test_bench.py::test_both_strategies_follow_every_job_to_its_end",
    "python -m jobs bench --scale [--scale-ended 100000] [--scale-storage azurite|memory]":
        "tests/functional/test_scale_bench.py::test_the_round_reads_the_same_with_or_without_history",
    "python -m jobs bench --scale [--scale-ended 100000]":
        "tests/functional/test_scale_bench.py::test_the_round_reads_the_same_with_or_without_history",
    "python -m jobs bench --scale --scale-ended 20000":
        "tests/functional/test_scale_bench.py::test_the_round_reads_the_same_with_or_without_history",
    "python -m jobs bench --watch [--watch-vaults 20]":
        "tests/unit/test_watch_bench.py::test_watched_vaults_cost_a_listing_a_minute_idle_and_every_job_is_reported_once",
    "python -m jobs bench --scale --scale-storage memory":
        "tests/unit/test_bench.py::test_the_scale_round_in_memory_costs_the_same_requests_with_ended_history",
    "python -m jobs drill [--jobs 200] [--fault-rate 0.3] [--kills 10] [--runners 2] [--subscribers 2] "
    "[--hold-poll-queue SECONDS]":
        "tests/e2e/test_drills.py::test_runner_killed_ten_times_delivers_every_result_with_stable_ids",
    "python -m jobs drill --jobs 200 --fault-rate 0.3":
        "tests/e2e/test_drills.py::test_120_jobs_with_30_percent_of_arm_answers_faulted_all_end_correctly",
    "python -m jobs drill --runners 4 --hold-poll-queue 12":
        "tests/e2e/test_drills.py::test_poll_messages_held_back_longer_than_the_lease_lose_nothing_and_reads_per_job_"
        "are_reported",
    # wait needs the HTTP API of a running tracker: that test starts one and waits with both kinds of target.
    "python -m jobs wait RESOURCE_ID_OR_URL [--api URL] [--key KEY] [--timeout SECONDS] [--retry-seconds 60] "
    "[--correlation-id ID]":
        "tests/e2e/test_wait.py::test_wait_exits_0_for_a_completed_job_and_1_for_a_failed_one_printing_each_event",
    "python -m jobs wait --vault-id VAULT_ID --job-id JOB_ID [--api URL] [--key KEY] [--timeout SECONDS]":
        "tests/e2e/test_wait.py::test_wait_exits_0_for_a_completed_job_and_1_for_a_failed_one_printing_each_event",
}

# Options whose value is a place on this machine: the test always chooses it (a free port, its own simulator).
PORT_OPTIONS = {"--port", "--http-port", "--blob-port", "--queue-port", "--table-port"}
CHOSEN_BY_TEST = PORT_OPTIONS | {"--url"}
# Options whose value the test sets whatever the line says (see resolve).
CHOSEN_VALUES = CHOSEN_BY_TEST | {"--vault-id", "--job-id", "--callback-url", "--timeout", "--plot", "--location"}
VERBS_NEEDING_AN_ARGUMENT = {"track", "status", "wait"}
LONG_RUNNING = {"simulate", "azurite", "run"}
BANNERS = {
    "run": "Backup Job Tracker running on this machine",
    "simulate": "Backup REST API simulator listening on",
    "azurite": "Azurite listening on",
}


# -- finding the documented lines --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Documented:
    text: str  # the command, whitespace collapsed, without a trailing shell comment
    where: str  # file:line


def _documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def documented_commands(paths: list[Path] | None = None, root: Path = ROOT) -> list[Documented]:
    found: list[Documented] = []
    for path in paths or _documents():
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(root).as_posix()
        in_block: str | None = None
        prose: list[tuple[int, str]] = []
        for number, line in enumerate(text.splitlines(), 1):
            fence = re.match(r"\s*```(\S*)", line)
            if fence:
                in_block = None if in_block is not None else fence.group(1).lower()
                continue
            if in_block is None:
                prose.append((number, line))
            elif in_block in SHELL_BLOCKS and line.strip().startswith(PROGRAM):
                command = re.sub(r"\s+#.*$", "", line.strip())  # a trailing shell comment is not the command
                found.append(Documented(" ".join(command.split()), f"{name}:{number}"))
        # Inline spans may run over a line break: join the prose, keeping each span's first line number.
        joined = "\n".join(line for _, line in prose)
        starts = [0]
        for _, line in prose:
            starts.append(starts[-1] + len(line) + 1)
        for span in re.finditer(r"`([^`]+)`", joined):
            command = " ".join(span.group(1).split())
            if command.startswith(PROGRAM) and (len(command) == len(PROGRAM) or command[len(PROGRAM)] == " "):
                index = max(i for i, start in enumerate(starts) if start <= span.start())
                found.append(Documented(command, f"{name}:{prose[min(index, len(prose) - 1)][0]}"))
    return found


# -- turning a documented line into the commands to run ----------------------------------------------------------


def _tokens(text: str) -> list[str]:
    return re.findall(r"\[[^\]]*\]|<[^>]*>|\S+", text)


def _is_placeholder(token: str) -> bool:
    return token == "..." or (token.startswith("<") and token.endswith(">")) or bool(
        re.fullmatch(r"[A-Z][A-Z_]*", token))


def variants(text: str) -> list[list[str]]:
    """The argument lists a documented line stands for, placeholders still in them (see the module docstring)."""
    tokens = _tokens(text[len(PROGRAM):])
    if not tokens or _is_placeholder(tokens[0]) or (tokens[0] in VERBS_NEEDING_AN_ARGUMENT and len(tokens) == 1):
        return [[*tokens, "--help"]]

    def expand(with_optional: bool) -> list[str]:
        out: list[str] = []
        for token in tokens:
            if token.startswith("["):
                inner = token[1:-1].split()
                if with_optional or inner[0] in CHOSEN_BY_TEST:
                    out.extend(inner)
            else:
                out.append(token)
        return out

    runs: list[list[str]] = []
    for base in (expand(False), expand(True)):
        choices = [i for i, token in enumerate(base) if "|" in token and not _is_placeholder(token)]
        if not choices:
            runs.append(base)
        for i in choices:
            for alternative in base[i].split("|"):
                runs.append([*base[:i], alternative, *base[i + 1:]])
    unique: list[list[str]] = []
    for run in runs:
        if run not in unique:
            unique.append(run)
    return unique


@dataclass
class Context:
    simulator_url: str
    vault_id: str
    job_guid: str
    job_resource_id: str
    folder: Path


def shape(argv: list[str]) -> tuple[str, ...]:
    """What a run depends on: the same command with another placeholder name or port is the same run."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        following = argv[i + 1] if i + 1 < len(argv) else None
        if token in CHOSEN_VALUES:
            out += [token, "<>"]
            i += 2 if following is not None and not following.startswith("--") else 1
            continue
        out.append("<>" if _is_placeholder(token) else token)
        i += 1
    return tuple(out)


def resolve(argv: list[str], context: Context) -> list[str]:
    """Real values for the places and placeholders of one argument list."""
    verb = argv[0] if argv else ""
    chosen = {
        "--url": lambda: context.simulator_url,
        "--vault-id": lambda: context.vault_id,
        "--job-id": lambda: context.job_guid,
        "--callback-url": lambda: "https://127.0.0.1:9/documented-commands",
        "--timeout": lambda: "30",
        "--plot": lambda: str(context.folder / "bench.png"),
        "--location": lambda: str(context.folder / "azurite-data"),
        **{option: lambda: str(free_ports(1)[0]) for option in PORT_OPTIONS},
    }
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        following = argv[i + 1] if i + 1 < len(argv) else None
        if token in chosen:
            out += [token, chosen[token]()]
            # the documented value (or placeholder) is replaced; a bare option just gets one
            i += 2 if following is not None and not following.startswith("--") else 1
            continue
        if _is_placeholder(token):
            previous = out[-1] if out else ""
            if previous.startswith("--"):
                out.append("docs")  # an option's free-text value (--correlation-id X)
            else:
                out.append(context.job_guid if verb == "status" else context.job_resource_id)
        else:
            out.append(token)
        i += 1
    # A server's documented default ports may be taken on this machine: the test picks free ones.
    defaults = {"azurite": ("--blob-port", "--queue-port", "--table-port"), "simulate": ("--port",)}
    if verb in defaults and "add-job" not in out:
        for option in defaults[verb]:
            if option not in out:
                out += [option, str(free_ports(1)[0])]
    return out


# -- running one -------------------------------------------------------------------------------------------------


def _environment(env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def _jobs(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jobs", *argv], cwd=cwd, env=_environment(env),
                          capture_output=True, text=True, timeout=DEADLINE)


def _no_crash(where: str, argv: list[str], code: int | None, stdout: str, stderr: str, expected: int = 0) -> None:
    shown = f"{where}: python -m jobs {shlex.join(argv)}\n--- stdout\n{stdout[-3000:]}\n--- stderr\n{stderr[-3000:]}"
    assert "Traceback" not in stderr, shown
    assert code == expected, shown


def _serve_then_stop(argv: list[str], env: dict[str, str], cwd: Path, where: str) -> None:
    """Start a long-running command, wait for its banner (and its HTTP answer), Ctrl-C it, check it stopped."""
    verb = argv[0]
    log = cwd / f"{verb}-{uuid.uuid4().hex[:6]}.log"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "jobs", *argv], cwd=cwd, env=_environment(env),
                                   stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        banner = BANNERS[verb]
        started = wait_until(lambda: banner in log.read_text() or process.poll() is not None, timeout=DEADLINE)
        output = log.read_text()
        assert started and process.poll() is None and banner in output, \
            f"{where}: python -m jobs {shlex.join(argv)} did not start serving\n{output[-3000:]}"
        if verb == "run" and "--http-port" in argv:
            port = argv[argv.index("--http-port") + 1]
            answer = requests.get(f"http://127.0.0.1:{port}/api/health", timeout=10)
            assert answer.status_code == 200, answer.text
        if verb == "simulate":
            port = argv[argv.index("--port") + 1]
            answer = requests.get(f"http://127.0.0.1:{port}/_simulator/health", timeout=10)
            assert answer.status_code == 200, answer.text
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log.read_text()
    _no_crash(where, argv, code, output, output)


# -- the cases ---------------------------------------------------------------------------------------------------


def _cases() -> Iterator[object]:
    """One case per distinct argument list (``run`` is shown in six places: it runs once), naming every place."""
    places: dict[tuple[str, ...], list[str]] = {}
    first: dict[tuple[str, ...], list[str]] = {}
    for documented in documented_commands():
        if documented.text not in COVERED_ELSEWHERE:
            for argv in variants(documented.text):
                first.setdefault(shape(argv), argv)
                places.setdefault(shape(argv), []).append(documented.where)
    for key, where in places.items():
        yield pytest.param(", ".join(where), first[key], id=f"{where[0]} {' '.join(first[key])}")


@pytest.fixture
def context(simulator: BackupSimulator, tmp_path: Path) -> Context:
    guid = simulator.add_job(VAULT, JobScript(final_status="Completed", duration=1))
    return Context(simulator_url=simulator.base_url, vault_id=VAULT, job_guid=guid,
                   job_resource_id=f"{VAULT}/backupJobs/{guid}", folder=tmp_path)


@pytest.mark.parametrize(("where", "argv"), list(_cases()))
def test_a_documented_command_runs_without_crashing(where: str, argv: list[str], context: Context,
                                                    env: dict[str, str], tmp_path: Path) -> None:
    command = resolve(argv, context)
    verb = command[0] if command else ""
    # A job on this test's own storage: for run to follow, and (once the intake recorded it) for status to find.
    setup = [["track", context.job_resource_id]] if verb in ("status", "run") else []
    if verb == "status":
        setup.append(["run", "--until-idle", "--timeout", "30"])
    for step in setup:
        done = _jobs(step, env, tmp_path)
        _no_crash(where, step, done.returncode, done.stdout, done.stderr)
    long_running = verb in LONG_RUNNING and "--until-idle" not in command and "add-job" not in command \
        and "--help" not in command
    if long_running:
        _serve_then_stop(command, env, tmp_path, where)
        return
    done = _jobs(command, env, tmp_path)
    _no_crash(where, command, done.returncode, done.stdout, done.stderr)
    if verb == "track" and "--help" not in command:
        assert "tracking id:" in done.stdout, done.stdout
    if verb == "status":
        assert context.job_guid in done.stdout, done.stdout
    if "add-job" in command:
        assert "python -m jobs track /subscriptions/" in done.stdout.lower(), done.stdout


def test_every_documented_command_is_run_here_or_by_a_named_test() -> None:
    documented = documented_commands()
    assert len(documented) >= 20, documented  # the extraction still finds the lines (README and docs/)
    texts = {d.text for d in documented}
    stale = [text for text in COVERED_ELSEWHERE if text not in texts]
    assert stale == [], "listed as covered elsewhere but no longer documented"
    for node in COVERED_ELSEWHERE.values():
        path, name = node.split("::")
        assert re.search(rf"^def {re.escape(name)}\(", (ROOT / path).read_text(encoding="utf-8"), re.M), node
    for d in documented:
        if d.text in COVERED_ELSEWHERE:
            continue
        for argv in variants(d.text):
            verb = argv[0] if argv else ""
            assert verb in ("", "--help", "track", "status", "list", "run", "simulate", "azurite", "watch") or (
                argv == ["wait", "--help"]), (
                f"{d.where}: '{d.text}': no way to run '{verb}' here; run it or list it in COVERED_ELSEWHERE")


@pytest.mark.parametrize("text", sorted(COVERED_ELSEWHERE), ids=lambda text: text[len(PROGRAM) + 1:][:60])
def test_the_options_of_a_line_covered_elsewhere_are_the_verbs_own(text: str, tmp_path: Path) -> None:
    tokens = _tokens(text[len(PROGRAM):])
    verb = tokens[0]
    shown = subprocess.run([sys.executable, "-m", "jobs", verb, "--help"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=DEADLINE, env=_environment({}))
    assert shown.returncode == 0, shown.stderr
    words = [word for token in tokens[1:] for word in token.strip("[]").split()]
    for word in words:
        if word.startswith("--"):
            assert re.search(rf"{re.escape(word)}\b", shown.stdout), f"{text}: {word} is not an option of {verb}"
        elif "|" in word:
            for choice in word.split("|"):
                assert choice in shown.stdout, f"{text}: {choice} is not a choice of {verb}"


# -- the finder itself -------------------------------------------------------------------------------------------


def test_the_finder_takes_shell_lines_and_spans_but_not_prose_or_pictures(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Run `python -m jobs list\n--state running` and `python -m jobsx` and `make demo`.\n"
        "```sh\npython -m jobs track <id>   # a comment\necho python -m jobs run\n```\n"
        "```\n  python -m jobs track)   │ a picture\n```\n", encoding="utf-8")
    found = documented_commands([page], root=tmp_path)
    assert [(d.text, d.where) for d in found] == [
        ("python -m jobs track <id>", "page.md:4"),
        ("python -m jobs list --state running", "page.md:1"),
    ]


def test_a_usage_line_runs_bare_in_full_and_with_each_choice() -> None:
    assert variants("python -m jobs list [--state running|ended|all]") == [
        ["list"], ["list", "--state", "running"], ["list", "--state", "ended"], ["list", "--state", "all"]]
    assert variants("python -m jobs simulate [--port 8765] [--seed-demo-jobs]") == [
        ["simulate", "--port", "8765"], ["simulate", "--port", "8765", "--seed-demo-jobs"]]
    assert variants("python -m jobs track") == [["track", "--help"]]
    assert variants("python -m jobs") == [["--help"]]


def test_one_run_stands_for_lines_that_differ_only_in_placeholders_or_ports() -> None:
    assert shape(["run", "--http-port", "7071"]) == shape(["run", "--http-port", "PORT"]) == shape(
        ["run", "--http-port"])
    assert shape(["status", "<jobId>"]) == shape(["status", "ID"])
    assert shape(["run"]) != shape(["run", "--http-port"])
    assert shape(["list", "--state", "running"]) != shape(["list", "--state", "ended"])


def test_places_and_placeholders_get_the_tests_own_values(tmp_path: Path) -> None:
    context = Context("http://127.0.0.1:1", "/vault", "guid", "/vault/backupJobs/guid", tmp_path)
    assert resolve(["status", "<jobId>"], context) == ["status", "guid"]
    assert resolve(["track", "<a job>", "--correlation-id", "X"], context) == [
        "track", "/vault/backupJobs/guid", "--correlation-id", "docs"]
    assert resolve(["simulate", "add-job", "--url", "http://127.0.0.1:8765", "--vault-id", "ID"], context) == [
        "simulate", "add-job", "--url", "http://127.0.0.1:1", "--vault-id", "/vault"]
    ports = resolve(["run", "--http-port"], context)
    assert ports[:2] == ["run", "--http-port"] and ports[2].isdigit() and ports[2] != "7071"

