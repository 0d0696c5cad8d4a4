"""Every ledger operation and refusal, against real PostgreSQL. After each test the autouse
fixture checks every invariant with ``ledger.verify()``."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import psycopg
import pytest

from rampart.adapters.postgres.db import PooledDatabase
from rampart.core.errors import (
    CurrencyMismatch,
    DomainError,
    ExceedsHold,
    HoldExpired,
    HoldFinalized,
    InsufficientFunds,
    NotFound,
    ReferenceConflict,
    SameAccount,
    UnknownAccount,
    UnknownAsset,
    ValidationFailed,
)
from rampart.core.money import ASSET_SCALES
from rampart.ledger import Ledger, TransferInput
from rampart.ledger.models import SYSTEM_ACCOUNT_NAMES
from tests.conftest import WalletFactory, pay, ref

GENESIS = bytes(32)


def backdate_holds(pg_url: str, *transfer_ids: int) -> None:
    """Make holds look past their timeout (transfers are mutable rows; entries are not)."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE ledger.transfers SET expires_at = now() - interval '1 second' WHERE id = ANY(%s)",
            (list(transfer_ids),),
        )


# accounts ---------------------------------------------------------------------------------


def test_open_account_starts_empty(ledger: Ledger, owner: str) -> None:
    account = ledger.open_account(owner, "BRL", "main")
    assert (account.owner_id, account.currency, account.name) == (owner, "BRL", "main")
    assert account.debits_must_not_exceed_credits
    assert not account.is_system
    assert account.balance.posted == account.balance.available == 0
    assert ledger.account(account.id, owner_id=owner) == account


def test_unknown_currency_is_refused(ledger: Ledger, owner: str) -> None:
    with pytest.raises(UnknownAsset):
        ledger.open_account(owner, "DOGE")


def test_another_owners_account_is_not_found(ledger: Ledger, wallet: WalletFactory) -> None:
    account = wallet()
    with pytest.raises(NotFound):
        ledger.account(account.id, owner_id="someone-else")
    with pytest.raises(NotFound):
        ledger.account(10**15)


@pytest.mark.parametrize("currency", sorted(ASSET_SCALES))
def test_system_accounts_exist_per_currency_and_may_go_negative(ledger: Ledger, currency: str) -> None:
    for name in SYSTEM_ACCOUNT_NAMES:
        account = ledger.system_account(currency, name)
        assert account.is_system
        assert not account.debits_must_not_exceed_credits
        assert account.currency == currency


def test_accounts_list_newest_first_with_cursor(ledger: Ledger, owner: str) -> None:
    opened = [ledger.open_account(owner, "USD", f"a{i}") for i in range(5)]
    first = ledger.accounts(owner, limit=2)
    assert [a.id for a in first.items] == [opened[4].id, opened[3].id]
    second = ledger.accounts(owner, limit=2, cursor=first.next_cursor)
    third = ledger.accounts(owner, limit=2, cursor=second.next_cursor)
    assert [a.id for a in second.items + third.items] == [opened[2].id, opened[1].id, opened[0].id]
    assert third.next_cursor is None
    with pytest.raises(ValidationFailed):
        ledger.accounts(owner, limit=0)
    with pytest.raises(ValidationFailed):
        ledger.accounts(owner, cursor="%%%")


# posted transfers ---------------------------------------------------------------------------


def test_deposit_moves_money_from_the_world(ledger: Ledger, owner: str) -> None:
    account = ledger.open_account(owner, "USD")
    world_before = ledger.system_account("USD").balance.posted
    transfer = ledger.deposit(account.id, "25.00", ref(), owner_id="admin")
    assert transfer.status == "posted"
    assert transfer.amount == 2500
    assert transfer.hold_amount is None
    assert ledger.account(account.id).balance.posted == 2500
    assert ledger.system_account("USD").balance.posted <= world_before - 2500


def test_transfer_moves_exactly_the_amount(ledger: Ledger, owner: str, wallet: WalletFactory) -> None:
    source, target = wallet(funded="10.00"), wallet(funded=None, owner_id="bob")
    transfer = ledger.transfer(owner, pay(source, target, "3.25"))
    assert transfer.status == "posted"
    assert transfer.amount == 325
    assert not transfer.replayed
    assert ledger.account(source.id).balance.posted == 675
    assert ledger.account(target.id).balance.posted == 325
    assert ledger.transfer_by_id(transfer.id) == transfer


def test_entries_record_balance_after_and_chain(
    ledger: Ledger, owner: str, wallet: WalletFactory, db: PooledDatabase
) -> None:
    source, target = wallet(funded="10.00"), wallet(funded=None)
    t1 = ledger.transfer(owner, pay(source, target, "1.00"))
    t2 = ledger.transfer(owner, pay(source, target, "2.50"))
    page = ledger.entries(source.id)
    assert [e.sequence for e in page.items] == [3, 2, 1]  # newest first
    assert [(e.direction, e.amount, e.balance_after) for e in page.items] == [
        ("debit", 250, 650),
        ("debit", 100, 900),
        ("credit", 1000, 1000),
    ]
    assert [e.transfer_id for e in page.items[:2]] == [t2.id, t1.id]
    # The chain recomputed independently of the database.
    for account_id in (source.id, target.id):
        prev = GENESIS
        for entry in reversed(ledger.entries(account_id).items):
            payload = "|".join(
                map(
                    str,
                    (
                        entry.account_id,
                        entry.sequence,
                        entry.transfer_id,
                        entry.direction,
                        entry.amount,
                        entry.balance_after,
                    ),
                )
            )
            assert entry.prev_hash == prev
            assert entry.hash == hashlib.sha256(prev + payload.encode()).digest()
            prev = entry.hash
    paged = ledger.entries(source.id, limit=1)
    assert len(paged.items) == 1
    assert paged.next_cursor
    assert ledger.entries(source.id, limit=1, cursor=paged.next_cursor).items[0].sequence == 2


def test_insufficient_funds_moves_nothing(ledger: Ledger, owner: str, wallet: WalletFactory) -> None:
    source, target = wallet(funded="1.00"), wallet(funded=None)
    with pytest.raises(InsufficientFunds) as info:
        ledger.transfer(owner, pay(source, target, "1.01"))
    assert info.value.field == "/amount"
    assert info.value.status == 422
    assert ledger.account(source.id).balance.posted == 100
    assert ledger.account(target.id).balance.posted == 0
    ledger.transfer(owner, pay(source, target, "1.00"))  # exactly the balance is fine
    assert ledger.account(source.id).balance.available == 0


@pytest.mark.parametrize(
    ("case", "error", "field"),
    [
        ("same", SameAccount, "/to_account_id"),
        ("currency", CurrencyMismatch, "/currency"),
        ("stated-currency", CurrencyMismatch, "/currency"),
        ("unknown-debit", UnknownAccount, "/from_account_id"),
        ("unknown-credit", UnknownAccount, "/to_account_id"),
        ("not-owner", UnknownAccount, "/from_account_id"),
    ],
)
def test_refusals_are_typed_and_name_the_field(
    ledger: Ledger, owner: str, wallet: WalletFactory, case: str, error: type[Exception], field: str
) -> None:
    usd, usd2, eur = wallet(), wallet(), wallet("EUR")
    item = {
        "same": pay(usd, usd, "1.00"),
        "currency": pay(usd, eur, "1.00"),
        "stated-currency": TransferInput(usd.id, usd2.id, "1.00", "EUR", ref()),
        "unknown-debit": TransferInput(10**15, usd2.id, "1.00", "USD", ref()),
        "unknown-credit": TransferInput(usd.id, 10**15, "1.00", "USD", ref()),
        "not-owner": pay(usd2, usd, "1.00"),
    }[case]
    who = "intruder" if case == "not-owner" else owner
    with pytest.raises(error) as info:
        ledger.transfer(who, item)
    assert getattr(info.value, "field", None) == field
    assert ledger.account(usd.id).balance.posted == 10000


def test_admin_may_move_from_any_account(ledger: Ledger, wallet: WalletFactory) -> None:
    source, target = wallet(), wallet(owner_id="other")
    ledger.transfer("admin", pay(source, target, "5.00"), enforce_owner=False)
    assert ledger.account(target.id).balance.posted == 10500


@pytest.mark.parametrize(
    ("amount", "timeout"),
    [("0", None), ("0.001", None), ("-1", None), ("1e2", None), ("1.00", 0), ("1.00", 2_592_001)],
)
def test_bad_amounts_and_timeouts_never_reach_the_database(
    ledger: Ledger, owner: str, wallet: WalletFactory, amount: str, timeout: int | None
) -> None:
    source, target = wallet(), wallet()
    with pytest.raises(DomainError):  # DomainError
        ledger.transfer(owner, pay(source, target, amount, timeout=timeout))
    assert ledger.account(source.id).balance.available == 10000


# references ---------------------------------------------------------------------------------


def test_same_reference_same_content_returns_the_original(ledger: Ledger, owner: str, wallet: WalletFactory) -> None:
    source, target = wallet(), wallet()
    item = pay(source, target, "4.00")
    first = ledger.transfer(owner, item)
    again = ledger.transfer(owner, item)
    assert again.id == first.id
    assert again.replayed
    assert not first.replayed
    assert ledger.account(source.id).balance.posted == 9600  # moved once


def test_same_reference_other_content_conflicts(ledger: Ledger, owner: str, wallet: WalletFactory) -> None:
    source, target = wallet(), wallet()
    item = pay(source, target, "4.00")
    ledger.transfer(owner, item)
    with pytest.raises(ReferenceConflict) as info:
        ledger.transfer(owner, pay(source, target, "4.01", reference=item.reference))
    assert info.value.status == 409
    assert info.value.field == "/reference"
    with pytest.raises(ReferenceConflict):
        ledger.transfer(owner, pay(source, target, "4.00", timeout=60, reference=item.reference))


def test_references_are_per_owner(ledger: Ledger, wallet: WalletFactory) -> None:
    a, b = wallet(owner_id="alice"), wallet(owner_id="bob")
    shared = ref()
    t1 = ledger.transfer("alice", pay(a, b, "1.00", reference=shared))
    t2 = ledger.transfer("bob", pay(b, a, "1.00", reference=shared))
    assert t1.id != t2.id


def test_a_refusal_is_pinned_to_its_reference(ledger: Ledger, owner: str, wallet: WalletFactory) -> None:
    source, target = wallet(funded="1.00"), wallet(funded=None)
    item = pay(source, target, "5.00")
    with pytest.raises(InsufficientFunds):
        ledger.transfer(owner, item)
    ledger.deposit(source.id, "10.00", ref(), owner_id="admin")
    with pytest.raises(InsufficientFunds):  # funds arrived, but the outcome never flips
        ledger.transfer(owner, item)
    with pytest.raises(ReferenceConflict):
        ledger.transfer(owner, pay(source, target, "1.00", reference=item.reference))
    assert ledger.account(target.id).balance.posted == 0
    ledger.transfer(owner, pay(source, target, "5.00"))  # a new reference is a new attempt


# holds ----------------------------------------------------------------------------------------


def test_hold_reserves_then_posts_in_full(ledger: Ledger, owner: str, wallet: WalletFactory) -> None:
    source, target = wallet(funded="10.00"), wallet(funded=None)
    hold = ledger.transfer(owner, pay(source, target, "4.00", timeout=3600))
    assert hold.status == "pending"
    assert hold.hold_amount == 400
    assert hold.amount == 0
    assert hold.expires_at
    s, t = ledger.account(source.id).balance, ledger.account(target.id).balance
    assert (s.posted, s.debits_pending, s.available) == (1000, 400, 600)
    assert (t.posted, t.credits_pending, t.available) == (0, 400, 0)
    with pytest.raises(InsufficientFunds):  # the hold counts against the balance rule
        ledger.transfer(owner, pay(source, target, "6.01"))
    posted = ledger.post(hold.id, owner_id=owner)
    assert posted.status == "posted"
    assert posted.amount == 400
    assert posted.hold_amount == 400
    s, t = ledger.account(source.id).balance, ledger.account(target.id).balance
    assert (s.posted, s.debits_pending, t.posted, t.credits_pending) == (600, 0, 400, 0)


def test_partial_post_releases_the_rest(ledger: Ledger, owner: str, wallet: WalletFactory) -> None:
    source, target = wallet(funded="10.00"), wallet(funded=None)
    hold = ledger.transfer(owner, pay(source, target, "4.00", timeout=3600))
    with pytest.raises(ExceedsHold):
        ledger.post(hold.id, "4.01", owner_id=owner)
    posted = ledger.post(hold.id, "1.50", owner_id=owner)
    assert posted.amount == 150
    assert posted.hold_amount == 400
    s, t = ledger.account(source.id).balance, ledger.account(target.id).balance
    assert (s.posted, s.debits_pending, t.posted, t.credits_pending) == (850, 0, 150, 0)
    assert len(ledger.entries(target.id).items) == 1


def test_void_releases_and_hold_finalizes_once(ledger: Ledger, owner: str, wallet: WalletFactory) -> None:
    source, target = wallet(funded="10.00"), wallet(funded=None)
    hold = ledger.transfer(owner, pay(source, target, "4.00", timeout=3600))
    voided = ledger.void(hold.id, owner_id=owner)
    assert voided.status == "voided"
    assert voided.amount == 0
    assert ledger.account(source.id).balance.available == 1000
    with pytest.raises(HoldFinalized):
        ledger.void(hold.id, owner_id=owner)
    with pytest.raises(HoldFinalized):
        ledger.post(hold.id, owner_id=owner)
    posted_hold = ledger.transfer(owner, pay(source, target, "1.00", timeout=3600))
    ledger.post(posted_hold.id, owner_id=owner)
    with pytest.raises(HoldFinalized):
        ledger.void(posted_hold.id, owner_id=owner)
    plain = ledger.transfer(owner, pay(source, target, "1.00"))
    with pytest.raises(HoldFinalized):  # a posted transfer is no hold
        ledger.post(plain.id, owner_id=owner)


def test_only_the_source_owner_or_admin_finalizes(ledger: Ledger, owner: str, wallet: WalletFactory) -> None:
    source, target = wallet(), wallet(owner_id="payee")
    hold = ledger.transfer(owner, pay(source, target, "1.00", timeout=3600))
    with pytest.raises(NotFound):
        ledger.post(hold.id, owner_id="payee")
    with pytest.raises(NotFound):
        ledger.void(10**15, owner_id=owner)
    assert ledger.void(hold.id, owner_id="admin", enforce_owner=False).status == "voided"


def test_expired_hold_cannot_be_posted(ledger: Ledger, owner: str, wallet: WalletFactory, pg_url: str) -> None:
    source, target = wallet(funded="10.00"), wallet(funded=None)
    hold = ledger.transfer(owner, pay(source, target, "4.00", timeout=60))
    backdate_holds(pg_url, hold.id)
    assert ledger.transfer_by_id(hold.id).status == "expired"  # even before any sweep
    with pytest.raises(HoldExpired):
        ledger.post(hold.id, owner_id=owner)
    with pytest.raises(HoldExpired):
        ledger.void(hold.id, owner_id=owner)
    assert ledger.account(source.id).balance.available == 1000  # released by the post attempt


def test_sweep_releases_expired_holds(ledger: Ledger, owner: str, wallet: WalletFactory, pg_url: str) -> None:
    source, target = wallet(funded="10.00"), wallet(funded=None)
    holds = [ledger.transfer(owner, pay(source, target, "1.00", timeout=60)) for _ in range(3)]
    live = ledger.transfer(owner, pay(source, target, "1.00", timeout=3600))
    backdate_holds(pg_url, *(h.id for h in holds))
    assert ledger.expire_holds() >= 3
    assert [ledger.transfer_by_id(h.id).status for h in holds] == ["expired"] * 3
    assert ledger.transfer_by_id(live.id).status == "pending"
    b = ledger.account(source.id).balance
    assert (b.debits_pending, b.available) == (100, 900)


def test_expired_holds_free_funds_without_waiting_for_the_sweep(
    ledger: Ledger, owner: str, wallet: WalletFactory, pg_url: str
) -> None:
    source, target = wallet(funded="10.00"), wallet(funded=None)
    hold = ledger.transfer(owner, pay(source, target, "8.00", timeout=60))
    backdate_holds(pg_url, hold.id)
    ledger.transfer(owner, pay(source, target, "9.00"))
    assert ledger.transfer_by_id(hold.id).status == "expired"
    assert ledger.account(source.id).balance.available == 100


def test_sweep_function_handler(
    ledger: Ledger, owner: str, wallet: WalletFactory, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.ledger_sweep import handler as module
    from rampart.adapters.postgres import db as dbmodule

    source, target = wallet(), wallet()
    hold = ledger.transfer(owner, pay(source, target, "1.00", timeout=60))
    backdate_holds(pg_url, hold.id)
    monkeypatch.setenv("DATABASE_URL", pg_url)
    dbmodule.reset_database()
    try:
        result = module.handler({"source": "aws.events"}, None)
    finally:
        dbmodule.reset_database()
    assert result["released"] >= 1
    assert ledger.transfer_by_id(hold.id).status == "expired"


# batches --------------------------------------------------------------------------------------


def test_batch_applies_all(ledger: Ledger, owner: str, wallet: WalletFactory) -> None:
    a, b, c = wallet(funded="10.00"), wallet(funded=None), wallet(funded=None)
    items = [pay(a, b, "1.00"), pay(a, c, "2.00", timeout=600), pay(a, b, "3.00")]
    result = ledger.transfer_batch(owner, items)
    assert [t.status for t in result] == ["posted", "pending", "posted"]
    assert [t.reference for t in result] == [i.reference for i in items]
    ba = ledger.account(a.id).balance
    assert (ba.posted, ba.debits_pending, ba.available) == (600, 200, 400)
    assert ledger.account(b.id).balance.posted == 400
    assert [e.balance_after for e in ledger.entries(a.id).items] == [600, 900, 1000]
    replay = ledger.transfer_batch(owner, items)
    assert [t.id for t in replay] == [t.id for t in result]
    assert all(t.replayed for t in replay)
    assert ledger.account(a.id).balance.posted == 600


def test_batch_items_apply_in_order(ledger: Ledger, owner: str, wallet: WalletFactory) -> None:
    a, b = wallet(funded="5.00"), wallet(funded=None)
    # b spends in item 1 what it receives in item 0.
    ledger.transfer_batch(owner, [pay(a, b, "5.00"), pay(b, a, "5.00")], enforce_owner=False)
    assert ledger.account(b.id).balance.posted == 0
    with pytest.raises(InsufficientFunds) as info:
        ledger.transfer_batch(owner, [pay(b, a, "5.00"), pay(a, b, "5.00")], enforce_owner=False)
    assert info.value.index == 0


def test_batch_is_all_or_nothing(ledger: Ledger, owner: str, wallet: WalletFactory) -> None:
    a, b = wallet(funded="10.00"), wallet(funded=None)
    items = [pay(a, b, "4.00"), pay(a, b, "4.00"), pay(a, b, "4.00"), pay(a, b, "1.00")]
    with pytest.raises(InsufficientFunds) as info:
        ledger.transfer_batch(owner, items)
    assert info.value.index == 2
    assert info.value.field == "/transfers/2/amount"
    assert ledger.account(a.id).balance.posted == 1000
    assert ledger.account(b.id).balance.posted == 0
    assert ledger.transfers(None, account_id=b.id).items == []
    with pytest.raises(InsufficientFunds) as again:  # pinned: the retried batch fails the same way
        ledger.transfer_batch(owner, items)
    assert again.value.index == 2
    with pytest.raises(ReferenceConflict) as changed:
        ledger.transfer_batch(owner, [*items[:2], pay(a, b, "1.00", reference=items[2].reference)])
    assert changed.value.field == "/transfers/2/reference"


@pytest.mark.parametrize(
    ("mutate", "error", "field"),
    [
        (lambda a, b, e: pay(a, a, "1.00"), SameAccount, "/transfers/1/to_account_id"),
        (lambda a, b, e: pay(a, e, "1.00"), CurrencyMismatch, "/transfers/1/currency"),
        (lambda a, b, e: pay(b, a, "1.00"), UnknownAccount, "/transfers/1/from_account_id"),
        (lambda a, b, e: pay(a, b, "0.001"), DomainError, "/transfers/1/amount"),
        (lambda a, b, e: pay(a, b, "1.00", timeout=0), ValidationFailed, "/transfers/1/hold/timeout_seconds"),
    ],
)
def test_batch_names_the_failing_item(
    ledger: Ledger, owner: str, wallet: WalletFactory, mutate: object, error: type[Exception], field: str
) -> None:
    a, b, e = wallet(), wallet(owner_id="stranger"), wallet("EUR")
    bad = mutate(a, b, e)  # type: ignore[operator]
    with pytest.raises(error) as info:
        ledger.transfer_batch(owner, [pay(a, b, "1.00"), bad, pay(a, b, "1.00")])
    assert info.value.field == field  # type: ignore[attr-defined]
    assert ledger.account(a.id).balance.posted == 10000


def test_batch_shape_is_validated(ledger: Ledger, owner: str, wallet: WalletFactory) -> None:
    a, b = wallet(), wallet()
    with pytest.raises(ValidationFailed):
        ledger.transfer_batch(owner, [])
    with pytest.raises(ValidationFailed):
        ledger.transfer_batch(owner, [pay(a, b, "0.01") for _ in range(101)])
    dup = pay(a, b, "1.00")
    with pytest.raises(ValidationFailed) as info:
        ledger.transfer_batch(owner, [dup, pay(a, b, "2.00", reference=dup.reference)])
    assert info.value.field == "/transfers/1/reference"
    assert len(ledger.transfer_batch(owner, [pay(a, b, "0.01") for _ in range(100)])) == 100


# listings -------------------------------------------------------------------------------------


def test_transfers_list_by_owner_and_account(ledger: Ledger, owner: str, wallet: WalletFactory) -> None:
    a, b = wallet(), wallet()
    made = [ledger.transfer(owner, pay(a, b, "1.00")) for _ in range(3)]
    mine = ledger.transfers(owner)
    assert [t.id for t in mine.items] == [t.id for t in reversed(made)]
    by_account = ledger.transfers(None, account_id=b.id, limit=2)
    assert [t.id for t in by_account.items] == [made[2].id, made[1].id]
    assert by_account.next_cursor


# immutability and audit -----------------------------------------------------------------------


@pytest.fixture
def raw(pg_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg_url) as conn:
        yield conn
        conn.rollback()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger.entries SET amount = amount + 1 WHERE account_id = %(a)s",
        "DELETE FROM ledger.entries WHERE account_id = %(a)s",
        "DELETE FROM ledger.transfers WHERE debit_account_id = %(a)s",
        "TRUNCATE ledger.entries",
    ],
)
def test_entries_and_transfers_are_immutable(
    ledger: Ledger, owner: str, wallet: WalletFactory, raw: psycopg.Connection, statement: str
) -> None:
    a, b = wallet(), wallet()
    ledger.transfer(owner, pay(a, b, "1.00"))
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="not allowed"):
        raw.execute(statement, {"a": a.id})


@pytest.mark.parametrize(
    ("tamper", "check"),
    [
        ("UPDATE ledger.entries SET amount = amount + 1 WHERE account_id = %(a)s AND sequence = 2", "entries_fold"),
        ("UPDATE ledger.entries SET balance_after = 0 WHERE account_id = %(a)s AND sequence = 2", "entry_chain"),
        ("UPDATE ledger.entries SET hash = sha256(hash) WHERE account_id = %(a)s AND sequence = 1", "entry_chain"),
        ("DELETE FROM ledger.entries WHERE account_id = %(a)s AND sequence = 1", "entries_fold"),
        ("UPDATE ledger.accounts SET credits_posted = credits_posted + 1 WHERE id = %(a)s", "double_entry"),
        ("UPDATE ledger.accounts SET debits_pending = debits_pending + 1 WHERE id = %(a)s", "pending_fold"),
        ("UPDATE ledger.accounts SET last_hash = sha256(last_hash) WHERE id = %(a)s", "chain_head"),
    ],
)
def test_verify_detects_tampering(
    ledger: Ledger, owner: str, wallet: WalletFactory, raw: psycopg.Connection, tamper: str, check: str
) -> None:
    a, b = wallet(), wallet()
    ledger.transfer(owner, pay(a, b, "1.00"))
    raw.execute("ALTER TABLE ledger.entries DISABLE TRIGGER entries_immutable")
    raw.execute(tamper, {"a": a.id})
    found = {row[0] for row in raw.execute("SELECT check_name FROM ledger.verify()")}
    assert check in found
    raw.rollback()  # the tampering (and the trigger change) never commit


def test_migrations_are_idempotent(pg_url: str) -> None:
    from rampart.adapters.postgres.migrate import migrate

    assert migrate(pg_url) == []


def test_one_item_batch_refusal_names_item_zero(ledger: Ledger, owner: str, wallet: WalletFactory) -> None:
    a, b = wallet(funded="10.00"), wallet(funded=None)
    with pytest.raises(InsufficientFunds) as info:
        ledger.transfer_batch(owner, [pay(a, b, "20.00")])
    assert info.value.index == 0
    assert info.value.field == "/transfers/0/amount"


def test_batch_releases_expired_holds_like_a_single_transfer(
    ledger: Ledger, owner: str, wallet: WalletFactory, pg_url: str
) -> None:
    a, b = wallet(funded="10.00"), wallet(funded=None)
    hold = ledger.transfer(owner, pay(a, b, "8.00", timeout=3600))
    backdate_holds(pg_url, hold.id)
    ledger.transfer_batch(owner, [pay(a, b, "5.00"), pay(a, b, "1.00")])
    assert ledger.transfer_by_id(hold.id).status == "expired"
    assert ledger.account(a.id).balance.available == 400


def test_batch_first_failing_item_decides(ledger: Ledger, owner: str, wallet: WalletFactory) -> None:
    a, b = wallet(funded="10.00"), wallet(funded=None)
    with pytest.raises(InsufficientFunds) as info:
        ledger.transfer_batch(owner, [pay(a, b, "20.00"), pay(a, a, "1.00")])
    assert info.value.index == 0
    with pytest.raises(SameAccount) as same:
        ledger.transfer_batch(owner, [pay(a, a, "1.00"), pay(a, b, "20.00")])
    assert same.value.index == 0


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger.accounts SET debits_posted = credits_posted + 1 WHERE id = %(a)s",  # overdraft
        "UPDATE ledger.accounts SET debits_pending = -1 WHERE id = %(a)s",
        "UPDATE ledger.transfers SET status = 'weird' WHERE debit_account_id = %(a)s",
        "UPDATE ledger.transfers SET reference = '' WHERE debit_account_id = %(a)s",
        "UPDATE ledger.transfers SET timeout_seconds = 0 WHERE debit_account_id = %(a)s AND hold_amount > 0",
        "INSERT INTO ledger.entries (account_id, sequence, transfer_id, direction, amount, balance_after,"
        " prev_hash, hash) VALUES (%(a)s, 999, 1, 'debit', 0, 0, '', '')",
    ],
)
def test_the_schema_backstops_the_rules(
    ledger: Ledger, owner: str, wallet: WalletFactory, raw: psycopg.Connection, statement: str
) -> None:
    """What one column or the balance rule forbids, PostgreSQL refuses (domains and the accounts
    CHECK, 0006.ledger-speed.sql)."""
    a, b = wallet(), wallet()
    ledger.transfer(owner, pay(a, b, "1.00"))
    ledger.transfer(owner, pay(a, b, "1.00", timeout=60))
    with pytest.raises(psycopg.errors.CheckViolation):
        raw.execute(statement, {"a": a.id})


@pytest.mark.parametrize(
    ("statement", "check"),
    [
        ("UPDATE ledger.transfers SET error = 'x' WHERE debit_account_id = %(a)s", "transfer_shape"),
        (
            "UPDATE ledger.transfers SET amount = hold_amount + 1 WHERE debit_account_id = %(a)s AND hold_amount > 0",
            "transfer_shape",
        ),
        ("UPDATE ledger.transfers SET timeout_seconds = NULL WHERE debit_account_id = %(a)s", "transfer_shape"),
    ],
)
def test_the_audit_finds_what_spans_columns(
    ledger: Ledger, owner: str, wallet: WalletFactory, raw: psycopg.Connection, statement: str, check: str
) -> None:
    """A transfer's shape spans columns: the ledger functions (its only writers) keep it, and
    ``verify()`` finds a row written past them."""
    a, b = wallet(), wallet()
    ledger.transfer(owner, pay(a, b, "1.00"))
    ledger.transfer(owner, pay(a, b, "1.00", timeout=60))
    raw.execute(statement, {"a": a.id})
    rows = raw.execute("SELECT check_name FROM ledger.verify()").fetchall()
    raw.rollback()
    assert (check,) in rows


# one shape, derived ---------------------------------------------------------------------------


def test_the_store_reads_exactly_what_the_schema_has(db: PooledDatabase) -> None:
    """The store derives its column lists from the domain dataclasses (the one definition of each
    shape in Python): the tables and the ``ledger.outcome`` type must name the same columns."""
    from rampart.adapters.postgres import ledger_store

    with db.connection() as conn:

        def columns(relation: str) -> set[str]:
            rows = conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                (relation,),
            ).fetchall()
            return {name for (name,) in rows}

        assert set(ledger_store._ACCOUNT_COLUMNS) <= columns("ledger.accounts")
        assert set(ledger_store._ENTRY_COLUMNS) <= columns("ledger.entries")
        assert columns("ledger.outcome") == {"error", "error_index", *ledger_store._TRANSFER_COLUMNS}
        assert set(ledger_store._TRANSFER_COLUMNS) - {"replayed"} <= columns("ledger.transfers")
