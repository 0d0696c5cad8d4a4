"""``make migrate``: apply the schema to ``DATABASE_URL``, or to the twin's embedded PostgreSQL."""

from __future__ import annotations

import os
import sys

from rampart.adapters.postgres.migrate import migrate


def main() -> int:
    url = os.environ.get("DATABASE_URL")
    if not url:
        from infra.local.postgres import embedded_url

        url = embedded_url()
    applied = migrate(url)
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
