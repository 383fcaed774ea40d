"""The command line: ``python -m jobs run | track | list | status``, and the local tooling's verbs.

``run``, ``track``, ``list`` and ``status`` are what a producer or an operator needs, and are deployed with the app.
``simulate``, ``demo`` and ``drill`` come from the sibling package ``devtools`` (a clone of the repository has it,
a Function App does not): it is imported only when one of them runs, and its absence is one clear line.

Settings come from the environment, then from ``local.settings.json`` (its ``Values``) in the current folder, the
way ``func start`` reads them.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from jobs.config import ConfigError, Settings

__all__ = ["ToolingMissing", "load_settings", "main"]

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
    default_level = "ERROR" if args.command in (_demo, _simulate, _drill) else "INFO"
    logging.basicConfig(
        level=os.environ.get("JOBS_LOG_LEVEL", default_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # "connection pool is full" under 16 workers is harmless
    try:
        return int(args.command(args) or 0)
    except (ConfigError, ToolingMissing) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _tooling(module: str) -> ModuleType:
    """``devtools.<module>``, imported on first use; a clear ``ToolingMissing`` when the package is absent."""
    try:
        return importlib.import_module(f"{TOOLING_PACKAGE}.{module}")
    except ModuleNotFoundError as exc:
        if exc.name not in (TOOLING_PACKAGE, f"{TOOLING_PACKAGE}.{module}"):
            raise
        verb = sys.argv[1] if len(sys.argv) > 1 else module
        raise ToolingMissing(
            f"'python -m jobs {verb}' needs the local tooling (package '{TOOLING_PACKAGE}'), which is not deployed "
            "with the app: run it from a clone of the repository, after 'make setup'"
        ) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jobs", description="Backup Job Tracker")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the tracker on this machine (same code paths as the Functions app)")
    run.add_argument("--until-idle", action="store_true",
                     help="exit 0 once no message is queued, no job runs and nothing awaits delivery")
    run.add_argument("--timeout", type=float, metavar="SECONDS", help="exit non-zero after this long")
    run.set_defaults(command=_run)

    track = commands.add_parser("track", help="put a job on the intake queue")
    track.add_argument("resource_id", nargs="?", metavar="RESOURCE_ID", help="the job's resource id")
    track.add_argument("--vault-id", help="the vault's resource id (with --job-id)")
    track.add_argument("--job-id", help="the job's GUID (with --vault-id)")
    track.add_argument("--callback-url", help="a webhook for this job alone (https, allowed host)")
    track.add_argument("--correlation-id", help="echoed in the result event")
    track.set_defaults(command=_track)

    listing = commands.add_parser("list", help="the jobs the table holds")
    listing.add_argument("--state", choices=("running", "ended", "all"), default="all")
    listing.set_defaults(command=_list)

    status = commands.add_parser("status", help="one job: by tracking id, job GUID or resource id")
    status.add_argument("id", metavar="ID")
    status.set_defaults(command=_status)

    simulate = commands.add_parser("simulate", help="serve the Backup REST API simulator on loopback")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=0)
    simulate.add_argument("--token", default="sim-token", help="bearer token it requires ('' for none)")
    simulate.add_argument("--seed-demo-jobs", action="store_true", help="start with a few demo jobs")
    simulate.set_defaults(command=_simulate)

    drill = commands.add_parser("drill", help="fault drill: Azure faults and runner kills; prints what came out")
    drill.add_argument("--jobs", type=int, default=200)
    drill.add_argument("--fault-rate", type=float, default=0.3, help="share of ARM answers faulted (0-1)")
    drill.add_argument("--kills", type=int, default=0, help="SIGKILL the runner this many times (subprocesses)")
    drill.add_argument("--runners", type=int, default=1, help="runners at once on the same storage")
    drill.add_argument("--subscribers", type=int, default=1, help="subscribers per job")
    drill.add_argument("--seed", type=int, default=7)
    drill.set_defaults(command=_drill)

    demo = commands.add_parser("demo", help="the whole loop on this machine: Azurite, simulator, webhook receiver")
    demo.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS")
    demo.set_defaults(command=_demo)
    return parser


def _tracker() -> Any:
    from jobs.tracker import Tracker

    return Tracker(load_settings())


def _run(args: argparse.Namespace) -> int:
    from jobs.local_host import LocalHost

    host = LocalHost(_tracker())
    signal.signal(signal.SIGTERM, lambda *_: host.stop_event.set())
    try:
        return host.run(until_idle=args.until_idle, timeout=args.timeout)
    except KeyboardInterrupt:
        return 130


def _track(args: argparse.Namespace) -> int:
    from jobs.flows.intake import IntakeRejected, parse_message

    settings = load_settings()
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
    text = json.dumps(message)
    try:
        request = parse_message(text, arm_endpoint=settings.arm_endpoint, allowed_hosts=settings.callback_allowed_hosts)
    except IntakeRejected as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from jobs.storage import StorageAccount

    storage = StorageAccount(settings.storage)
    storage.ensure([settings.intake_queue], settings.table)
    storage.queue(settings.intake_queue).send_message(text)
    for job in request.jobs:
        print(f"queued {job.id}\ntracking id: {job.key}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    tracker = _tracker()
    rows = []
    for item in sorted(tracker.store.list_items(args.state), key=lambda i: i.created_at):
        rows.append([
            item.tracking_id,
            item.job_id or f"operation {item.operation_id}",
            item.vault_id.rsplit("/", 1)[-1],
            item.status or "-",
            item.result_status or "running",
            _time(item.created_at),
            _time(item.ended_at),
        ])
    if not rows:
        print(f"no {args.state if args.state != 'all' else ''} jobs".replace("  ", " "))
        return 0
    print(tabulate(rows, headers=["tracking id", "job", "vault", "Azure status", "result", "since", "ended"]))
    return 0


def _status(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from jobs.domain.references import InvalidReference, is_guid
    from jobs.flows.result_events import event_for
    from jobs.providers import parse_job_id

    tracker = _tracker()
    wanted = args.id.strip()
    try:
        wanted = parse_job_id(wanted).key if wanted.startswith("/") else wanted
    except InvalidReference as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    item = tracker.store.get(wanted)
    if item is None and is_guid(wanted):
        item = next((i for i in tracker.store.list_items() if (i.job_id or "").lower() == wanted.lower()), None)
    if item is None:
        print(f"error: no job {args.id!r} in table {tracker.settings.table}", file=sys.stderr)
        return 1
    properties = (item.resource or {}).get("properties") or {}
    print(tabulate([
        ["tracking id", item.tracking_id],
        ["job", item.job_resource_id or f"operation {item.operation_id} of {item.vault_id}"],
        ["type", f"{properties.get('jobType', '-')} / {properties.get('operation', '-')}"],
        ["entity", properties.get("entityFriendlyName", "-")],
        ["Azure status", item.status or "-"],
        ["result", item.result_status or "running"],
        ["tracked since", _time(item.created_at)],
        ["last polled", _time(item.last_polled_at)],
        ["ended", _time(item.ended_at)],
        ["polls", item.poll_count],
        ["last error", json.dumps(item.last_error) if item.last_error else "-"],
    ], tablefmt="plain"))
    subscribers = tracker.store.list_subscribers(item.tracking_id)
    print()
    print(tabulate(
        [[s.key, s.subscriber.correlation_id or "-", "yes" if s.subscriber.callback_url else "no",
          s.published_status or "-"] for s in subscribers],
        headers=["subscriber", "correlationId", "callback", "published"],
    ))
    if item.ended and subscribers:
        print("\nresult event (first subscriber):")
        print(json.dumps(event_for(item, subscribers[0]), indent=2))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    serve = _tooling("simulator").serve
    with contextlib.suppress(KeyboardInterrupt):
        serve(host=args.host, port=args.port, token=args.token or None, seed_demo_jobs=args.seed_demo_jobs)
    return 0


def _drill(args: argparse.Namespace) -> int:
    report = _tooling("drill").run_drill(
        jobs=args.jobs, fault_rate=args.fault_rate, kills=args.kills, runners=args.runners,
        subscribers=args.subscribers, seed=args.seed,
    )
    print(report.table())
    for problem in report.problems[:20]:
        print(f"  {problem}")
    return 0 if report.ok else 1


def _demo(args: argparse.Namespace) -> int:
    return int(_tooling("demo").run_demo(timeout=args.timeout))


def _time(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"
