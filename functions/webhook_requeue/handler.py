"""Scheduled (every minute): queue again the inbox events recorded but not applied (never queued,
or queued long ago and still not applied), and forget delivery ids older than 72 hours."""

from __future__ import annotations

from typing import Any

from rampart.core.entry import scheduled_entry
from rampart.wiring import webhooks as wiring


@scheduled_entry("webhook_requeue")
def handler(event: dict[str, Any]) -> dict[str, int]:
    webhooks = wiring.service()
    return {"requeued": webhooks.requeue(), "pruned": webhooks.prune()}
