"""The ledger limit: every amount and every balance side (debits and credits, posted plus pending)
stays within 2^256 - 1 base units, refused by the SQL functions themselves (LimitExceeded, 422
``limit-exceeded``) with nothing moved. The autouse fixture checks ``ledger.verify()`` after each.

The sources here are system accounts of their own (may go negative), never the shared world
account: a world account at the limit would refuse every later deposit of its currency."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from rampart.adapters.postgres.db import PooledDatabase
from rampart.adapters.postgres.ledger_store import PostgresLedgerStore
from rampart.core.errors import InsufficientFunds, LimitExceeded
from rampart.core.money import MAX_UNITS, format_units
from rampart.ledger import Account, Ledger, TransferInput
from rampart.ledger.models import TransferRequest
from tests.conftest import ref

USD = "USD"


def units(n: int) -> str:
    return format_units(n, USD)


@pytest.fixture
def source(db: PooledDatabase, owner: str) -> Callable[[], Account]:
    """A system account of this test (no balance rule), to push others to the limit from."""

    def make() -> Account:
        store = PostgresLedgerStore(db)
        return store.create_account(
            owner, USD, f"limit-src-{uuid.uuid4().hex[:12]}", is_system=True, debits_must_not_exceed_credits=False
        )

    return make


@pytest.fixture
def empty(ledger: Ledger, owner: str) -> Callable[[], Account]:
    def make() -> Account:
        return ledger.open_account(owner, USD, "limit")

    return make


def state(ledger: Ledger, pg_url: str, *accounts: Account) -> dict[str, Any]:
    """Balances and entry counts of ``accounts``: what a refused operation must leave untouched."""
    with psycopg.connect(pg_url) as conn:
        entries = conn.execute(
            "SELECT account_id, count(*) FROM ledger.entries WHERE account_id = ANY(%s) GROUP BY account_id",
            ([a.id for a in accounts],),
        ).fetchall()
    return {"balances": [ledger.account(a.id).balance for a in accounts], "entries": sorted(entries)}


def send(ledger: Ledger, debit: Account, credit: Account, amount: int, *, timeout: int | None = None, **kw: Any) -> Any:
    item = TransferInput(debit.id, credit.id, units(amount), USD, kw.pop("reference", None) or ref(), timeout)
    return ledger.transfer(debit.owner_id, item, enforce_owner=False)


def test_an_amount_beyond_the_limit_is_refused_by_the_store(
    db: PooledDatabase, ledger: Ledger, pg_url: str, source: Callable[[], Account], empty: Callable[[], Account]
) -> None:
    """Past the service (which refuses it too): the SQL function refuses it, nothing is stored,
    and even an amount NUMERIC(78,0) cannot hold answers limit-exceeded, not a numeric overflow."""
    src, dst = source(), empty()
    before = state(ledger, pg_url, src, dst)
    store = PostgresLedgerStore(db)
    for amount in (MAX_UNITS + 1, 10**80):
        for timeout in (None, 60):
            reference = ref()
            request = TransferRequest(
                owner_id=src.owner_id,
                reference=reference,
                debit_account_id=src.id,
                credit_account_id=dst.id,
                amount=amount,
                currency=USD,
                timeout_seconds=timeout,
            )
            with pytest.raises(LimitExceeded) as info:
                store.create_transfers([request], enforce_owner=False)
            assert (info.value.slug, info.value.status, info.value.field) == ("limit-exceeded", 422, "/amount")
            with pytest.raises(LimitExceeded) as batch_info:
                store.create_transfers(
                    [
                        TransferRequest(src.owner_id, ref(), src.id, dst.id, 1, USD, None),
                        TransferRequest(src.owner_id, reference, src.id, dst.id, amount, USD, timeout),
                    ],
                    enforce_owner=False,
                )
            assert batch_info.value.index == 1
            with psycopg.connect(pg_url) as conn:
                stored = conn.execute(
                    "SELECT count(*) FROM ledger.transfers WHERE owner_id = %s AND reference = %s",
                    (src.owner_id, reference),
                ).fetchone()
            assert stored == (0,)
    assert state(ledger, pg_url, src, dst) == before


def test_a_posted_credit_up_to_the_limit_and_not_one_unit_more(
    ledger: Ledger, pg_url: str, source: Callable[[], Account], empty: Callable[[], Account]
) -> None:
    src, dst = source(), empty()
    send(ledger, src, dst, MAX_UNITS)
    assert ledger.account(dst.id).balance.posted == MAX_UNITS
    before = state(ledger, pg_url, src, dst)
    reference, other_source = ref(), source()
    with pytest.raises(LimitExceeded) as info:
        send(ledger, other_source, dst, 1, reference=reference)
    assert info.value.field == "/amount"
    assert state(ledger, pg_url, src, dst) == before
    # Pinned to its reference, as insufficient funds is: the retry gets the same answer.
    with pytest.raises(LimitExceeded):
        send(ledger, other_source, dst, 1, reference=reference)
    # The limit holds each side the ledger stores (credits and debits, posted + pending), and a
    # side only grows: spending from the account does not make room on its credit side.
    send(ledger, dst, empty(), 5)
    with pytest.raises(LimitExceeded):
        send(ledger, src, dst, 5)
    assert ledger.account(dst.id).balance.credits_posted == MAX_UNITS


def test_a_debit_side_at_the_limit_refuses_more_debits(
    ledger: Ledger, pg_url: str, source: Callable[[], Account], empty: Callable[[], Account]
) -> None:
    """A system account may go negative: its debits grow until they reach the limit."""
    src = source()
    send(ledger, src, empty(), MAX_UNITS - 1)
    send(ledger, src, empty(), 1)
    dst = empty()
    before = state(ledger, pg_url, src, dst)
    for timeout in (None, 60):
        with pytest.raises(LimitExceeded):
            send(ledger, src, dst, 1, timeout=timeout)
    assert state(ledger, pg_url, src, dst) == before
    assert ledger.account(src.id).balance.debits_posted == MAX_UNITS


def test_pending_credits_count_against_the_limit(
    ledger: Ledger, pg_url: str, source: Callable[[], Account], empty: Callable[[], Account]
) -> None:
    src, dst = source(), empty()
    hold = send(ledger, src, dst, MAX_UNITS - 10, timeout=600)
    before = state(ledger, pg_url, src, dst)
    with pytest.raises(LimitExceeded):
        send(ledger, source(), dst, 11)  # posted on top of the pending credit
    with pytest.raises(LimitExceeded):
        send(ledger, source(), dst, 11, timeout=600)  # another hold
    assert state(ledger, pg_url, src, dst) == before
    send(ledger, source(), dst, 10)  # exactly to the limit
    # A hold accepted under the limit can always be posted: pending moves to posted.
    posted = ledger.post(hold.id, owner_id=src.owner_id, enforce_owner=False)
    assert posted.status == "posted"
    balance = ledger.account(dst.id).balance
    assert (balance.posted, balance.credits_pending) == (MAX_UNITS, 0)


def test_a_partly_posted_hold_at_the_limit(
    ledger: Ledger, source: Callable[[], Account], empty: Callable[[], Account]
) -> None:
    src, dst = source(), empty()
    hold = send(ledger, src, dst, MAX_UNITS, timeout=600)
    with pytest.raises(LimitExceeded):
        send(ledger, source(), dst, 1)
    ledger.post(hold.id, units(MAX_UNITS - 1), owner_id=src.owner_id, enforce_owner=False)
    send(ledger, source(), dst, 1)  # the released unit is room again
    assert ledger.account(dst.id).balance.posted == MAX_UNITS


def test_pending_debits_count_against_the_limit(
    ledger: Ledger, pg_url: str, source: Callable[[], Account], empty: Callable[[], Account]
) -> None:
    src = source()
    send(ledger, src, empty(), MAX_UNITS - 3, timeout=600)
    send(ledger, src, empty(), 3)
    dst = empty()
    before = state(ledger, pg_url, src, dst)
    with pytest.raises(LimitExceeded):
        send(ledger, src, dst, 1)
    assert state(ledger, pg_url, src, dst) == before


def test_a_batch_past_the_limit_writes_nothing_and_names_its_item(
    ledger: Ledger, pg_url: str, source: Callable[[], Account], empty: Callable[[], Account]
) -> None:
    src, a, b = source(), empty(), empty()
    send(ledger, src, b, MAX_UNITS - 100)
    before = state(ledger, pg_url, src, a, b)
    items = [
        TransferInput(src.id, a.id, units(7), USD, ref()),
        TransferInput(src.id, b.id, units(60), USD, ref()),
        TransferInput(src.id, b.id, units(41), USD, ref()),  # 60 + 41 > 100: this one
        TransferInput(src.id, a.id, units(1), USD, ref()),
    ]
    with pytest.raises(LimitExceeded) as info:
        ledger.transfer_batch(src.owner_id, items, enforce_owner=False)
    assert (info.value.index, info.value.field) == (2, "/transfers/2/amount")
    assert state(ledger, pg_url, src, a, b) == before
    # Holds in a batch count too; and a batch that fits exactly goes through.
    held = [
        TransferInput(src.id, b.id, units(60), USD, ref(), 600),
        TransferInput(src.id, b.id, units(41), USD, ref()),
    ]
    with pytest.raises(LimitExceeded) as info:
        ledger.transfer_batch(src.owner_id, held, enforce_owner=False)
    assert info.value.index == 1
    assert state(ledger, pg_url, src, a, b) == before
    fits = [TransferInput(src.id, b.id, units(60), USD, ref(), 600), TransferInput(src.id, b.id, units(40), USD, ref())]
    ledger.transfer_batch(src.owner_id, fits, enforce_owner=False)
    balance = ledger.account(b.id).balance
    assert balance.credits_posted + balance.credits_pending == MAX_UNITS


def test_a_batch_debit_side_past_the_limit(
    ledger: Ledger, pg_url: str, source: Callable[[], Account], empty: Callable[[], Account]
) -> None:
    src = source()
    send(ledger, src, empty(), MAX_UNITS - 5)
    a, b = empty(), empty()
    before = state(ledger, pg_url, src, a, b)
    items = [TransferInput(src.id, a.id, units(5), USD, ref()), TransferInput(src.id, b.id, units(1), USD, ref())]
    with pytest.raises(LimitExceeded) as info:
        ledger.transfer_batch(src.owner_id, items, enforce_owner=False)
    assert info.value.index == 1
    assert state(ledger, pg_url, src, a, b) == before


def test_the_balance_rule_outranks_the_limit_on_one_item(
    ledger: Ledger, source: Callable[[], Account], empty: Callable[[], Account], owner: str
) -> None:
    """A wallet's debit that breaks its balance rule is insufficient funds, whatever else."""
    full, poor = empty(), empty()
    send(ledger, source(), full, MAX_UNITS)
    with pytest.raises(InsufficientFunds):
        ledger.transfer(owner, TransferInput(poor.id, full.id, units(1), USD, ref()))
    with pytest.raises(InsufficientFunds):
        ledger.transfer_batch(owner, [TransferInput(poor.id, full.id, units(1), USD, ref())])


def test_the_schema_backstops_the_limit_per_column(pg_url: str, source: Callable[[], Account]) -> None:
    src = source()
    with psycopg.connect(pg_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("UPDATE ledger.accounts SET credits_posted = %s WHERE id = %s", (MAX_UNITS + 1, src.id))


def test_the_audit_finds_a_side_past_the_limit(pg_url: str, source: Callable[[], Account]) -> None:
    """The limit on an account's posted + pending spans columns: the functions keep it, verify() finds a
    row written past them."""
    src = source()
    with psycopg.connect(pg_url) as conn:
        conn.execute(
            "UPDATE ledger.accounts SET credits_posted = %s, credits_pending = 1 WHERE id = %s", (MAX_UNITS, src.id)
        )
        rows = conn.execute(
            "SELECT check_name, detail FROM ledger.verify() WHERE check_name = 'ledger_limit'"
        ).fetchall()
        conn.rollback()
    assert [detail for _, detail in rows if detail.startswith(f"account {src.id}:")]
