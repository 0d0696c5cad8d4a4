"""Apply Rampart's SQL migrations (yoyo) to a PostgreSQL database.

``python -m rampart.adapters.postgres.migrate`` applies them to ``DATABASE_URL`` (``make migrate``
falls back to the twin's embedded PostgreSQL: ``infra.local.migrate``). The migrate Lambda calls
:func:`migrate` on every deploy.
"""

from __future__ import annotations

import sys
from pathlib import Path

MIGRATIONS = Path(__file__).with_name("migrations")


def yoyo_url(url: str) -> str:
    """yoyo names its psycopg 3 driver in the URL scheme."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def migrate(url: str) -> list[str]:
    """Apply every pending migration under a lock; returns the ids applied (in order)."""
    from yoyo import get_backend, read_migrations

    backend = get_backend(yoyo_url(url))
    try:
        migrations = read_migrations(str(MIGRATIONS))
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
        return [m.id for m in pending]
    finally:
        backend.connection.close()


def main() -> int:
    from rampart.core.settings import settings

    url = settings().database_url
    if not url:
        print("DATABASE_URL is not set", file=sys.stderr)
        return 2
    applied = migrate(url)
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
