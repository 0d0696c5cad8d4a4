"""Scheduled: release every ledger hold whose timeout has passed (EventBridge, every minute)."""

from __future__ import annotations

from typing import Any

from rampart.adapters.postgres.db import get_database
from rampart.adapters.postgres.ledger_store import PostgresLedgerStore
from rampart.ledger import Ledger


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    released = Ledger(PostgresLedgerStore(get_database())).expire_holds()
    return {"released": released}
