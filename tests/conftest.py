"""Shared fixtures. Integration tests run against a real PostgreSQL: the embedded one (a database
per xdist worker, freshly created and migrated) or, when ``TEST_DATABASE_URL`` is set, that server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql

from rampart.adapters.postgres.db import PooledDatabase
from rampart.adapters.postgres.ledger_store import PostgresLedgerStore
from rampart.core.cursors import CursorSigner
from rampart.ledger import Account, Ledger, TransferInput

pytest_plugins = ["tests.support.auth_fixtures"]

# The pagination cursors of the ledger built here: a fixed test key (the API's comes from the
# manifest's cursor_key secret).
TEST_CURSORS = CursorSigner(b"rampart-tests-cursor-key-0123456789")


def pytest_configure(config: pytest.Config) -> None:
    """Record every AWS call a function makes (tests/support/iam.py) under one folder per run,
    one file per process: the controller makes the folder before xdist starts its workers, which
    inherit ``$RAMPART_IAM_RECORD_DIR``. tests/infra/test_iam_coverage.py checks them."""
    import tempfile

    from tests.support import iam

    if not os.environ.get(iam.RECORD_DIR_ENV) and not hasattr(config, "workerinput"):
        os.environ[iam.RECORD_DIR_ENV] = tempfile.mkdtemp(prefix="rampart-iam-")
        config.stash[_IAM_DIR] = os.environ[iam.RECORD_DIR_ENV]
    iam.install_from_environment()


def pytest_unconfigure(config: pytest.Config) -> None:
    import shutil

    made = config.stash.get(_IAM_DIR, None)
    if made:
        shutil.rmtree(made, ignore_errors=True)
        os.environ.pop("RAMPART_IAM_RECORD_DIR", None)


_IAM_DIR = pytest.StashKey[str]()


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, migrated database for this test process."""
    from infra.local.postgres import embedded_server, ensure_database, with_database
    from rampart.adapters.postgres.migrate import migrate

    # Unique per run and worker, so concurrent runs in one checkout never share a database.
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", uuid.uuid4().hex)[:8]
    name = f"rampart_test_{_worker()}_{run}"
    base = os.environ.get("TEST_DATABASE_URL")
    admin_url = base if base else embedded_server("pg-test").get_uri()
    # Commits need not wait for the disk in tests: the data is thrown away.
    ensure_database(admin_url, name, fresh=True, settings={"synchronous_commit": "off"})
    url = with_database(admin_url, name)
    migrate(url)
    yield url
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def db(pg_url: str) -> Iterator[PooledDatabase]:
    database = PooledDatabase(pg_url, min_size=1, max_size=12)
    yield database
    database.close()


@pytest.fixture
def ledger(db: PooledDatabase) -> Ledger:
    return Ledger(PostgresLedgerStore(db), TEST_CURSORS)


@pytest.fixture
def owner() -> str:
    return f"user-{uuid.uuid4().hex[:12]}"


def ref() -> str:
    return uuid.uuid4().hex


WalletFactory = Callable[..., Account]


@pytest.fixture
def wallet(ledger: Ledger, owner: str) -> WalletFactory:
    """Open a wallet (owned by ``owner`` unless told otherwise) and fund it from the world account."""

    def make(currency: str = "USD", funded: str | None = "100.00", owner_id: str | None = None) -> Account:
        account = ledger.open_account(owner_id or owner, currency, "wallet")
        if funded is not None:
            ledger.deposit(account.id, funded, ref(), owner_id="admin")
        return ledger.account(account.id)

    return make


def pay(
    debit: Account, credit: Account, amount: str | Decimal, *, timeout: int | None = None, reference: str | None = None
) -> TransferInput:
    return TransferInput(debit.id, credit.id, amount, debit.currency, reference or ref(), timeout)


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Functions read their settings once (rampart.core.settings.settings); each test sets its own
    environment, so each starts and ends with the settings forgotten."""
    from rampart.core.settings import reset_settings

    reset_settings()
    yield
    reset_settings()
