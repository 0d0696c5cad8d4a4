"""The provider-events queue's consumer: each message names an inbox event, applied once to the
rail state (payments by charge reference, mints and payouts by key). A malformed event, one that
contradicts the state, or one whose predecessor is not applied yet raises: the record is
reported failed, retried after the visibility timeout and, past the queue's max receives, moved
to its DLQ (alarmed)."""

from __future__ import annotations

from rampart.core.entry import QueueMessage, queue_entry
from rampart.wiring import webhooks as wiring


@queue_entry("webhook_apply")
def handler(message: QueueMessage) -> None:
    wiring.apply_message(message.body)
