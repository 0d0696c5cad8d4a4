"""Scheduled: release every ledger hold whose timeout has passed (EventBridge, every minute)."""

from __future__ import annotations

from typing import Any

from rampart.core.entry import scheduled_entry
from rampart.wiring import ledger as wiring


@scheduled_entry("ledger_sweep")
def handler(event: dict[str, Any]) -> dict[str, int]:
    return {"released": wiring.ledger().expire_holds()}
