"""Per-container singletons: built on first use, reused across invocations."""

from __future__ import annotations

from functools import cache

from rampart.ledger import Ledger


@cache
def ledger() -> Ledger:
    from rampart.adapters.postgres.db import get_database
    from rampart.adapters.postgres.ledger_store import PostgresLedgerStore

    return Ledger(PostgresLedgerStore(get_database()))


def reset() -> None:
    """Forget every singleton (tests, twin restarts)."""
    ledger.cache_clear()
