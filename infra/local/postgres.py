"""Embedded PostgreSQL for the local twin and the tests (pgserver: a private PostgreSQL 16 from a
wheel). Data lives under ``.data/`` in the project (git-ignored). Twin-only: never in a layer."""

from __future__ import annotations

import fcntl
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("RAMPART_DATA_DIR", ROOT / ".data"))

_servers: dict[Path, Any] = {}
# The twin's pool, the tests' pools and 64-thread concurrency tests share one server.
MAX_CONNECTIONS = 300


def embedded_server(name: str = "pg") -> Any:
    """Start (or join) the embedded server whose data lives in ``.data/<name>``. It stops when
    the last process using it exits.

    Safe when several processes race for a first start (pytest-xdist workers, the twin and the
    benchmark): an exclusive lock on ``.data/<name>.lock`` lets one process initialize and start
    the server while the others wait, then join the running one. pgserver's own lock does not
    cover its first steps (creating the folder, handing it to its system user), so two first
    starts at once could run ``initdb`` on a folder the other had just created."""
    path = DATA_DIR / name
    if path not in _servers:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _exclusive(path.with_name(f"{name}.lock")), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

            server = pgserver.get_server(path, cleanup_mode="stop")
            if _raise_connection_limit(server.get_uri()):
                # The limit applies from the next start: restart now. Under this lock no other
                # process has joined a server this process just started, so releasing our handle
                # stops it (had others joined, it keeps running and the limit waits for its next start).
                server._cleanup()
                server = pgserver.get_server(path, cleanup_mode="stop")
        _servers[path] = server
    return _servers[path]


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """An exclusive advisory lock between processes, released when the block ends (or the
    process dies: the kernel drops ``flock`` locks with their file descriptor)."""
    with lock_path.open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _raise_connection_limit(url: str) -> bool:
    """Ask for :data:`MAX_CONNECTIONS` (initdb's default is 100); True when the running server has
    fewer, so that it must restart for the setting to apply."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT setting::int FROM pg_settings WHERE name = 'max_connections'").fetchone()
        if row is not None and row[0] < MAX_CONNECTIONS:
            conn.execute(sql.SQL("ALTER SYSTEM SET max_connections = {}").format(sql.Literal(str(MAX_CONNECTIONS))))
            return True
    return False


def embedded_url(name: str = "pg", database: str = "rampart") -> str:
    """URL of ``database`` on the embedded server, created if missing."""
    server = embedded_server(name)
    ensure_database(server.get_uri(), database)
    return str(server.get_uri(database))


def ensure_database(
    admin_url: str, database: str, *, fresh: bool = False, settings: dict[str, str] | None = None
) -> None:
    """Create ``database`` (dropping it first when ``fresh``) and apply per-database settings."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if fresh:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        for key, value in (settings or {}).items():
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                    sql.Identifier(database), sql.Identifier(key), sql.Literal(value)
                )
            )


def with_database(url: str, database: str) -> str:
    """The same server URL naming another database."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def bin_dir() -> Path:
    """Folder of the bundled PostgreSQL binaries (pgbench, psql)."""
    import pgserver

    return Path(pgserver.__file__).parent / "pginstall" / "bin"
