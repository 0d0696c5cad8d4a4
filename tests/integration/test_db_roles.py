"""Least privilege in the database (issue 12, §1): the roles of migrations/0008.roles.sql are the
manifest's, each function's role can do what its function does, and a role reaching beyond its
function is refused by PostgreSQL, as it would be in Aurora. (The existing e2e suites run every
function of the twin on its role: infra/local/lambdas.py.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from infra import manifest
from infra.local.lambdas import acting_role
from infra.local.postgres import with_database
from rampart.adapters.postgres import db as dbmodule
from rampart.adapters.postgres.migrate import migrate

MIGRATIONS = Path(dbmodule.__file__).with_name("migrations")


@contextmanager
def connected(pg_url: str, role: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(dbmodule.as_role(pg_url, role), autocommit=True) as conn:
        yield conn


def refused(conn: psycopg.Connection, statement: str, params: tuple[object, ...] = ()) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement, params)  # type: ignore[arg-type]  # a test's literal statement


def test_the_migrations_create_exactly_the_manifests_login_roles(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles "
            "WHERE rolname LIKE 'rampart\\_%'"
        ).fetchall()
    found = {name: (login, sup, createrole, createdb) for name, login, sup, createrole, createdb in rows}
    assert set(found) == {r.name for r in manifest.MANIFEST.login_roles()}
    assert all(flags == (True, False, False, False) for flags in found.values()), found


def test_every_function_on_postgres_names_a_declared_role_and_the_twin_acts_as_it() -> None:
    for fn in manifest.FUNCTIONS:
        if "postgres" not in fn.uses:
            assert fn.db_role is None
            assert acting_role(fn) is None
            continue
        role = manifest.MANIFEST.db_role(str(fn.db_role))
        assert acting_role(fn) == (None if role.owner else role.name), fn.name
    assert manifest.function("migrate").db_role == manifest.OWNER_ROLE


def test_the_ledgers_entry_points_run_as_their_owner_on_a_pinned_search_path(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT n.nspname || '.' || p.proname, p.prosecdef, p.proconfig FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE (n.nspname, p.proname) IN (('ledger', 'create_transfer'), ('ledger', 'create_transfers'), "
            "('ledger', 'finalize_hold'), ('ledger', 'expire_holds'), ('auth', 'rotate_refresh_token'))"
        ).fetchall()
    assert len(rows) == 5, rows
    for name, definer, config in rows:
        assert definer, name
        assert "search_path=pg_catalog, pg_temp" in config, name


def test_the_role_migration_is_idempotent_across_databases_of_one_server(pg_url: str) -> None:
    """Roles are cluster-wide: a second database on the same server migrates cleanly."""
    name = f"rampart_roles_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        other = with_database(pg_url, name)
        assert "0008.roles" in migrate(other)
        with connected(other, "rampart_health") as conn:
            conn.execute("SELECT 1 FROM ledger.assets LIMIT 1")
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_health_reads_its_probe_and_nothing_of_auth_or_the_ledgers_money(pg_url: str) -> None:
    with connected(pg_url, "rampart_health") as conn:
        conn.execute("SELECT 1 FROM ledger.assets LIMIT 1")
        refused(conn, "SELECT * FROM auth.users LIMIT 1")
        refused(conn, "SELECT * FROM ledger.accounts LIMIT 1")
        refused(conn, "SELECT * FROM webhooks.inbox LIMIT 1")


def test_accounts_opens_and_reads_accounts_but_cannot_move_money(pg_url: str) -> None:
    with connected(pg_url, "rampart_accounts") as conn:
        row = conn.execute(
            "INSERT INTO ledger.accounts (owner_id, currency, name, is_system, debits_must_not_exceed_credits) "
            "VALUES ('u-roles', 'USD', 'w', false, true) RETURNING id"
        ).fetchone()
        assert row is not None
        account = int(row[0])
        conn.execute("SELECT * FROM ledger.entries WHERE account_id = %s", (account,))
        # an account born with a balance, an entry, a transfer: refused
        refused(
            conn,
            "INSERT INTO ledger.accounts (owner_id, currency, credits_posted) VALUES ('u-roles', 'USD', 1000)",
        )
        refused(conn, "UPDATE ledger.accounts SET credits_posted = 1000 WHERE id = %s", (account,))
        refused(conn, "INSERT INTO ledger.entries (account_id) VALUES (%s)", (account,))
        refused(conn, "SELECT ledger.create_transfer('u', 'r', %s, %s, 1, 'USD', NULL, NULL)", (account, account))
        refused(conn, "SELECT ledger.expire_holds(1)")
        refused(conn, "SELECT * FROM auth.partners LIMIT 1")


def test_transfers_moves_money_only_through_the_ledgers_functions(pg_url: str) -> None:
    with connected(pg_url, "rampart_transfers") as conn:
        conn.execute("SELECT id FROM ledger.transfers LIMIT 1")
        refused(conn, "INSERT INTO ledger.entries (account_id) VALUES (1)")
        refused(conn, "UPDATE ledger.accounts SET credits_posted = credits_posted + 1")
        refused(conn, "DELETE FROM ledger.transfers")
        refused(conn, "SELECT * FROM auth.users LIMIT 1")
        refused(conn, "SELECT ledger.expire_holds(1)")


def test_the_sweep_only_expires_holds(pg_url: str) -> None:
    with connected(pg_url, "rampart_ledger_sweep") as conn:
        conn.execute("SELECT ledger.expire_holds(1)")
        refused(conn, "SELECT * FROM ledger.accounts LIMIT 1")
        refused(conn, "SELECT ledger.create_transfer('u', 'r', 1, 2, 1, 'USD', NULL, NULL)")


def test_the_public_functions_cannot_reach_money_or_each_others_data(pg_url: str) -> None:
    with connected(pg_url, "rampart_auth") as conn:
        conn.execute("SELECT id FROM auth.users LIMIT 1")
        refused(conn, "SELECT * FROM ledger.accounts LIMIT 1")
        refused(conn, "SELECT * FROM auth.partners LIMIT 1")
        refused(conn, "UPDATE auth.users SET role = 'admin'")
    with connected(pg_url, "rampart_authorizer") as conn:
        conn.execute("SELECT id FROM auth.partners LIMIT 1")
        refused(conn, "SELECT * FROM auth.users LIMIT 1")
        refused(conn, "INSERT INTO auth.partners (id) VALUES ('p')")
    with connected(pg_url, "rampart_webhook_receiver") as conn:
        conn.execute("SELECT id FROM webhooks.inbox LIMIT 1")
        refused(conn, "SELECT * FROM rails.payments LIMIT 1")
        refused(conn, "UPDATE webhooks.inbox SET applied_at = now(), outcome = 'forged'")
        refused(conn, "SELECT * FROM ledger.accounts LIMIT 1")


def test_no_role_creates_objects(pg_url: str) -> None:
    for role in manifest.MANIFEST.login_roles():
        with connected(pg_url, role.name) as conn:
            for schema in ("ledger", "auth", "webhooks", "rails", "public"):
                refused(conn, f"CREATE TABLE {schema}.intruder_{role.name} (x int)")


def test_a_twin_invocation_connects_as_its_role(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    from rampart.core.settings import reset_settings

    reset_settings()
    dbmodule.reset_database()
    try:
        database = dbmodule.get_database()
        with dbmodule.acting_as("rampart_health"), database.connection() as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("rampart_health",)
            refused(conn, "SELECT * FROM auth.users LIMIT 1")
        with database.connection() as conn:  # no role: the URL's own user (migrations, tests)
            row = conn.execute("SELECT current_user").fetchone()
            assert row is not None
            assert row[0] != "rampart_health"
    finally:
        dbmodule.reset_database()


def test_the_scram_verifier_is_libpqs(pg_url: str) -> None:
    """The cloud's migrate sends each role's password as PostgreSQL's own SCRAM-SHA-256 verifier."""
    import base64

    from rampart.adapters.postgres.migrate import scram_verifier

    with psycopg.connect(pg_url, autocommit=True) as conn:
        theirs = conn.pgconn.encrypt_password(b"s3cret-pass", b"rampart_auth", b"scram-sha-256").decode()
    iterations, _, rest = theirs.removeprefix("SCRAM-SHA-256$").partition(":")
    salt = base64.b64decode(rest.split("$", 1)[0])
    assert scram_verifier("s3cret-pass", salt=salt, iterations=int(iterations)) == theirs


def test_migrate_sets_each_login_roles_password_and_refuses_an_undeclared_role(pg_url: str) -> None:
    from rampart.adapters.postgres.migrate import set_passwords

    set_passwords(pg_url, {"rampart_ledger_sweep": "a-generated-password"})
    with psycopg.connect(pg_url, autocommit=True) as conn:
        row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'rampart_ledger_sweep'").fetchone()
    assert row is not None
    assert str(row[0]).startswith("SCRAM-SHA-256$4096:")
    with pytest.raises(RuntimeError, match="no database role"):
        set_passwords(pg_url, {"rampart_nobody": "x"})
