"""The inbox: every verified delivery of a provider's event, recorded before it is acknowledged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

# How long a delivery id is remembered: a provider's whole retry horizon (Standard Webhooks
# providers retry for up to ~3 days).
DEDUP_HORIZON = timedelta(hours=72)
# The requeue schedule: an event never queued (the send failed) is queued again once it is this
# old; one queued but still not applied after STALE_AFTER (longer than the queue's whole retry
# span: visibility timeout × max receives) is queued again, at most MAX_REQUEUES times (after
# that it sits in the queue's DLQ, alarmed, for an operator).
REQUEUE_GRACE = timedelta(seconds=30)
STALE_AFTER = timedelta(minutes=15)
MAX_REQUEUES = 3
REQUEUE_BATCH = 100


@dataclass(frozen=True)
class InboxEvent:
    id: int
    provider: str
    webhook_id: str
    event_type: str
    body: bytes  # exactly as delivered (what the signature covered)
    received_at: datetime
    queued_at: datetime | None = None
    requeues: int = 0
    applied_at: datetime | None = None
    outcome: str | None = None
    attempts: int = 0
    last_error: str | None = None

    def message(self) -> dict[str, Any]:
        """What goes on the queue: a pointer to this row (the row is the truth)."""
        return {"inbox_id": self.id, "provider": self.provider, "webhook_id": self.webhook_id}


@dataclass(frozen=True)
class Recorded:
    """The result of recording a delivery: ``new`` when this delivery id was not seen within the
    dedup horizon; ``claimed`` when this caller must queue the event (a new one, or a duplicate
    of one whose earlier queueing failed), the claim making it the only one that does."""

    event: InboxEvent
    new: bool
    claimed: bool


@dataclass(frozen=True)
class Receipt:
    provider: str
    webhook_id: str
    inbox_id: int
    duplicate: bool
    queued: bool  # False: recorded, but the queue refused it (the schedule queues it again)


@dataclass(frozen=True)
class Applied:
    inbox_id: int
    outcome: str
    already: bool  # applied before: nothing done now
