"""The ledger under concurrency, against the real PostgreSQL.

Every racing thread has its own connection (a :class:`SingleConnection`, as in Lambda), so the
races happen in the database, not in a client-side pool. The only exceptions a caller may ever
see are typed :class:`DomainError` refusals: a deadlock, a serialization failure or any other
database error surfacing to the caller fails the test.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import pytest
from psycopg.conninfo import make_conninfo

from rampart.adapters.postgres.db import PooledDatabase, SingleConnection
from rampart.adapters.postgres.ledger_store import PostgresLedgerStore
from rampart.core.errors import (
    DomainError,
    ExceedsHold,
    HoldExpired,
    HoldFinalized,
    InsufficientFunds,
    ReferenceConflict,
)
from rampart.core.money import format_units
from rampart.ledger import Account, Balance, Ledger, Transfer, TransferInput
from tests.conftest import WalletFactory, pay, ref

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("heavy")]

R = TypeVar("R")

# PostgreSQL allows 100 connections and every other xdist worker keeps about 12: one test stays
# within 66, counting the connections already open on this worker's database.
MAX_TEST_CONNECTIONS = 66
# A statement stuck longer than this is a hang: it fails the test instead of blocking the run.
STATEMENT_TIMEOUT_MS = 30_000
THREAD_TIMEOUT_SECONDS = 120.0

BACKDATE_HOLD = (
    "UPDATE ledger.transfers SET expires_at = now() - interval '1 second' WHERE id = %s AND status = 'pending'"
)


# Own connections and races ----------------------------------------------------------------------
@dataclass
class Session:
    """A ledger on a connection of its own."""

    ledger: Ledger
    connection: SingleConnection

    def execute(self, query: str, params: Sequence[object]) -> None:
        with self.connection.connection() as conn:
            conn.execute(query, params)


@contextmanager
def own_sessions(pg_url: str, count: int) -> Iterator[list[Session]]:
    """``count`` ledgers, each on its own connection, opened now (not inside the race) and
    closed on exit."""
    url = make_conninfo(pg_url, options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}")
    sessions: list[Session] = []
    try:
        for _ in range(count):
            connection = SingleConnection(url)
            sessions.append(Session(Ledger(PostgresLedgerStore(connection)), connection))
            sessions[-1].execute("SELECT 1", ())
        yield sessions
    finally:
        for session in sessions:
            session.connection.close()


def connection_budget(db: PooledDatabase, wanted: int) -> int:
    """How many connections a test may open: ``wanted``, or fewer when this worker's database
    already has connections open (the session pool), so the test stays within its share."""
    with db.connection() as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()").fetchone()
    assert row is not None
    budget = min(wanted, MAX_TEST_CONNECTIONS - int(row[0]))
    assert budget >= 8, f"{row[0]} connections already open on the test database"
    return budget


def race(sessions: Sequence[Session], threads: int, action: Callable[[int, Ledger], R]) -> list[R | DomainError]:
    """Run ``action(index, ledger)`` in ``threads`` threads released together by a barrier (thread
    ``index`` uses session ``index % len(sessions)``). Returns each thread's result or refusal;
    any other exception is re-raised."""
    barrier = threading.Barrier(threads)
    outcomes: dict[int, R | DomainError] = {}
    failures: list[BaseException] = []

    def run(index: int) -> None:
        ledger = sessions[index % len(sessions)].ledger
        try:
            barrier.wait(timeout=THREAD_TIMEOUT_SECONDS)
            outcomes[index] = action(index, ledger)
        except DomainError as exc:
            outcomes[index] = exc
        except BaseException as exc:
            failures.append(exc)

    workers = [threading.Thread(target=run, args=(i,), name=f"race-{i}") for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=THREAD_TIMEOUT_SECONDS)
    assert not any(worker.is_alive() for worker in workers), "a racing thread hung"
    if failures:
        raise AssertionError(f"{len(failures)} of {threads} threads failed: {failures!r}") from failures[0]
    return [outcomes[i] for i in range(threads)]


def refusals(outcomes: Sequence[object]) -> list[DomainError]:
    return [o for o in outcomes if isinstance(o, DomainError)]


def balance(ledger: Ledger, account: Account) -> Balance:
    return ledger.account(account.id).balance


# 64 threads, one hold -----------------------------------------------------------------------------
def test_sixty_four_threads_posting_one_hold_exactly_one_wins(
    ledger: Ledger, wallet: WalletFactory, owner: str, db: PooledDatabase, pg_url: str
) -> None:
    payer = wallet(funded="100.00")
    payee = wallet(funded=None)
    hold = ledger.transfer(owner, pay(payer, payee, "10.00", timeout=600))

    with own_sessions(pg_url, connection_budget(db, 64)) as sessions:
        outcomes = race(sessions, 64, lambda _, lg: lg.post(hold.id, owner_id=owner))

    posted = [o for o in outcomes if isinstance(o, Transfer)]
    assert len(posted) == 1
    assert (posted[0].id, posted[0].status, posted[0].amount, posted[0].hold_amount) == (hold.id, "posted", 1000, 1000)
    refused = refusals(outcomes)
    assert len(refused) == 63
    assert {type(e) for e in refused} == {HoldFinalized}

    assert ledger.transfer_by_id(hold.id).status == "posted"
    # Balance(debits_pending, debits_posted, credits_pending, credits_posted)
    assert balance(ledger, payer) == Balance(0, 1000, 0, 10000)
    assert balance(ledger, payee) == Balance(0, 0, 0, 1000)
    # Newest first: the one post, then the funding deposit.
    payer_entries = [(e.transfer_id, e.direction, e.amount) for e in ledger.entries(payer.id).items]
    assert len(payer_entries) == 2
    assert payer_entries[0] == (hold.id, "debit", 1000)
    payee_entries = [(e.transfer_id, e.amount, e.balance_after) for e in ledger.entries(payee.id).items]
    assert payee_entries == [(hold.id, 1000, 1000)]


def post_or_void(hold_id: int, owner_id: str) -> Callable[[int, Ledger], Transfer]:
    """Even threads post the hold, odd threads void it."""

    def act(index: int, ledger: Ledger) -> Transfer:
        if index % 2 == 0:
            return ledger.post(hold_id, owner_id=owner_id)
        return ledger.void(hold_id, owner_id=owner_id)

    return act


def test_post_racing_void_on_one_hold_exactly_one_wins(
    ledger: Ledger, wallet: WalletFactory, owner: str, db: PooledDatabase, pg_url: str
) -> None:
    payer = wallet(funded="100.00")
    payee = wallet(funded=None)
    posted_total = 0
    winners: Counter[str] = Counter()

    with own_sessions(pg_url, connection_budget(db, 64)) as sessions:
        for _ in range(4):
            hold = ledger.transfer(owner, pay(payer, payee, "5.00", timeout=600))
            outcomes = race(sessions, 64, post_or_void(hold.id, owner))

            won = [(i, o) for i, o in enumerate(outcomes) if isinstance(o, Transfer)]
            assert len(won) == 1
            index, winner = won[0]
            assert winner.id == hold.id
            assert winner.status == ("posted" if index % 2 == 0 else "voided")
            assert {type(e) for e in refusals(outcomes)} == {HoldFinalized}
            assert len(refusals(outcomes)) == 63
            winners[winner.status] += 1

            final = ledger.transfer_by_id(hold.id)
            assert final.status == winner.status
            assert final.amount == (500 if winner.status == "posted" else 0)
            posted_total += final.amount
            assert balance(ledger, payer) == Balance(
                debits_pending=0, debits_posted=posted_total, credits_pending=0, credits_posted=10000
            )
            assert balance(ledger, payee) == Balance(
                debits_pending=0, debits_posted=0, credits_pending=0, credits_posted=posted_total
            )

    assert sum(winners.values()) == 4
    assert len(ledger.entries(payee.id).items) == winners["posted"]


# One reference, many senders ---------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["single", "batch"])
def test_thirty_two_threads_sending_one_reference_move_money_once(
    kind: str, ledger: Ledger, wallet: WalletFactory, owner: str, db: PooledDatabase, pg_url: str
) -> None:
    payer = wallet(funded="100.00")
    payee = wallet(funded=None)
    other = wallet(funded=None)
    if kind == "single":
        items = [pay(payer, payee, "7.00")]
    else:
        items = [pay(payer, payee, "1.00"), pay(payer, other, "2.00"), pay(payer, payee, "3.00", timeout=600)]

    def send(_: int, lg: Ledger) -> list[Transfer]:
        if kind == "single":
            return [lg.transfer(owner, items[0])]
        return lg.transfer_batch(owner, items)

    with own_sessions(pg_url, connection_budget(db, 32)) as sessions:
        outcomes = race(sessions, 32, send)

    assert refusals(outcomes) == []
    results = [o for o in outcomes if isinstance(o, list)]
    assert len({tuple(t.id for t in r) for r in results}) == 1, "every sender gets the same transfers"
    assert [t.reference for t in results[0]] == [i.reference for i in items]
    assert all(len({t.replayed for t in r}) == 1 for r in results)
    assert sum(1 for r in results if not r[0].replayed) == 1, "exactly one sender created them"

    page = ledger.transfers(owner)
    assert sorted(t.id for t in page.items) == sorted(t.id for t in results[0])
    if kind == "single":
        assert balance(ledger, payer) == Balance(0, 700, 0, 10000)
        assert balance(ledger, payee) == Balance(0, 0, 0, 700)
    else:
        assert balance(ledger, payer) == Balance(300, 300, 0, 10000)
        assert balance(ledger, payee) == Balance(0, 0, 300, 100)
        assert balance(ledger, other) == Balance(0, 0, 0, 200)


@pytest.mark.parametrize("kind", ["single", "batch"])
def test_one_reference_with_other_content_from_thirty_two_threads_one_wins_the_rest_conflict(
    kind: str, ledger: Ledger, wallet: WalletFactory, owner: str, db: PooledDatabase, pg_url: str
) -> None:
    """Disjoint account pairs take no common lock: the reference's unique index alone decides
    (and a batch that loses the insert is retried by the store)."""
    pairs = [(wallet(funded="10.00"), wallet(funded=None)) for _ in range(32)]
    first, second = ref(), ref()

    def send(index: int, lg: Ledger) -> list[Transfer]:
        payer, payee = pairs[index]
        if kind == "single":
            return [lg.transfer(owner, pay(payer, payee, "1.00", reference=first))]
        return lg.transfer_batch(
            owner, [pay(payer, payee, "1.00", reference=first), pay(payer, payee, "2.00", reference=second)]
        )

    with own_sessions(pg_url, connection_budget(db, 32)) as sessions:
        outcomes = race(sessions, 32, send)

    won = [(i, o) for i, o in enumerate(outcomes) if isinstance(o, list)]
    assert len(won) == 1
    winner_index, created = won[0]
    assert not any(t.replayed for t in created)
    refused = refusals(outcomes)
    assert len(refused) == 31
    assert {type(e) for e in refused} == {ReferenceConflict}
    if kind == "batch":
        assert {e.index for e in refused} == {0}

    moved = 100 if kind == "single" else 300
    for index, (payer, payee) in enumerate(pairs):
        expected = moved if index == winner_index else 0
        assert balance(ledger, payer) == Balance(0, expected, 0, 1000)
        assert balance(ledger, payee) == Balance(0, 0, 0, expected)
    assert sorted(t.id for t in ledger.transfers(owner).items) == sorted(t.id for t in created)


# 8 threads x 500 random operations ---------------------------------------------------------------
THREADS = 8
OPERATIONS_PER_THREAD = 500
OWNERS = 5
WALLETS_PER_OWNER = 4
INITIAL_UNITS = 5_000  # 50.00 USD per wallet
MAX_AMOUNT_UNITS = 2_500  # up to 25.00: half a starting balance, so refusals really happen
LONG_HOLD_SECONDS = 600
SHORT_HOLD_SECONDS = (1, 2)

OPERATION_WEIGHTS = {
    "transfer": 24,
    "hold": 22,
    "post": 17,
    "void": 9,
    "batch": 10,
    "expire": 3,
    "backdate": 6,
    "deposit": 2,
    "read": 7,
}
# The refusals each operation may meet; any other DomainError is a bug.
ALLOWED_REFUSALS: dict[str, tuple[type[DomainError], ...]] = {
    "transfer": (InsufficientFunds,),
    "hold": (InsufficientFunds,),
    "batch": (InsufficientFunds,),
    "post": (HoldFinalized, HoldExpired, ExceedsHold),
    "void": (HoldFinalized, HoldExpired),
}


@dataclass(frozen=True, slots=True)
class HoldTicket:
    id: int
    owner_id: str
    amount: int


@dataclass
class Tally:
    """What one thread saw: outcome counts, the money it moved, refusals it should not have met."""

    counts: Counter[str] = field(default_factory=Counter)
    movements: list[tuple[int, int, int]] = field(default_factory=list)  # (debit id, credit id, units)
    unexpected: list[str] = field(default_factory=list)
    min_available: int = 0


@dataclass
class Workload:
    wallets: list[Account]
    owner_of: dict[int, str]
    depositor: str
    world: Account
    holds: list[HoldTicket] = field(default_factory=list)  # appended by every thread (atomic under the GIL)

    def wallets_of(self, owner_id: str) -> list[Account]:
        return [w for w in self.wallets if self.owner_of[w.id] == owner_id]

    def pick_hold(self, rng: random.Random) -> HoldTicket | None:
        if not self.holds:
            return None
        recent = self.holds[-40:]
        return rng.choice(recent if rng.random() < 0.7 else self.holds)

    def amount(self, rng: random.Random) -> int:
        return rng.randint(1, MAX_AMOUNT_UNITS)

    def timeout(self, rng: random.Random) -> int:
        return rng.choice(SHORT_HOLD_SECONDS) if rng.random() < 0.3 else LONG_HOLD_SECONDS

    def pair(self, rng: random.Random, debit_choices: Sequence[Account] | None = None) -> tuple[Account, Account]:
        debit = rng.choice(debit_choices or self.wallets)
        credit = rng.choice([w for w in self.wallets if w.id != debit.id])
        return debit, credit

    def run(self, session: Session, seed: int, barrier: threading.Barrier) -> Tally:
        rng = random.Random(seed)
        tally = Tally()
        operations = list(OPERATION_WEIGHTS)
        weights = list(OPERATION_WEIGHTS.values())
        barrier.wait(timeout=THREAD_TIMEOUT_SECONDS)
        for _ in range(OPERATIONS_PER_THREAD):
            operation = rng.choices(operations, weights)[0]
            if operation in ("post", "void", "backdate") and not self.holds:
                operation = "hold"
            try:
                self.perform(operation, session, rng, tally)
            except DomainError as exc:
                tally.counts[f"{operation}.{type(exc).__name__}"] += 1
                if not isinstance(exc, ALLOWED_REFUSALS.get(operation, ())):
                    tally.unexpected.append(f"{operation}: {exc!r}")
        return tally

    def perform(self, operation: str, session: Session, rng: random.Random, tally: Tally) -> None:
        ledger = session.ledger
        ticket = self.pick_hold(rng) if operation in ("post", "void", "backdate") else None
        if operation == "transfer":
            debit, credit = self.pair(rng)
            units = self.amount(rng)
            done = ledger.transfer(self.owner_of[debit.id], pay(debit, credit, format_units(units, "USD")))
            assert (done.status, done.amount) == ("posted", units)
            tally.movements.append((debit.id, credit.id, units))
            tally.counts["transfer.units"] += units
        elif operation == "hold":
            debit, credit = self.pair(rng)
            units = self.amount(rng)
            item = pay(debit, credit, format_units(units, "USD"), timeout=self.timeout(rng))
            held = ledger.transfer(self.owner_of[debit.id], item)
            assert (held.status, held.amount, held.hold_amount) == ("pending", 0, units)
            self.holds.append(HoldTicket(held.id, self.owner_of[debit.id], units))
        elif operation == "post":
            assert ticket is not None
            mode = rng.choice(["full", "full", "partial", "over"])
            amount = {"full": None, "partial": rng.randint(1, ticket.amount), "over": ticket.amount + 1}[mode]
            posted = ledger.post(
                ticket.id, None if amount is None else format_units(amount, "USD"), owner_id=ticket.owner_id
            )
            assert (posted.status, posted.amount) == ("posted", amount or ticket.amount)
            tally.movements.append((posted.debit_account_id, posted.credit_account_id, posted.amount))
            tally.counts[f"post.ok.{mode}"] += 1
            tally.counts["post.units"] += posted.amount
        elif operation == "void":
            assert ticket is not None
            voided = ledger.void(ticket.id, owner_id=ticket.owner_id)
            assert (voided.status, voided.amount) == ("voided", 0)
        elif operation == "batch":
            owner_id = rng.choice(sorted(set(self.owner_of.values())))
            items: list[TransferInput] = []
            for _ in range(rng.randint(2, 5)):
                debit, credit = self.pair(rng, self.wallets_of(owner_id))
                timeout = self.timeout(rng) if rng.random() < 0.25 else None
                items.append(pay(debit, credit, format_units(self.amount(rng) // 2 + 1, "USD"), timeout=timeout))
            created = ledger.transfer_batch(owner_id, items)
            for transfer in created:
                if transfer.is_hold:
                    assert transfer.hold_amount is not None
                    self.holds.append(HoldTicket(transfer.id, owner_id, transfer.hold_amount))
                    tally.counts["batch.holds"] += 1
                else:
                    tally.movements.append((transfer.debit_account_id, transfer.credit_account_id, transfer.amount))
                    tally.counts["batch.posted"] += 1
                    tally.counts["batch.units"] += transfer.amount
        elif operation == "expire":
            tally.counts["expire.released"] += ledger.expire_holds()
        elif operation == "backdate":
            assert ticket is not None
            session.execute(BACKDATE_HOLD, (ticket.id,))
        elif operation == "deposit":
            target = rng.choice(self.wallets)
            units = rng.randint(1, 1_000)
            ledger.deposit(target.id, format_units(units, "USD"), ref(), owner_id=self.depositor)
            tally.movements.append((self.world.id, target.id, units))
            tally.counts["deposit.units"] += units
        elif operation == "read":
            account = ledger.account(rng.choice(self.wallets).id)
            tally.min_available = min(tally.min_available, account.balance.available)
        tally.counts[f"{operation}.ok"] += 1


def transfer_statistics(db: PooledDatabase, owners: Sequence[str]) -> dict[tuple[str, bool], tuple[int, int]]:
    """(status, is_hold) -> (count, sum of amount) of every transfer referenced by ``owners``."""
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT status, hold_amount IS NOT NULL, count(*), coalesce(sum(amount), 0) FROM ledger.transfers "
            "WHERE owner_id = ANY(%s) GROUP BY 1, 2",
            (list(owners),),
        ).fetchall()
    return {(status, is_hold): (int(count), int(total)) for status, is_hold, count, total in rows}


def currency_drift(db: PooledDatabase) -> dict[str, tuple[int, int]]:
    """Per currency, the sum of every account's posted and pending balance: zero when nothing drifted."""
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT currency, sum(credits_posted - debits_posted), sum(credits_pending - debits_pending) "
            "FROM ledger.accounts GROUP BY currency"
        ).fetchall()
    return {currency: (int(posted), int(pending)) for currency, posted, pending in rows}


def test_eight_threads_of_random_transfers_holds_and_batches_keep_the_books(
    ledger: Ledger, db: PooledDatabase, pg_url: str
) -> None:
    run_id = uuid.uuid4().hex[:8]
    owners = [f"conc-{run_id}-{i}" for i in range(OWNERS)]
    depositor = f"conc-{run_id}-depositor"
    world = ledger.system_account("USD")
    world_before = world.balance.posted

    wallets: list[Account] = []
    owner_of: dict[int, str] = {}
    for owner_id in owners:
        for _ in range(WALLETS_PER_OWNER):
            account = ledger.open_account(owner_id, "USD", "wallet")
            ledger.deposit(account.id, format_units(INITIAL_UNITS, "USD"), ref(), owner_id=depositor)
            wallets.append(account)
            owner_of[account.id] = owner_id
    workload = Workload(wallets, owner_of, depositor, world)

    barrier = threading.Barrier(THREADS)
    tallies: dict[int, Tally] = {}
    failures: list[BaseException] = []
    with own_sessions(pg_url, THREADS) as sessions:

        def run(index: int) -> None:
            try:
                tallies[index] = workload.run(sessions[index], seed=1_000 + index, barrier=barrier)
            except BaseException as exc:  # a database error (deadlock, serialization...) or a failed check
                failures.append(exc)

        threads = [threading.Thread(target=run, args=(i,), name=f"ledger-{i}") for i in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=THREAD_TIMEOUT_SECONDS)
        assert not any(thread.is_alive() for thread in threads), "a worker thread hung"
    if failures:
        raise AssertionError(f"{len(failures)} of {THREADS} threads failed: {failures!r}") from failures[0]

    counts: Counter[str] = Counter()
    movements: list[tuple[int, int, int]] = []
    for tally in tallies.values():
        counts.update(tally.counts)
        movements.extend(tally.movements)
        assert tally.unexpected == []
        assert tally.min_available >= 0

    # The audit holds, nothing drifted, no wallet went below zero.
    report = ledger.verify()
    assert report.ok, report.problems
    assert all(drift == (0, 0) for drift in currency_drift(db).values()), currency_drift(db)
    final = {w.id: ledger.account(w.id) for w in wallets}
    assert all(a.balance.available >= 0 for a in final.values())

    # Every wallet's posted balance is exactly what the successful operations moved.
    expected_posted = Counter({w.id: INITIAL_UNITS for w in wallets})
    for debit_id, credit_id, units in movements:
        expected_posted[debit_id] -= units
        expected_posted[credit_id] += units
    assert {i: a.balance.posted for i, a in final.items()} == {w.id: expected_posted[w.id] for w in wallets}

    # Money is conserved: the wallets hold what was deposited, and the world account paid it out.
    deposited = INITIAL_UNITS * len(wallets) + sum(u for d, _, u in movements if d == world.id)
    assert sum(a.balance.posted for a in final.values()) == deposited
    assert ledger.system_account("USD").balance.posted == world_before - deposited

    # The transfers in the database match the successful operations one for one.
    stats = transfer_statistics(db, [*owners, depositor])
    assert stats.get(("posted", False)) == (
        counts["transfer.ok"] + counts["batch.posted"] + counts["deposit.ok"] + len(wallets),
        counts["transfer.units"] + counts["batch.units"] + counts["deposit.units"] + INITIAL_UNITS * len(wallets),
    )
    assert stats.get(("posted", True)) == (counts["post.ok"], counts["post.units"])
    holds_created = counts["hold.ok"] + counts["batch.holds"]
    assert len(workload.holds) == holds_created
    finished = sum(stats.get((status, True), (0, 0))[0] for status in ("posted", "voided", "expired", "pending"))
    assert finished == holds_created
    assert stats.get(("voided", True), (0, 0))[0] == counts["void.ok"]
    refused_creations = counts["transfer.InsufficientFunds"] + counts["hold.InsufficientFunds"]
    assert sum(c for (status, _), (c, _) in stats.items() if status == "failed") == (
        refused_creations + counts["batch.InsufficientFunds"]
    ), "every refusal is pinned to its reference, exactly once"

    # Not vacuous: every kind of outcome happened.
    for outcome in (
        "transfer.ok",
        "transfer.InsufficientFunds",
        "hold.ok",
        "hold.InsufficientFunds",
        "post.ok.full",
        "post.ok.partial",
        "post.HoldFinalized",
        "post.ExceedsHold",
        "void.ok",
        "void.HoldFinalized",
        "batch.ok",
        "batch.InsufficientFunds",
        "batch.holds",
        "deposit.ok",
    ):
        assert counts[outcome] > 0, f"no {outcome} in {dict(counts)}"
    assert counts["post.HoldExpired"] + counts["void.HoldExpired"] > 0, dict(counts)
    assert stats.get(("expired", True), (0, 0))[0] > 0, stats

    # Finally release every hold still open: the wallets end with nothing pending.
    with db.connection() as conn:
        conn.execute(
            "UPDATE ledger.transfers SET expires_at = now() - interval '1 second' "
            "WHERE status = 'pending' AND owner_id = ANY(%s)",
            (owners,),
        )
    ledger.expire_holds()
    for account in wallets:
        settled = ledger.account(account.id).balance
        assert (settled.debits_pending, settled.credits_pending) == (0, 0)
        assert settled.posted == expected_posted[account.id]
