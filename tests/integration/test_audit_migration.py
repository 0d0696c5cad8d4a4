"""Migration 0010.audit (issue 12, §5): pgaudit is created where the server offers it, and nothing
happens where it does not — the embedded PostgreSQL of the twin and the tests, which has no pgaudit.

The branch that creates it is exercised too, on this server, by the same file with its extension
and role renamed to ones the server can make (``vector``, a role of the test's own), in a database
of its own that is dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from rampart.adapters.postgres import migrate as migrations

AUDIT = Path(migrations.__file__).with_name("migrations") / "0010.audit.sql"


def _catalog(conn: psycopg.Connection) -> tuple[list[str], list[str]]:
    extensions = [r[0] for r in conn.execute("SELECT extname FROM pg_extension ORDER BY 1").fetchall()]
    roles = [r[0] for r in conn.execute("SELECT rolname FROM pg_roles ORDER BY 1").fetchall()]
    return extensions, roles


def test_the_premise_this_server_offers_no_pgaudit(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        offered = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pgaudit'").fetchone()
    assert offered is None


def test_the_audit_migration_applies_and_is_a_no_op_without_pgaudit(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        applied = conn.execute("SELECT 1 FROM _yoyo_migration WHERE migration_id = '0010.audit'").fetchone()
        assert applied is not None, "applied with the others (pg_url's database is migrated)"
        extensions, roles = _catalog(conn)
        assert "pgaudit" not in extensions
        assert "rds_pgaudit" not in roles
        conn.execute(AUDIT.read_text())  # once more: still nothing, and no error
        assert _catalog(conn) == (extensions, roles)


@pytest.fixture
def scratch(pg_url: str) -> Iterator[tuple[str, str]]:
    """A database of its own (dropped after) and a role name nobody uses (dropped after)."""
    name, role = f"rampart_audit_{uuid.uuid4().hex[:10]}", f"audit_probe_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(pg_url, dbname=name)
    try:
        yield url, role
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_where_the_extension_is_offered_it_is_created_with_its_role(scratch: tuple[str, str]) -> None:
    url, role = scratch
    text = AUDIT.read_text()
    create = "EXTENSION IF NOT EXISTS pgaudit;"
    assert text.count("'pgaudit'") == 1
    assert create in text
    offered = text.replace("'pgaudit'", "'vector'").replace(create, "EXTENSION IF NOT EXISTS vector;")
    offered = offered.replace("rds_pgaudit", role)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(offered)
        conn.execute(offered)  # idempotent: the role and the extension exist already
        extensions, roles = _catalog(conn)
        can_login = conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    assert "vector" in extensions
    assert role in roles
    assert can_login == (False,), "the audit role never logs in"
