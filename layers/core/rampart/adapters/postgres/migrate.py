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


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = 4096) -> str:
    """PostgreSQL's SCRAM-SHA-256 verifier of ``password`` (RFC 5802/7677): what ``ALTER ROLE …
    PASSWORD`` stores. Sent instead of the password, so no statement log or audit line holds it."""
    import base64
    import hashlib
    import hmac
    import os

    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def set_passwords(url: str, passwords: dict[str, str]) -> None:
    """Give each login role its password (as a SCRAM verifier): the cloud's RDS Proxy logs in as
    each role with the password in that role's secret. Roles the migrations did not create are an
    error (a secret for a role nobody declared)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        for role, password in sorted(passwords.items()):
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
                raise RuntimeError(f"no database role {role!r}: the migrations create every role of the manifest")
            conn.execute(
                sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(scram_verifier(password))
                )
            )


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
