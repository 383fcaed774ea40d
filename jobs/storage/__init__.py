"""The app's storage account: queue and table clients (``account``), job state (``job_store``) and the shared
Retry-After windows (``throttle_board``), all in the one table ``JOBS_TABLE``."""

from jobs.storage.account import StorageAccount
from jobs.storage.job_store import ConcurrencyConflict, JobStore
from jobs.storage.throttle_board import TableThrottleBoard

__all__ = ["ConcurrencyConflict", "JobStore", "StorageAccount", "TableThrottleBoard"]
