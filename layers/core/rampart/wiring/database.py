"""The database itself: migrations (the deploy step)."""

from __future__ import annotations


def migrate() -> list[str]:
    """Apply every pending migration to the function's database; the ids applied, in order."""
    from rampart.adapters.postgres.db import database_url
    from rampart.adapters.postgres.migrate import migrate as apply

    return apply(database_url())
