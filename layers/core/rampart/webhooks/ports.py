"""What the webhook path needs: a way to verify deliveries, the inbox, the event queue."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Protocol

from rampart.webhooks.models import Applied, InboxEvent, Recorded


class Verifier(Protocol):
    def verify(self, headers: Mapping[str, str], body: bytes) -> str:
        """The delivery's webhook id once its signature and timestamp check out; raises
        :class:`~rampart.webhooks.errors.InvalidSignature` otherwise."""
        ...


# An applier gets the inbox event and the store's open transaction (opaque here: the wiring
# hands it to the adapter of the state the event changes, so both commit together).
Applier = Callable[[InboxEvent, Any], str]


class InboxStore(Protocol):
    def record(self, provider: str, webhook_id: str, event_type: str, body: bytes) -> Recorded:
        """Remember the delivery id and record the event, atomically; a delivery id seen before
        records nothing (and claims the event only if it was never queued)."""
        ...

    def release(self, inbox_id: int) -> None:
        """The claimed event could not be queued: leave it for the requeue schedule."""
        ...

    def claim_due(self, *, grace: timedelta, stale: timedelta, max_requeues: int, limit: int) -> list[InboxEvent]:
        """Claim the unapplied events to queue again (see rampart.webhooks.models)."""
        ...

    def prune(self, horizon: timedelta) -> int:
        """Forget delivery ids older than ``horizon``; how many."""
        ...

    def apply(self, inbox_id: int, applier: Applier) -> Applied:
        """In one transaction: lock the event, run ``applier`` unless it was applied, mark it
        applied with the applier's outcome. A failure rolls back and is noted on the row."""
        ...

    def get(self, inbox_id: int) -> InboxEvent | None: ...

    def find(self, provider: str, webhook_id: str) -> InboxEvent | None: ...


class EventQueue(Protocol):
    def send(self, message: dict[str, Any]) -> None:
        """Queue ``message``; :class:`~rampart.webhooks.errors.QueueUnavailable` when refused."""
        ...
