"""PostgreSQL connections fit for both runtimes.

In Lambda a container handles one request at a time, so it keeps one lazily opened connection
and reuses it across invocations (reopened if it broke). Locally, where a threaded server
handles many requests at once, a psycopg pool. Every connection is in autocommit: each ledger
operation is a single statement (one SQL function call), hence its own transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

import psycopg


class Database(Protocol):
    def connection(self) -> AbstractContextManager[psycopg.Connection]: ...

    def close(self) -> None: ...


# Never prepare server-side: psycopg's automatic prepare (after 5 runs of a query) costs its own
# round trip, and prepared statements pin sessions behind RDS Proxy. Each ledger operation is one
# short function call, cheap to plan.
_CONNECT_ARGS: dict[str, Any] = {"autocommit": True, "application_name": "rampart", "prepare_threshold": None}


def _connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, **_CONNECT_ARGS)


class SingleConnection:
    """One connection per process, opened on first use (Lambda)."""

    def __init__(self, url: str | Callable[[], str]) -> None:
        self._url = url
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        with self._lock:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = _connect(self._url if isinstance(self._url, str) else self._url())
            try:
                yield self._conn
            except psycopg.OperationalError:
                # The server went away (failover, idle timeout): drop it, the next call reconnects.
                self._conn.close()
                self._conn = None
                raise

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class PooledDatabase:
    """A connection pool (the local twin, tests, benchmarks)."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        from psycopg_pool import ConnectionPool

        self._pool: ConnectionPool[psycopg.Connection] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs=dict(_CONNECT_ARGS),
            open=True,
        )

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        with self._pool.connection() as conn:
            yield conn

    def close(self) -> None:
        self._pool.close()


_database: Database | None = None
_database_lock = threading.Lock()


def database_url() -> str:
    """``DATABASE_URL`` when set (the twin, tests). In the cloud, built for each new connection:
    through the RDS Proxy (``RAMPART_DB_PROXY_ENDPOINT``), which requires IAM authentication, as
    ``RAMPART_DB_USER`` with a fresh auth token (valid 15 minutes, signed locally) and TLS."""
    from rampart.core.settings import settings

    current = settings()
    if current.database_url:
        return current.database_url
    endpoint, user = current.db_proxy_endpoint, current.db_user
    if not endpoint or not user:
        raise RuntimeError(
            "DATABASE_URL is not set (the local twin sets it to its embedded PostgreSQL), "
            "nor RAMPART_DB_PROXY_ENDPOINT and RAMPART_DB_USER (the cloud)"
        )
    from urllib.parse import quote

    import boto3

    token = boto3.client("rds").generate_db_auth_token(DBHostname=endpoint, Port=5432, DBUsername=user)
    credentials = f"{quote(user, safe='')}:{quote(token, safe='')}"
    return f"postgresql://{credentials}@{endpoint}:5432/{quote(current.db_name, safe='')}?sslmode=require"


def get_database() -> Database:
    """The process-wide database: one connection in Lambda, a pool elsewhere."""
    global _database
    if _database is None:
        with _database_lock:
            if _database is None:
                from rampart.core.settings import settings

                current = settings()
                if current.in_lambda or not current.db_pool:
                    # A factory, not a URL: in the cloud each reconnect needs a fresh IAM token.
                    _database = SingleConnection(database_url)
                else:
                    _database = PooledDatabase(database_url(), max_size=current.db_pool_size)
    return _database


def reset_database() -> None:
    """Close and forget the process-wide database (tests, twin shutdown)."""
    global _database
    with _database_lock:
        if _database is not None:
            _database.close()
            _database = None
