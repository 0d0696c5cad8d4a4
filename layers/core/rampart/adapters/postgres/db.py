"""PostgreSQL connections fit for both runtimes.

In Lambda a container handles one request at a time, so it keeps one lazily opened connection
and reuses it across invocations. Locally, where a threaded server handles many requests at
once, a psycopg pool. Every connection is in autocommit: each ledger operation is a single
statement (one SQL function call), hence its own transaction.

A kept connection goes stale while the container idles: RDS Proxy closes idle client
connections, Aurora restarts, an operator terminates a backend. Before it is reused, one whose
server has closed it (its socket turned readable while idle: the server's last words and EOF)
is replaced by a fresh one; the statement then runs on the fresh connection, never on the dead
one, so the request succeeds instead of answering 5xx. A failure while a statement runs drops
the connection for the next call and propagates (the ledger's references make a client's retry
idempotent). Connecting gives up after ``CONNECT_TIMEOUT_SECONDS``, well within a function's
timeout.
"""

from __future__ import annotations

import select
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

import psycopg


class Database(Protocol):
    def connection(self) -> AbstractContextManager[psycopg.Connection]: ...

    def close(self) -> None: ...


# Never prepare server-side: psycopg's automatic prepare (after 5 runs of a query) costs its own
# round trip, and prepared statements pin sessions behind RDS Proxy. Each ledger operation is one
# short function call, cheap to plan.
CONNECT_TIMEOUT_SECONDS = 5  # libpq's connect_timeout; the proxy's borrow timeout is below every function's
_CONNECT_ARGS: dict[str, Any] = {
    "autocommit": True,
    "application_name": "rampart",
    "prepare_threshold": None,
    "connect_timeout": CONNECT_TIMEOUT_SECONDS,
}


def _connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, **_CONNECT_ARGS)


def is_stale(conn: psycopg.Connection) -> bool:
    """Whether an idle connection can no longer be used: closed, broken, or its socket readable.
    An idle autocommit connection expects nothing from the server; bytes waiting there are a
    terminated backend's FATAL error or a closed socket's EOF (RDS Proxy's idle-client timeout,
    a failover, ``pg_terminate_backend``). Costs no round trip."""
    if conn.closed or conn.broken:
        return True
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class SingleConnection:
    """One connection per process, opened on first use (Lambda), replaced before use when stale."""

    def __init__(self, url: str | Callable[[], str]) -> None:
        self._url = url
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()
        self.reconnects = 0  # stale connections replaced before use

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        with self._lock:
            if self._conn is not None and is_stale(self._conn):
                self._conn.close()
                self._conn = None
                self.reconnects += 1
            if self._conn is None:
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


# The database role the current invocation connects as, when one process runs many functions
# (the twin: one DATABASE_URL for all, its Lambda runtime sets each invocation's role from the
# manifest). None: the URL's own user. In Lambda the role is the URL's user (RAMPART_DB_USER).
_acting_role: ContextVar[str | None] = ContextVar("rampart_db_role", default=None)


@contextmanager
def acting_as(role: str | None) -> Iterator[None]:
    """Connections opened through :func:`get_database` in this context log in as ``role``."""
    token = _acting_role.set(role)
    try:
        yield
    finally:
        _acting_role.reset(token)


def acting_role() -> str | None:
    return _acting_role.get()


def as_role(url: str, role: str | None) -> str:
    """``url`` logging in as ``role`` (unchanged for None)."""
    if role is None:
        return url
    from psycopg.conninfo import make_conninfo

    return make_conninfo(url, user=role)


class ByRole:
    """One database per role, chosen at each :meth:`connection` by :func:`acting_role`: the
    twin's functions share a process but not their database roles."""

    def __init__(self, make: Callable[[str | None], Database]) -> None:
        self._make = make
        self._by_role: dict[str | None, Database] = {}
        self._lock = threading.Lock()

    def database(self, role: str | None) -> Database:
        found = self._by_role.get(role)
        if found is None:
            with self._lock:
                found = self._by_role.get(role)
                if found is None:
                    found = self._by_role[role] = self._make(role)
        return found

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        with self.database(acting_role()).connection() as conn:
            yield conn

    def close(self) -> None:
        with self._lock:
            for database in self._by_role.values():
                database.close()
            self._by_role.clear()


_database: Database | None = None
_database_lock = threading.Lock()


def database_url() -> str:
    """``DATABASE_URL`` when set (the twin, tests). In the cloud, built for each new connection:
    through the RDS Proxy (``RAMPART_DB_PROXY_ENDPOINT``), which requires IAM authentication, as
    ``RAMPART_DB_USER`` with a fresh auth token (valid 15 minutes, signed locally) and TLS that
    verifies the proxy's certificate and host name (``sslmode=verify-full``) against the public
    roots botocore ships, which include Amazon's (RDS Proxy's certificates chain to them)."""
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
    tls = f"sslmode=verify-full&sslrootcert={quote(trust_store(), safe='/')}"
    return f"postgresql://{credentials}@{endpoint}:5432/{quote(current.db_name, safe='')}?{tls}"


def trust_store() -> str:
    """The CA bundle the layer already carries: botocore's ``cacert.pem`` (Amazon's roots included)."""
    from pathlib import Path

    import botocore

    bundle = Path(botocore.__file__).parent / "cacert.pem"
    if not bundle.is_file():
        raise RuntimeError(f"no CA bundle at {bundle}: cannot verify the database proxy's certificate")
    return str(bundle)


def get_database() -> Database:
    """The process-wide database: one connection in Lambda, a pool elsewhere (one per role the
    invocations act as: :func:`acting_as`)."""
    global _database
    if _database is None:
        with _database_lock:
            if _database is None:
                from rampart.core.settings import settings

                current = settings()
                if current.in_lambda:
                    # A factory, not a URL: in the cloud each reconnect needs a fresh IAM token.
                    _database = SingleConnection(database_url)
                elif not current.db_pool:
                    _database = ByRole(lambda role: SingleConnection(lambda: as_role(database_url(), role)))
                else:
                    url, size = database_url(), current.db_pool_size
                    _database = ByRole(lambda role: PooledDatabase(as_role(url, role), max_size=size))
    return _database


def reset_database() -> None:
    """Close and forget the process-wide database (tests, twin shutdown)."""
    global _database
    with _database_lock:
        if _database is not None:
            _database.close()
            _database = None
