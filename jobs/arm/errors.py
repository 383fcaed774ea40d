"""Answers from Resource Manager that the caller has to act on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ArmError", "ArmForbidden", "ArmNextLinkRefused", "ArmNotFound", "ArmThrottled", "ArmUnauthorized",
           "ArmUnavailable"]


@dataclass
class ArmError(Exception):
    """An answer from ARM that the caller has to act on. ``code`` and ``message`` are Azure's."""

    status: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"

    def as_error(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "recommendations": []}

    @property
    def lasting(self) -> bool:
        """Whether asking again will fail the same way: Azure refused the call itself (400), or the answer is one
        the tracker will not follow (``ArmNextLinkRefused``). A caller remembers it rather than asking every round."""
        return self.status == 400


class ArmNextLinkRefused(ArmError):
    """A list's ``nextLink`` points outside ``ARM_ENDPOINT`` (and the region's host of it): not followed, since the
    token would go there. The same list gets the same link next time: ``lasting``."""

    @property
    def lasting(self) -> bool:
        return True


class ArmNotFound(ArmError):
    """404: the job or operation is not (yet) known to Azure."""


class ArmForbidden(ArmError):
    """403: the identity may not read it (for example, it lacks Backup Reader on the vault)."""


class ArmUnauthorized(ArmError):
    """401: the token itself was refused (a wrong token, ``AZURE_CLIENT_ID`` or managed identity), or none could be
    had (code ``TokenUnavailable``: the identity endpoint refused or is down): nothing about a job, and nothing any
    read of this subscription will get past until the credential is fixed."""


@dataclass
class ArmThrottled(ArmError):
    """The subscription is throttled (or our own read budget is spent) until ``retry_at`` (monotonic seconds)."""

    retry_at: float = 0.0


class ArmUnavailable(ArmError):
    """5xx, timeouts, resets or unreadable bodies that outlasted the retries: try again later."""
