"""The e2e session: one local twin per test process, over real HTTP, on its own fresh database of
the embedded test server (``rampart_e2e_<xdist worker>``).

By default the twin runs as a child process (``python -m infra.local``, what ``make run`` runs):
a twin owns process-wide state — ``os.environ``, moto's global mock, the database pool of
``rampart.adapters.postgres.db`` — which the integration tests sharing an xdist worker also use
(they reset the pool and point ``DATABASE_URL`` elsewhere). ``RAMPART_E2E_TWIN=inprocess`` runs it
in this process instead (a debugger sees the handlers); ``RAMPART_E2E_URL`` uses a twin that is
already running (``make run``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.local.child import child_twin, wait_healthy
from tests.e2e.api import Client

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 120.0
# The twin's pool: the test server is shared with the integration tests of other workers (64-thread
# concurrency tests), so each worker's twin stays small.
DB_POOL_SIZE = "4"  # per database role: each function connects as its own


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _fresh_database(prefix: str = "rampart_e2e") -> str:
    """A new, empty database ``<prefix>_<xdist worker>`` on the embedded test server (or on
    ``TEST_DATABASE_URL``'s); a twin of another test module takes another prefix."""
    from infra.local.postgres import embedded_server, ensure_database, with_database

    name = f"{prefix}_{_worker()}"
    base = os.environ.get("TEST_DATABASE_URL")
    admin_url = base if base else embedded_server("pg-test").get_uri()
    ensure_database(admin_url, name, fresh=True, settings={"synchronous_commit": "off"})
    return with_database(admin_url, name)


def _wait_healthy(url: str, deadline: float) -> None:
    wait_healthy(url, max(deadline - time.monotonic(), 1.0))


# The twin runs the manifest's ``test`` stage: its windows and retries in seconds (a payment window
# of 30 s, a watch grace of 5 s, Transient retries over ~13 s; infra/manifest.py).
STAGE = "test"


def _child(database_url: str, state_dir: Path) -> Iterator[str]:
    env = {"RAMPART_DB_POOL_SIZE": DB_POOL_SIZE, "RAMPART_STAGE": STAGE}
    with child_twin(database_url, state_dir, env=env, timeout=START_TIMEOUT) as url:
        yield url


def _in_process(database_url: str, state_dir: Path) -> Iterator[str]:
    from infra.local.twin import Twin

    os.environ.setdefault("RAMPART_DB_POOL_SIZE", DB_POOL_SIZE)
    os.environ.setdefault("RAMPART_STAGE", STAGE)
    twin = Twin(database_url=database_url, state_dir=state_dir)
    try:
        yield twin.start(port=0, timeout=START_TIMEOUT)
    finally:
        twin.stop()


@pytest.fixture(scope="session")
def twin_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The state folder of the session's twin (``jwt-keys.json``, its log). For a twin that is
    already running (``RAMPART_E2E_URL``): ``RAMPART_TWIN_STATE_DIR``, else ``make run``'s default."""
    if os.environ.get("RAMPART_E2E_URL"):
        from infra.local.postgres import DATA_DIR

        return Path(os.environ.get("RAMPART_TWIN_STATE_DIR") or DATA_DIR / "twin")
    return tmp_path_factory.mktemp("twin")


_DATABASE_URL = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def twin_url(twin_state_dir: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """Base URL of a running twin (``http://127.0.0.1:<port>``)."""
    given = os.environ.get("RAMPART_E2E_URL")
    if given:
        _wait_healthy(given.rstrip("/"), time.monotonic() + START_TIMEOUT)
        yield given.rstrip("/")
        return
    state_dir = twin_state_dir
    database_url = _fresh_database()
    request.config.stash[_DATABASE_URL] = database_url
    if os.environ.get("RAMPART_E2E_TWIN") == "inprocess":
        yield from _in_process(database_url, state_dir)
    else:
        yield from _child(database_url, state_dir)


@pytest.fixture(scope="session")
def twin_database_url(twin_url: str, request: pytest.FixtureRequest) -> str:
    """The database URL of the session's twin, for tests that must move its clock-bound state
    (age a quote or a ramp) where no API can; a twin that is already running (``RAMPART_E2E_URL``)
    keeps its database to itself, so those tests skip."""
    if os.environ.get("RAMPART_E2E_URL"):
        pytest.skip("RAMPART_E2E_URL: the running twin's database is not the session's to change")
    return request.config.stash[_DATABASE_URL]


@pytest.fixture(scope="session")
def twin_status(twin_url: str) -> dict[str, Any]:
    """``GET /_twin/status``: readiness checks, migrations, the seeded admin."""
    reply = requests.get(f"{twin_url}/_twin/status", timeout=10)
    reply.raise_for_status()
    status: dict[str, Any] = reply.json()
    return status


@pytest.fixture
def client(twin_url: str) -> Client:
    """An anonymous client of the twin."""
    return Client(twin_url)


@pytest.fixture
def admin_client(twin_url: str, twin_status: dict[str, Any]) -> Client:
    """The seeded admin, logged in."""
    from tests.e2e.api import admin

    assert twin_status["checks"]["admin"] == "ok", twin_status
    return admin(twin_url)
