"""Connection handling fit for Lambda: one lazily opened connection per container, reused across
invocations and reopened when the server dropped it; a pool elsewhere."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from rampart.adapters.postgres import db as dbmodule
from rampart.adapters.postgres.db import PooledDatabase, SingleConnection


@pytest.fixture
def fresh_env(monkeypatch: pytest.MonkeyPatch, pg_url: str) -> Iterator[pytest.MonkeyPatch]:
    dbmodule.reset_database()
    monkeypatch.setenv("DATABASE_URL", pg_url)
    yield monkeypatch
    dbmodule.reset_database()


def backend_pid(database: dbmodule.Database) -> int:
    with database.connection() as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        return int(row[0])


def test_lambda_gets_one_lazy_connection_reused_across_invocations(fresh_env: pytest.MonkeyPatch) -> None:
    fresh_env.setenv("AWS_LAMBDA_FUNCTION_NAME", "rampart-transfers")
    database = dbmodule.get_database()
    assert isinstance(database, SingleConnection)
    assert database._conn is None  # nothing opened at cold start
    first = backend_pid(database)
    assert backend_pid(database) == first
    assert dbmodule.get_database() is database


def test_lambda_connection_reopens_after_the_server_dropped_it(pg_url: str) -> None:
    """A connection the server closed while idle (pg_terminate_backend here; RDS Proxy's idle
    timeout or a failover in the cloud) is replaced before use: the call succeeds, no 5xx."""
    database = SingleConnection(pg_url)
    try:
        first = backend_pid(database)
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (first,))  # waits until it is gone
        assert backend_pid(database) != first  # the next invocation reconnects, and its call succeeds
        assert database.reconnects == 1
    finally:
        database.close()


def test_a_connection_dropped_while_a_statement_runs_fails_that_call_and_reconnects_after(pg_url: str) -> None:
    database = SingleConnection(pg_url)
    try:
        first = backend_pid(database)
        with database.connection() as conn:
            with psycopg.connect(pg_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s, 5000)", (first,))
            # the statement was sent: it fails loudly, never retried
            with pytest.raises(psycopg.OperationalError):
                conn.execute("SELECT 1").fetchone()
        assert backend_pid(database) != first
    finally:
        database.close()


def test_connections_give_up_after_the_connect_timeout() -> None:
    assert dbmodule._CONNECT_ARGS["connect_timeout"] == dbmodule.CONNECT_TIMEOUT_SECONDS <= 5


def test_outside_lambda_a_pool(fresh_env: pytest.MonkeyPatch) -> None:
    fresh_env.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    database = dbmodule.get_database()
    assert isinstance(database, dbmodule.ByRole)  # one pool per role the invocations act as
    assert isinstance(database.database(None), PooledDatabase)


def test_connections_are_autocommit(pg_url: str) -> None:
    database = SingleConnection(pg_url)
    try:
        with database.connection() as conn:
            assert conn.autocommit
    finally:
        database.close()


def test_missing_database_url_is_a_clear_error(fresh_env: pytest.MonkeyPatch) -> None:
    fresh_env.delenv("DATABASE_URL")
    with pytest.raises(RuntimeError, match="DATABASE_URL"):
        dbmodule.get_database()
