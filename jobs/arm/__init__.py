"""Azure Resource Manager access: a read client (GETs, and the POSTs Azure defines as reads) that knows nothing of
backup.

- ``transport``: one request to ARM with a bearer token; 5xx, 408, resets and unreadable bodies retried a few times;
  answers turned into JSON or into the ``errors`` below.
- ``read_budget``: how many reads this process may send per subscription, one in flight at a time, and the
  Retry-After windows of a 429, shared by every instance through a ``ThrottleBoard``.
- ``pacing``: ``ReadPacer``, the pace ARM's own count of remaining reads calls for: a budget for the deployment.
- ``client``: ``ArmClient`` puts both together: ``get_json`` and ``iter_pages`` (``nextLink`` only on ARM_ENDPOINT,
  its default port written or not),
  ``post_json`` and ``iter_post_pages`` (also on the regional host of the region asked, ``regional_endpoint``).
- ``resource_graph``: ``ResourceGraph``, Azure Resource Graph queries (a tenant-level POST) in batches, page after
  page, within its quota; what to ask is each provider's (``jobs.providers.graph``).

What to read (URLs, api-version, filters) is each provider's business (``jobs.providers``).
"""

from jobs.arm.client import ArmClient, regional_endpoint
from jobs.arm.errors import (
    ArmError,
    ArmForbidden,
    ArmNextLinkRefused,
    ArmNotFound,
    ArmThrottled,
    ArmUnauthorized,
    ArmUnavailable,
)
from jobs.arm.pacing import ReadPacer, remaining_reads
from jobs.arm.read_budget import ReadBudget, SubscriptionGate, ThrottleBoard
from jobs.arm.transport import ArmTransport, CredentialToken, StaticToken, TokenProvider, parse_retry_after

__all__ = [
    "ArmClient",
    "ArmError",
    "ArmForbidden",
    "ArmNextLinkRefused",
    "ArmNotFound",
    "ArmThrottled",
    "ArmTransport",
    "ArmUnauthorized",
    "ArmUnavailable",
    "CredentialToken",
    "ReadBudget",
    "ReadPacer",
    "StaticToken",
    "SubscriptionGate",
    "ThrottleBoard",
    "TokenProvider",
    "parse_retry_after",
    "regional_endpoint",
    "remaining_reads",
]
