"""Whether the storage account answers: one queue and one table read, with clients that fail within seconds."""

from __future__ import annotations

from jobs.storage.account import ClientOptions, StorageAccount, is_unreachable

__all__ = ["HEALTH_STORAGE", "check_storage"]

# The health check's own clients: an unreachable account is answered within seconds, not after the SDK's retries.
HEALTH_STORAGE = ClientOptions(retry_total=0, connection_timeout=3, read_timeout=5)


def check_storage(probe: StorageAccount, queue: str, table: str) -> str | None:
    """``None`` when ``queue`` and ``table`` can be read; else one line saying what the account did."""
    try:
        probe.queue(queue).get_queue_properties()
        next(iter(probe.table(table).query_entities(
            "PartitionKey eq @pk", parameters={"pk": "health"}, results_per_page=1)), None)
    except Exception as exc:
        if is_unreachable(exc):
            return probe.describe_unreachable(exc)
        status = getattr(exc, "status_code", None)
        code = getattr(exc, "error_code", None)
        if status:
            return f"the storage account answered {status} ({code or 'no error code'})"
        return f"{type(exc).__name__} while reading queue {queue} and table {table}"
    return None
