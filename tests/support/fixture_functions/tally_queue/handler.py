"""Fixture queue consumer (never deployed): accepts ``{"n": <int>}`` and fails anything else (a
poison message: reported in batchItemFailures until the redrive moves it to the DLQ)."""

from __future__ import annotations

from rampart.core.entry import QueueMessage, queue_entry
from rampart.core.errors import Permanent

TALLY: list[int] = []  # what this container accepted (in-process tests read it)


@queue_entry("tally_queue")
def handler(message: QueueMessage) -> None:
    body = message.body
    if not isinstance(body, dict) or type(body.get("n")) is not int:
        raise Permanent('a job is {"n": <integer>}')
    TALLY.append(body["n"])
