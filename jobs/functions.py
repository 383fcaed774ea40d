"""Azure Functions triggers (Python v2 model): each one hands its input to the tracker and nothing else.

Queue names and the timer's schedule are computed from the app settings when the worker indexes the functions
(``JOBS_INTAKE_QUEUE`` names the poll and deliver queues; ``JOBS_POLL_SECONDS`` gives the NCRONTAB schedule), so
they keep their defaults when unset. The settings are read once, here. A wrong setting does not stop the indexing:
the triggers are indexed on the names their own settings give (or the defaults), the problem is logged at start-up,
and every invocation fails with it (a queue message then ends in ``<queue>-poison``, never lost) until it is fixed.
"""

from __future__ import annotations

import functools
import logging
import os

import azure.functions as func

from jobs.config import ConfigError, Settings, timer_schedule
from jobs.tracker import Tracker

__all__ = ["blueprint", "get_tracker"]

log = logging.getLogger(__name__)

CONNECTION = "AzureWebJobsStorage"

_problem: ConfigError | None = None
try:
    _settings = Settings.from_env()
except ConfigError as exc:
    _problem = exc
    _settings = Settings.for_indexing()
    log.error("Backup Job Tracker cannot start: %s. Its functions are indexed but fail until this is fixed.", exc)

blueprint = func.Blueprint()


@functools.cache
def get_tracker() -> Tracker:
    if _problem is not None:
        raise ConfigError(f"Backup Job Tracker cannot start: {_problem}")
    return Tracker(_settings)


@blueprint.function_name("intake")
@blueprint.queue_trigger(arg_name="msg", queue_name=_settings.intake_queue, connection=CONNECTION)
def intake(msg: func.QueueMessage) -> None:
    """Records the job(s) a message names, or sends the message to the rejected queue with a reason."""
    get_tracker().accept_message(msg.get_body())


@blueprint.function_name("poll_round")
@blueprint.timer_trigger(arg_name="timer", schedule=timer_schedule(_settings.poll_seconds))
def poll_round(timer: func.TimerRequest) -> None:
    """Finds the running jobs that are due; polls a small round itself, hands a large one vault by vault to the
    poll queue (the tracker's observer logs the round)."""
    get_tracker().run_poll_round()


@blueprint.function_name("poll_vault")
@blueprint.queue_trigger(arg_name="msg", queue_name=_settings.poll_queue, connection=CONNECTION)
def poll_vault(msg: func.QueueMessage) -> None:
    """Asks Azure about one vault's due jobs, records what changed and publishes what ended."""
    get_tracker().handle_poll_message(msg.get_body().decode("utf-8"))


@blueprint.function_name("deliver")
@blueprint.queue_trigger(arg_name="msg", queue_name=_settings.deliver_queue, connection=CONNECTION)
def deliver(msg: func.QueueMessage) -> None:
    """One webhook delivery attempt; a retry is a new, delayed message."""
    get_tracker().handle_delivery_message(msg.get_body().decode("utf-8"))


if os.environ.get("JOBS_LOG_LEVEL"):
    logging.getLogger("jobs").setLevel(os.environ["JOBS_LOG_LEVEL"].upper())
