"""Errors of the webhook path, each with the status API.md gives it."""

from __future__ import annotations

from rampart.core.errors import DomainError, NotFound, Unauthorized


class UnknownProvider(NotFound):
    """No provider of that name calls us (answered before any signature is looked at)."""


class InvalidSignature(Unauthorized):
    """A delivery whose Standard Webhooks headers do not verify: missing or malformed, no
    signature made with any of the provider's secrets, or a timestamp more than the tolerance
    away from now. ``reason`` is one of ``missing``, ``malformed``, ``signature``, ``stale``,
    ``future`` (for logs and tests; the caller only learns it was refused, and why in words)."""

    def __init__(self, detail: str, *, reason: str) -> None:
        super().__init__(detail)
        self.reason = reason


class MalformedDelivery(DomainError):
    """A verified delivery whose body is not an event envelope (a JSON object with a ``type``)."""

    slug = "validation-error"
    title = "Not a provider event"


class QueueUnavailable(Exception):
    """The event queue refused or did not answer a send (not the caller's fault)."""


class UnknownInboxEvent(DomainError):
    """A queue message naming an inbox row that does not exist."""

    slug = "not-found"
    status = 404
    title = "No such inbox event"
