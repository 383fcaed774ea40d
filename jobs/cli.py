"""The command line: ``python -m jobs run | track | wait | list | status | watch``, and the local tooling's verbs.

``run``, ``track``, ``list`` and ``status`` are what a producer or an operator needs, and are deployed with the app.
``simulate``, ``demo`` and ``drill`` come from the sibling package ``devtools`` (a clone of the repository has it,
a Function App does not): it is imported only when one of them runs, and its absence is one clear line.

Settings come from the environment, then from ``local.settings.json`` (its ``Values``) in the current folder, the
way ``func start`` reads them.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

from jobs.config import ConfigError, Settings
from jobs.webhooks.callback_urls import CallbackUrlUnverified

__all__ = ["CommandError", "ToolingMissing", "load_settings", "main"]

TOOLING_PACKAGE = "devtools"


class ToolingMissing(RuntimeError):
    """A tooling verb was asked for where the ``devtools`` package is not installed (a deployed app)."""


def load_settings(env: dict[str, str] | None = None) -> Settings:
    values = dict(os.environ if env is None else env)
    local = Path("local.settings.json")
    if local.is_file():
        try:
            for key, value in (json.loads(local.read_text()).get("Values") or {}).items():
                values.setdefault(key, str(value))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"local.settings.json cannot be read: {exc}") from None
    return Settings.from_env(values)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    default_level = (
        "ERROR" if args.command in (_demo, _simulate, _drill, _azurite, _simulate_add_job, _bench) else "INFO"
    )
    logging.basicConfig(
        level=os.environ.get("JOBS_LOG_LEVEL", default_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # "connection pool is full" under 16 workers is harmless
    try:
        code = int(args.command(args) or 0)
        sys.stdout.flush()  # a reader that left (``| head``) shows here, where it is handled, not at exit
        return code
    except (ConfigError, ToolingMissing, CommandError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # ``python -m jobs list | head``: the reader left; say nothing more (stdout is gone) and exit quietly
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130
    except CallbackUrlUnverified as exc:  # the DNS server could not answer now: no verdict, try again
        print(f"error: {exc}; try again", file=sys.stderr)
        return 3
    except Exception as exc:  # the storage account's answers and failures: one line, never a traceback
        line = _storage_problem(exc)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 3


class CommandError(RuntimeError):
    """A problem the user can fix, said in one line (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (with a pointer to --help), not the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


def _storage_problem(exc: BaseException) -> str | None:
    """One line for a storage failure: unreachable (naming the endpoint) or an answer such as 403; else None."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    from jobs.storage.account import StorageAccount, is_unreachable

    if is_unreachable(exc):
        try:
            return StorageAccount(load_settings().storage).describe_unreachable(exc)
        except ConfigError:
            return f"cannot reach the storage account: {exc}"
    if isinstance(exc, ClientAuthenticationError):
        return f"no token for the storage account: {(exc.message or str(exc)).strip().splitlines()[0]}"
    if isinstance(exc, HttpResponseError):
        code = getattr(exc, "error_code", None) or exc.reason or exc.status_code
        first = (exc.message or str(exc)).strip().splitlines()[0]
        return f"the storage account answered {exc.status_code} {code}: {first}"
    return None


def _program() -> str:
    """``backup-jobs`` when run as the installed console script, else ``python -m jobs``."""
    return "backup-jobs" if Path(sys.argv[0]).stem == "backup-jobs" else "python -m jobs"


def _tooling(module: str) -> ModuleType:
    """``devtools.<module>``, imported on first use; a clear ``ToolingMissing`` when the package is absent."""
    try:
        return importlib.import_module(f"{TOOLING_PACKAGE}.{module}")
    except ModuleNotFoundError as exc:
        if exc.name not in (TOOLING_PACKAGE, f"{TOOLING_PACKAGE}.{module}"):
            raise
        verb = {"simulator": "simulate"}.get(module, module)
        raise ToolingMissing(
            f"'{_program()} {verb}' needs the local tooling (package '{TOOLING_PACKAGE}'), which is not deployed "
            "with the app: run it from a clone of the repository, after 'make setup'"
        ) from None


SETTINGS_HELP = (
    "Settings (AzureWebJobsStorage, JOBS_*, ARM_ENDPOINT, ...) come from the environment, then from the 'Values' of "
    "local.settings.json in the current folder (copy local.settings.example.json), the way 'func start' reads them."
)
SIMULATOR_PORT = 8765  # 7071 is the Functions host's; 10000-10002 are Azurite's


def _settings_defaults() -> str:
    """``run --help``'s epilog: every setting with its default, from ``jobs.config.SETTINGS``."""
    from jobs.config import SETTINGS

    shown = [f"{s.name} (required)" if s.shown == "required" else f"{s.name}={s.default or s.shown}"
             for s in SETTINGS if s.default or s.shown]
    unset = [s.name for s in SETTINGS if not (s.default or s.shown)]
    return (f"Settings and their defaults (the README's Configuration table says more): {', '.join(shown)}; "
            f"unset: {', '.join(unset)}.").replace("`", "")


def _parser() -> argparse.ArgumentParser:
    formatter = argparse.ArgumentDefaultsHelpFormatter
    parser = _Parser(prog=_program(), description=f"Backup Job Tracker. {SETTINGS_HELP}",
                     formatter_class=formatter)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def verb(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, description=f"{help_text[0].upper()}{help_text[1:]}. "
                                   f"{SETTINGS_HELP}", formatter_class=formatter)

    run = verb("run", "run the tracker on this machine (same code paths as the Functions app)")
    run.epilog = _settings_defaults()
    run.add_argument("--until-idle", action="store_true",
                     help="exit 0 once no message is queued, no job runs and nothing awaits delivery")
    run.add_argument("--timeout", type=float, metavar="SECONDS",
                     help="stop after this long and exit 1 (none: run until Ctrl-C or SIGTERM)")
    run.add_argument("--http-port", type=int, metavar="PORT",
                     help="also serve the HTTP API on http://127.0.0.1:PORT/api (none: no HTTP API)")
    run.set_defaults(command=_run)

    track = verb("track", "put a job on the intake queue")
    track.add_argument("resource_id", nargs="?", metavar="RESOURCE_ID", help="the job's resource id")
    track.add_argument("--vault-id", help="the vault's resource id (with --job-id)")
    track.add_argument("--job-id", help="the job's GUID (with --vault-id)")
    track.add_argument("--callback-url", help="a webhook for this job alone (https, allowed host)")
    track.add_argument("--correlation-id", help="echoed in the result event")
    track.set_defaults(command=_track)

    wait = verb("wait", "start tracking a job through the deployed HTTP API and wait for its end: the result event "
                        "on stdout, one line on stderr, exit 0 only when it completed (see docs/reference.md)")
    wait.description = (  # it reads no storage: only the API, from --api/--key or JOBS_API_URL/JOBS_API_KEY
        "Start tracking a job through the deployed HTTP API and wait for its end: the result event on stdout, one line "
        "on stderr, exit 0 only when it completed; 1 failed, 2 bad arguments or body, 3 completed with warnings, 4 "
        "cancelled, 5 timed out, 6 not found, 7 operation refused, 8 --timeout, 9 API unreachable, 10 tracking "
        "failed. JOBS_API_URL and JOBS_API_KEY come from the environment, then from local.settings.json's 'Values'.")
    wait.add_argument("target", nargs="?", metavar="RESOURCE_ID_OR_URL",
                      help="the job's resource id, or the operation's Azure-AsyncOperation/Location URL")
    wait.add_argument("--vault-id", help="the vault's resource id (with --job-id)")
    wait.add_argument("--job-id", help="the job's GUID (with --vault-id)")
    wait.add_argument("--api", default=argparse.SUPPRESS, metavar="URL",
                      help="the HTTP API, https://<app>.azurewebsites.net/api (unset: JOBS_API_URL)")
    wait.add_argument("--key", default=argparse.SUPPRESS,
                      help="the function key for POST /api/jobs (unset: JOBS_API_KEY)")
    wait.add_argument("--timeout", type=float, metavar="SECONDS",
                      help="give up after this long, exit 8 (none: until the job ends or the tracker gives up)")
    wait.add_argument("--retry-seconds", type=float, default=60.0, metavar="SECONDS",
                      help="how long the API may be unreachable (network errors, 5xx, 429) in a row before exit 9")
    wait.add_argument("--correlation-id", help="echoed in the result event")
    wait.set_defaults(command=_wait)

    listing = verb("list", "the jobs the table holds (and what waits on the intake queue)")
    listing.add_argument("--state", choices=("running", "ended", "all"), default="all", help="which jobs to show")
    listing.set_defaults(command=_list)

    status = verb("status", "one job: by tracking id, job GUID, resource id, or Azure's operation id or URL")
    status.add_argument("id", metavar="ID", help="tracking id, job GUID, job resource id, operation id or URL")
    status.set_defaults(command=_status)

    watch = verb("watch", "watch whole vaults: every job that starts in them is reported (watch add | remove | list)")
    actions = watch.add_subparsers(metavar="ACTION", required=True)
    watch_add = actions.add_parser(
        "add", formatter_class=formatter, help="add (or replace) a watch with its own subscriber",
        description="Add (or replace) a watch: every job that starts in its vaults from now on, and every job running "
                    "in them now, is tracked and reported with this subscriber and data.watch set to its name.")
    watch_add.add_argument("name", metavar="NAME", help="the watch's name (letters, digits, - and _)")
    watch_add.add_argument("--scope", action="append", required=True, metavar="ID",
                           help="a vault, resource group (/subscriptions/<guid>/resourceGroups/<rg>) or subscription "
                                "id; repeat for more")
    watch_add.add_argument("--callback-url", help="a webhook for this watch's events (https, allowed host)")
    watch_add.add_argument("--correlation-id", help="echoed in its events")
    watch_add.add_argument("--context", metavar="JSON", help="a JSON object echoed in its events")
    watch_add.add_argument("--operation", help="only jobs of this operation (Backup, Restore, ...)")
    watch_add.add_argument("--job-type", help="only jobs of this jobType (AzureIaaSVMJob, AzureWorkloadJob, ...)")
    watch_add.add_argument("--entity-name", help="only jobs of this entityFriendlyName")
    watch_add.add_argument("--daily-summary", action="store_true",
                           help="also send a BackupJobs.DailySummary event after each UTC day")
    watch_add.set_defaults(command=_watch_add)
    watch_remove = actions.add_parser("remove", formatter_class=formatter, help="stop a watch",
                                      description="Stop a watch (the jobs it found are still reported when they end).")
    watch_remove.add_argument("name", metavar="NAME", help="the watch's name")
    watch_remove.set_defaults(command=_watch_remove)
    watch_list = actions.add_parser("list", formatter_class=formatter, help="the watches and their vaults",
                                    description="The watches (JOBS_WATCH_SCOPES's is 'settings'), their scopes and "
                                                "the vaults the last expansion found.")
    watch_list.set_defaults(command=_watch_list)

    azurite = verb("azurite", "serve Azurite (storage emulator) in the foreground, in memory, on loopback")
    azurite.add_argument("--blob-port", type=int, default=10000, help="blob service port")
    azurite.add_argument("--queue-port", type=int, default=10001, help="queue service port")
    azurite.add_argument("--table-port", type=int, default=10002, help="table service port")
    azurite.add_argument("--location", metavar="FOLDER",
                         help="keep the data in this folder (none: in memory, lost when Azurite stops)")
    azurite.set_defaults(command=_azurite)

    simulate = verb("simulate", "serve the Backup REST API simulator on loopback (or: simulate add-job ...)")
    simulate.add_argument("--host", default="127.0.0.1", help="address to listen on")
    simulate.add_argument("--port", type=int, default=SIMULATOR_PORT, help="port to listen on (0: a free one)")
    simulate.add_argument("--token", default="sim-token", help="bearer token it requires ('' for none)")
    simulate.add_argument("--seed-demo-jobs", action="store_true", help="start with a few demo jobs")
    simulate.set_defaults(command=_simulate)
    control = simulate.add_subparsers(metavar="ACTION", required=False)
    add_job = control.add_parser(
        "add-job", formatter_class=formatter,
        help="make a job in a running simulator (its control API), with the outcome and duration you choose",
        description="Make a job in a simulator that 'python -m jobs simulate' serves, through its control API.")
    add_job.add_argument("--url", default=f"http://127.0.0.1:{SIMULATOR_PORT}", help="the simulator's address")
    add_job.add_argument("--outcome", default="Completed",
                         choices=("Completed", "CompletedWithWarnings", "Failed", "Cancelled"),
                         help="the job's final status")
    add_job.add_argument("--duration", type=float, default=30.0, metavar="SECONDS", help="how long the job runs")
    add_job.add_argument("--not-found", type=float, default=0.0, metavar="SECONDS",
                         help="how long GET answers 404 first (a job not yet visible)")
    add_job.add_argument("--job-type", default="AzureIaaSVMJob", help="jobType (AzureIaaSVMJob, MabJob, ...)")
    add_job.add_argument("--operation", default="Backup", help="operation (Backup, Restore, ...)")
    add_job.add_argument("--vault-id", default=None, help="the vault's resource id (none: the simulator's demo vault)")
    add_job.set_defaults(command=_simulate_add_job)

    drill = verb("drill", "fault drill: Azure faults and runner kills; prints what came out")
    drill.add_argument("--jobs", type=int, default=200, help="jobs to feed")
    drill.add_argument("--fault-rate", type=float, default=0.3, help="share of ARM answers faulted (0-1)")
    drill.add_argument("--kills", type=int, default=0, help="SIGKILL the runner this many times (subprocesses)")
    drill.add_argument("--runners", type=int, default=1, help="runners at once on the same storage")
    drill.add_argument("--subscribers", type=int, default=1, help="subscribers per job")
    drill.add_argument("--seed", type=int, default=7, help="random seed (the same seed, the same drill)")
    drill.add_argument("--hold-poll-queue", type=float, default=0.0, metavar="SECONDS",
                       help="hold each runner's first poll message for a job this long (longer than the lease: "
                            "the job is handed out again meanwhile); 0: off")
    drill.add_argument("--failing-vault-jobs", type=int, default=0, metavar="N",
                       help="N jobs on a vault whose reads all fail (503): each must end TimedOut at its deadline")
    drill.add_argument("--credential-outage", type=float, default=0.0, metavar="SECONDS",
                       help="no JOBS_ARM_TOKEN: the managed identity endpoint refuses every token this long; 0: off")
    drill.set_defaults(command=_drill)

    bench = verb("bench", "the benchmark: the tracker's polling beside the fixed 30 s loop, on a virtual clock")
    bench.add_argument("--workload", choices=("spread", "burst", "repeat", "backupvault", "all"), default="all",
                       help="which standard workload")
    bench.add_argument("--seed", type=int, default=1, help="random seed (the same seed, the same jobs)")
    bench.add_argument("--poll-seconds", type=int, default=30, help="the poll period of both strategies")
    bench.add_argument("--hop-seconds", type=float, default=5.0,
                       help="how long a queue hop waits on an idle Functions queue (host.json maxPollingInterval)")
    bench.add_argument("--plot", metavar="PNG", help="also draw latency and reads over time into this file")
    bench.add_argument("--scale", action="store_true",
                       help="instead: a poll round over 10,000 running jobs with 0 and 100,000 ended ones, on Azurite")
    bench.add_argument("--scale-ended", type=int, default=100_000, metavar="N",
                       help="with --scale: how many ended jobs to add to the table (Azurite slows as it grows)")
    bench.add_argument("--scale-storage", choices=("azurite", "memory"), default="azurite",
                       help="with --scale: Azurite (and the poll workers against the simulator), or the benchmark's "
                            "in-memory table (the round alone, 100,000 ended jobs in seconds)")
    bench.add_argument("--watch", action="store_true",
                       help="instead: watched vaults (idle, then busy with jobs nobody handed in): ARM reads per "
                            "vault per hour and the latency from a job's end to its event")
    bench.add_argument("--watch-vaults", type=int, default=20, metavar="N", help="with --watch: how many vaults")
    bench.set_defaults(command=_bench)

    demo = verb("demo", "the whole loop on this machine: Azurite, simulator, webhook receiver")
    demo.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS", help="give up after this long")
    demo.set_defaults(command=_demo)
    return parser


def _storage(settings: Settings, options: Any = None) -> Any:
    from jobs.storage.account import COMMAND_LINE, StorageAccount

    return StorageAccount(settings.storage, options or COMMAND_LINE)


def _tracker(options: Any = None, settings: Settings | None = None) -> Any:
    from jobs.tracker import Tracker

    settings = settings or load_settings()
    return Tracker(settings, storage=_storage(settings, options))


def _run(args: argparse.Namespace) -> int:
    from jobs.local_host import LocalHost
    from jobs.storage.account import LOCAL_HOST

    tracker = _tracker(LOCAL_HOST)
    host = LocalHost(tracker)
    signals = {"count": 0}

    def stop(signum: int, _frame: Any) -> None:
        signals["count"] += 1
        if signals["count"] > 1:
            raise KeyboardInterrupt  # a second Ctrl-C: leave now
        logging.getLogger("jobs.run").info("%s: stopping (in-flight messages finish or come back later)",
                                           signal.Signals(signum).name)
        host.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    tracker.setup()  # an unreachable account stops here, in one line (main)
    server = None
    if args.http_port is not None:
        from jobs.http_api import HttpApi
        from jobs.local_http import LocalHttpServer

        try:
            server = LocalHttpServer(HttpApi(lambda: tracker), args.http_port).start()
        except OSError as exc:
            raise CommandError(f"cannot serve the HTTP API on 127.0.0.1:{args.http_port}: {exc.strerror or exc}; "
                               "choose another --http-port") from None
    print(_banner(tracker, server.url if server else None), file=sys.stderr, flush=True)
    try:
        return host.run(until_idle=args.until_idle, timeout=args.timeout)
    except KeyboardInterrupt:
        return 130
    finally:
        if server is not None:
            server.stop()


def _banner(tracker: Any, http_url: str | None = None) -> str:
    """What ``run`` runs against: storage endpoints and account (never a key), ARM, queues, poll period."""
    return "\n".join([
        "Backup Job Tracker running on this machine. Ctrl-C to stop.",
        *(f"  {name:<8} {fact}" for name, fact in tracker.describe().items()),
        *([f"  HTTP API {http_url}/api (POST /api/jobs, GET /api/health; loopback only, no function keys)"]
          if http_url else []),
    ])


def _track(args: argparse.Namespace) -> int:
    from jobs.flows.intake import IntakeRejected
    from jobs.providers import job_resource_id

    message: dict[str, Any] = {}
    if args.resource_id and not (args.vault_id or args.job_id):
        message["jobResourceId"] = args.resource_id
    elif args.vault_id and args.job_id and not args.resource_id:
        message.update(vaultId=args.vault_id, jobId=args.job_id)
    else:
        print("error: give RESOURCE_ID, or --vault-id and --job-id", file=sys.stderr)
        return 2
    if args.callback_url:
        message["callbackUrl"] = args.callback_url
    if args.correlation_id:
        message["correlationId"] = args.correlation_id
    try:
        request = _tracker().submit(json.dumps(message))
    except IntakeRejected as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for job in request.jobs:
        print(f"queued {job_resource_id(job)}\ntracking id: {job.key}")
    return 0


def _wait(args: argparse.Namespace) -> int:
    from jobs.wait import BAD_REQUEST, Waiter, WaitError, dumps, intake_body

    local = _local_values()
    api = getattr(args, "api", None) or os.environ.get("JOBS_API_URL") or local.get("JOBS_API_URL")
    key = getattr(args, "key", None) or os.environ.get("JOBS_API_KEY") or local.get("JOBS_API_KEY")
    tty = sys.stderr.isatty()

    def progress(line: str) -> None:  # a terminal sees one line rewritten; a pipe or a log sees nothing extra
        sys.stderr.write(f"\r\x1b[K{line}")
        sys.stderr.flush()

    try:
        if not api:
            raise WaitError(BAD_REQUEST, "give --api URL (or set JOBS_API_URL)")
        body = intake_body(args.target, args.vault_id, args.job_id, args.correlation_id)
        waiter = Waiter(api, key, timeout=args.timeout, retry_seconds=args.retry_seconds,
                        progress=progress if tty else None)
    except WaitError as exc:
        print(f"error: {exc.line}", file=sys.stderr)
        return exc.code
    outcome = waiter.wait(body)
    if tty:
        sys.stderr.write("\r\x1b[K")
    if outcome.events is not None:
        print(dumps(outcome.events))
    print(outcome.line if outcome.events is not None else f"error: {outcome.line}", file=sys.stderr)
    return outcome.code


def _local_values() -> dict[str, str]:
    """The ``Values`` of local.settings.json in the current folder, when it is there and readable."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return {k: str(v) for k, v in (json.loads(Path("local.settings.json").read_text()).get("Values") or {}).items()}
    return {}


def _list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    settings = load_settings()
    tracker = _tracker(settings=settings)
    items = tracker.list_items(args.state)
    waiting = tracker.waiting_on_intake()
    note = ""
    if waiting:
        note = (f"{waiting} message{'s' if waiting != 1 else ''} wait{'s' if waiting == 1 else ''} on the intake "
                f"queue {settings.intake_queue}: 'python -m jobs run' reads them")
    if not items:
        what = "jobs" if args.state == "all" else f"{args.state} jobs"
        print(f"no {what} yet" if items is None or args.state == "all" else f"no {what}")
        if items is None:
            print(f"(table {settings.table} does not exist yet: 'python -m jobs run' or 'track' creates it)")
        if note:
            print(note)
        return 0
    rows = [[_tracking_cell(item), _cut(item.vault_id.rsplit("/", 1)[-1], 14), _cut(_status_cell(item), 24),
             _short_time(item.created_at), _short_time(item.ended_at)]
            for item in sorted(items, key=lambda i: i.created_at)]
    print(tabulate(rows, headers=["tracking id", "vault", "status", "since", "ended"]))
    if args.state != "running":
        print(f"(ended jobs are kept for {_days(settings.retention_days)}, JOBS_RETENTION_DAYS)")
    if note:
        print(note)
    return 0


def _tracking_cell(item: Any) -> str:
    if item.kind == "operation" and item.named_jobs:
        return "\n".join([item.tracking_id, *(f"-> job {job}" for job in item.named_jobs)])
    return str(item.tracking_id)


def _status_cell(item: Any) -> str:
    if not item.ended:
        return f"running ({item.status})" if item.status else "running"
    if item.status and item.status != item.result_status:
        return f"{item.result_status} (Azure {item.status})"
    return str(item.result_status)


def _watch_add(args: argparse.Namespace) -> int:
    from jobs.tracker import WatchRefused

    context = None
    if args.context is not None:
        try:
            context = json.loads(args.context)
        except ValueError:
            raise CommandError("--context must be a JSON object") from None
    filters = {"operation": args.operation, "jobType": args.job_type, "entityName": args.entity_name}
    tracker = _tracker()
    try:
        watch = tracker.add_watch(args.name, args.scope, callback_url=args.callback_url,
                                  correlation_id=args.correlation_id, context=context,
                                  filters={k: v for k, v in filters.items() if v},
                                  daily_summary=args.daily_summary)
    except WatchRefused as exc:
        raise CommandError(str(exc)) from None
    print(f"watching {len(watch.scopes)} scope{'s' if len(watch.scopes) != 1 else ''} as '{watch.name}': the next "
          "poll round lists its vaults")
    return 0


def _watch_remove(args: argparse.Namespace) -> int:
    from jobs.tracker import WatchRefused

    try:
        removed = _tracker().remove_watch(args.name)
    except WatchRefused as exc:
        raise CommandError(str(exc)) from None
    if not removed:  # nothing to stop: a script that removes a watch twice is not an error
        print(f"no watch named '{args.name}': nothing to stop ('watch list' shows the watches)")
        return 0
    print(f"stopped watching '{args.name}' (the jobs it found are still reported when they end)")
    return 0


def _watch_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    views = _tracker().list_watches()
    if not views:
        print("no watches (JOBS_WATCH_SCOPES is unset and 'watch add' added none)")
        return 0
    rows = []
    for view in views:
        watch = view.watch
        subscriber = ", ".join(part for part in (
            "callbackUrl" if watch.callback_url else "", f"correlationId {watch.correlation_id}"
            if watch.correlation_id else "", "context" if watch.context else "") if part) or "default"
        filters = ", ".join([*(f"{k}={v}" for k, v in watch.filters.items()),
                             *(["daily summary"] if watch.daily_summary else [])]) or "-"
        rows.append([watch.name, "\n".join(watch.scopes), len(view.vaults), subscriber, filters,
                     _short_time(watch.created_at)])
    print(tabulate(rows, headers=["watch", "scopes", "vaults", "subscriber", "options", "since"]))
    return 0


def _days(days: float) -> str:
    return f"{days:g} day" if days == 1 else f"{days:g} days"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _status(args: argparse.Namespace) -> int:
    from azure.core.exceptions import ResourceNotFoundError
    from tabulate import tabulate

    from jobs.domain.references import InvalidReference
    from jobs.providers import job_resource_id

    settings = load_settings()
    tracker = _tracker(settings=settings)
    try:
        details = tracker.find_item(args.id)
    except InvalidReference as exc:
        raise CommandError(str(exc)) from None
    except ResourceNotFoundError:
        print(f"nothing tracked yet: table {settings.table} does not exist "
              "('python -m jobs run' or 'track' creates it)", file=sys.stderr)
        return 1
    if details is None:
        print(f"error: no job {args.id!r} in table {settings.table} (ended jobs are kept for "
              f"{_days(settings.retention_days)}, JOBS_RETENTION_DAYS, then removed)", file=sys.stderr)
        return 1
    item = details.item
    properties = (item.resource or {}).get("properties") or {}
    rows = [
        ["tracking id", item.tracking_id],
        ["job", job_resource_id(item.job_ref()) if item.job_id else
         f"operation {item.operation_id} of {item.vault_id}"],
    ]
    if item.named_jobs:
        rows.append(["named", ", ".join(f"-> job {job}" for job in item.named_jobs)])
    rows += [
        ["type", f"{properties.get('jobType', '-')} / {properties.get('operation', '-')}"],
        ["entity", properties.get("entityFriendlyName", "-")],
        ["Azure status", item.status or "-"],
        ["result", item.result_status or "running"],
        ["tracked since", _time(item.created_at)],
        ["last polled", _time(item.last_polled_at)],
        ["ended", _time(item.ended_at)],
        ["polls", item.poll_count],
        ["last error", json.dumps(item.last_error) if item.last_error else "-"],
    ]
    if item.learned_from:
        lag = "" if item.learned_lag_seconds is None else f", {item.learned_lag_seconds:.0f} s after Azure's endTime"
        rows.append(["end learned", f"from the {item.learned_from}{lag}"])
    rows.append(["Resource Graph", details.detector])
    print(tabulate(rows, tablefmt="plain"))
    print()
    print(tabulate(
        [[s.key, s.subscriber.correlation_id or "-", "yes" if s.subscriber.callback_url else "no",
          s.subscriber.watch or "-", s.published_status or "-"] for s in details.subscribers],
        headers=["subscriber", "correlationId", "callback", "watch", "published"],
    ))
    if item.named_jobs:
        for job in item.named_jobs:
            print(f"\nthe operation named job {job}: its subscribers follow that job ('python -m jobs status {job}')")
    elif details.event is not None:
        print("\nresult event (first subscriber):")
        print(json.dumps(details.event, indent=2))
    return 0


def _azurite(args: argparse.Namespace) -> int:
    azurite = _tooling("azurite")
    try:
        return int(azurite.serve(blob_port=args.blob_port, queue_port=args.queue_port, table_port=args.table_port,
                                 location=args.location))
    except (azurite.PortInUse, azurite.AzuriteNotInstalled) as exc:
        raise CommandError(str(exc)) from None


def _simulate(args: argparse.Namespace) -> int:
    simulator = _tooling("simulator")
    try:
        with contextlib.suppress(KeyboardInterrupt):
            simulator.serve(host=args.host, port=args.port, token=args.token or None,
                            seed_demo_jobs=args.seed_demo_jobs)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CommandError(f"port {args.port} on {args.host} is already in use: is a simulator already running? "
                               "(pick another with --port)") from None
        raise
    return 0


def _simulate_add_job(args: argparse.Namespace) -> int:
    simulator = _tooling("simulator")
    try:
        job = simulator.add_job_remote(args.url, vault_id=args.vault_id, final_status=args.outcome,
                                       duration=args.duration, not_found_for=args.not_found,
                                       job_type=args.job_type, operation=args.operation)
    except simulator.ControlError as exc:
        raise CommandError(str(exc)) from None
    print(f"job {job['jobId']} ends {args.outcome} after {args.duration:g} s")
    print(f"python -m jobs track {job['id']}")
    return 0


def _drill(args: argparse.Namespace) -> int:
    report = _tooling("drill").run_drill(
        jobs=args.jobs, fault_rate=args.fault_rate, kills=args.kills, runners=args.runners,
        subscribers=args.subscribers, seed=args.seed, hold_poll_queue=args.hold_poll_queue,
        failing_vault_jobs=args.failing_vault_jobs,
        credential_outage=args.credential_outage,
    )
    print(report.table())
    for problem in report.problems[:20]:
        print(f"  {problem}")
    return 0 if report.ok else 1


def _bench(args: argparse.Namespace) -> int:
    if args.scale:
        return int(_tooling("scale_bench").main(ended=args.scale_ended, storage=args.scale_storage))
    if args.watch:
        result = _tooling("bench").run_watch_bench(args.seed, vaults=args.watch_vaults, poll_seconds=args.poll_seconds,
                                                   hop_seconds=args.hop_seconds)
        return 1 if result.unreported or result.duplicates else 0
    workloads = ["spread", "burst", "repeat", "backupvault"] if args.workload == "all" else [args.workload]
    _tooling("bench").run_bench(workloads, seed=args.seed, poll_seconds=args.poll_seconds,
                                hop_seconds=args.hop_seconds, plot=Path(args.plot) if args.plot else None)
    return 0


def _demo(args: argparse.Namespace) -> int:
    return int(_tooling("demo").run_demo(timeout=args.timeout))


def _time(moment: Any) -> str:
    """A full time with its zone: ``2026-12-02 05:33:10 UTC``."""
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if moment else "-"


def _short_time(moment: Any) -> str:
    """A list cell: ``12-02 05:33Z`` (times are UTC)."""
    if not moment:
        return "-"
    offset = moment.utcoffset()
    zone = "Z" if offset is not None and not offset else moment.strftime("%z") or " (local)"
    return moment.strftime("%m-%d %H:%M") + zone
