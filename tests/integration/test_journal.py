"""The financial-operations journal on PostgreSQL: a side effect is claimed once, taken over only
after its lease, settled once by the claim that holds it, and settled together with its mirror."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from rampart.adapters.postgres.db import PooledDatabase, as_role
from rampart.adapters.postgres.journal_store import PostgresJournalStore, StaleClaim, mirrored
from rampart.core.errors import InsufficientFunds
from rampart.journal import JournalConflict, OperationBusy, OutcomeUnknown, operation_key, request_hash
from rampart.journal.models import Holder, Movement

REQUEST = {"to": "0xabc", "amount": "1000000", "asset": "USDC"}


@pytest.fixture
def journal(db: PooledDatabase) -> PostgresJournalStore:
    return PostgresJournalStore(db)


@pytest.fixture
def mirror(pg_url: str) -> Iterator[str]:
    """A scratch table standing in for the ledger mirror a settlement writes with it."""
    table = f"mirror_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE public.{table} (key text PRIMARY KEY)")  # type: ignore[arg-type]
    yield table
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE public.{table}")  # type: ignore[arg-type]


def key() -> str:
    return operation_key(f"rmp_{uuid.uuid4().hex}", "deliver", "transfer")


def claim(
    journal: PostgresJournalStore, k: str, *, lease: int = 60, request: Any = REQUEST, external: str | None = None
) -> Any:
    return journal.claim(
        k, ramp_id=k.split(":")[0], kind="submit_tx", request=request, external_id=external, lease_seconds=lease
    )


def test_the_first_claim_acts_and_a_repeat_within_the_lease_waits(journal: PostgresJournalStore) -> None:
    k = key()
    first = claim(journal, k)
    assert (first.act, first.look_up, first.done) == (True, False, False)
    assert first.operation.status == "not_started"
    assert first.operation.attempts == 1
    with pytest.raises(OperationBusy):
        claim(journal, k)


def test_a_lapsed_claim_is_taken_over_to_look_up_first_and_the_old_claim_cannot_settle(
    journal: PostgresJournalStore,
) -> None:
    k = key()
    first = claim(journal, k, lease=0)  # lapses at once: the worker "timed out"
    second = claim(journal, k)
    assert (second.act, second.look_up) == (False, True)
    assert second.operation.attempts == 2
    assert second.claim_id != first.claim_id
    with pytest.raises(StaleClaim):
        journal.settle(k, first.claim_id, "confirmed", outcome={"late": True})
    settled = journal.settle(k, second.claim_id, "confirmed", outcome={"tx": "0x1"})
    assert settled.status == "confirmed"
    assert settled.outcome == {"tx": "0x1"}


def test_a_known_external_id_is_recorded_at_the_claim_and_kept_on_take_over(journal: PostgresJournalStore) -> None:
    k = key()
    first = claim(journal, k, lease=0, external="0x" + "ab" * 32)
    assert first.operation.status == "submitted"
    assert first.operation.external_id == "0x" + "ab" * 32
    again = claim(journal, k, external="0x" + "ab" * 32)
    assert again.look_up
    assert again.operation.external_id == "0x" + "ab" * 32


def test_the_same_key_for_another_request_is_a_conflict(journal: PostgresJournalStore) -> None:
    k = key()
    claim(journal, k, lease=0)
    with pytest.raises(JournalConflict):
        claim(journal, k, request={**REQUEST, "amount": "2000000"})
    # the canonical hash ignores the order of the keys
    assert request_hash({"a": 1, "b": 2}) == request_hash({"b": 2, "a": 1})
    assert claim(journal, k, request=dict(reversed(list(REQUEST.items())))).look_up


def test_a_settled_operation_is_done_and_never_acted_on_again(journal: PostgresJournalStore) -> None:
    k = key()
    first = claim(journal, k)
    journal.settle(k, first.claim_id, "failed", error="reverted: min out")
    again = claim(journal, k)
    assert again.done
    assert not again.act
    assert not again.look_up
    assert again.operation.status == "failed"
    assert again.operation.error == "reverted: min out"
    with pytest.raises(StaleClaim):
        journal.settle(k, first.claim_id, "confirmed")


def test_an_unknown_outcome_stops_every_later_claim(journal: PostgresJournalStore) -> None:
    k = key()
    first = claim(journal, k, lease=0)
    journal.submitted(k, first.claim_id, "payout_123")
    journal.settle(k, first.claim_id, "unknown", error="the provider timed out twice")
    with pytest.raises(OutcomeUnknown):
        claim(journal, k)
    found = journal.operation(k)
    assert found is not None
    assert found.status == "unknown"
    assert found.external_id == "payout_123"


def test_concurrent_claims_let_exactly_one_worker_act(journal: PostgresJournalStore) -> None:
    k = key()
    outcomes: list[str] = []
    barrier = threading.Barrier(12)

    def worker() -> None:
        barrier.wait()
        try:
            outcomes.append("act" if claim(journal, k).act else "other")
        except OperationBusy:
            outcomes.append("busy")

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["act"] + ["busy"] * 11


def test_a_settlement_commits_with_its_mirror_or_not_at_all(journal: PostgresJournalStore, mirror: str) -> None:
    k = key()
    held = claim(journal, k)

    def failing(conn: Any) -> None:
        conn.execute(f"INSERT INTO public.{mirror} (key) VALUES (%s)", (k,))
        raise RuntimeError("the mirror refused")

    with pytest.raises(RuntimeError):
        journal.settle(k, held.claim_id, "confirmed", also=failing)
    unsettled = journal.operation(k)
    assert unsettled is not None
    assert unsettled.status == "not_started"

    def mirrored(conn: Any) -> None:
        conn.execute(f"INSERT INTO public.{mirror} (key) VALUES (%s)", (k,))

    assert journal.settle(k, held.claim_id, "confirmed", also=mirrored).status == "confirmed"
    assert [op.key for op in journal.of_ramp(k.split(":")[0])] == [k]


def test_the_worker_role_claims_and_settles_but_cannot_rewrite_history(pg_url: str) -> None:
    worker = PooledDatabase(as_role(pg_url, "rampart_ramp_worker"), min_size=1, max_size=2)
    try:
        store = PostgresJournalStore(worker)
        k = key()
        held = claim(store, k)
        store.settle(k, held.claim_id, "confirmed", outcome={"ok": True})
        with psycopg.connect(as_role(pg_url, "rampart_ramp_worker"), autocommit=True) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("DELETE FROM journal.operations WHERE key = %s", (k,))
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("UPDATE journal.operations SET request = '{}' WHERE key = %s", (k,))
    finally:
        worker.close()


def test_an_operation_key_is_bounded() -> None:
    assert operation_key("rmp_1", "swap", "submit") == "rmp_1:swap:submit"
    for bad in (("", "swap", "submit"), ("rmp_1", "", "x"), ("rmp_1", "swap", "x" * 300)):
        with pytest.raises(ValueError):
            operation_key(*bad)


def test_prepare_acts_inside_the_claim_and_records_what_it_sent(journal: PostgresJournalStore) -> None:
    k = key()
    held = journal.claim(
        k,
        ramp_id="rmp_x",
        kind="submit_tx",
        request=REQUEST,
        external_id=None,
        lease_seconds=60,
        prepare=lambda: ("0xhash", {"raw": "0xsigned"}),
    )
    assert held.act
    assert held.operation.status == "submitted"
    assert (held.operation.external_id, held.operation.evidence) == ("0xhash", {"raw": "0xsigned"})


def test_a_failed_prepare_claims_nothing(journal: PostgresJournalStore) -> None:
    k = key()

    def refused() -> tuple[str, dict[str, str]]:
        raise RuntimeError("the node refused it")

    with pytest.raises(RuntimeError):
        journal.claim(
            k, ramp_id="rmp_x", kind="submit_tx", request=REQUEST, external_id=None, lease_seconds=60, prepare=refused
        )
    assert journal.operation(k) is None
    assert claim(journal, k).act  # the next claim is a first claim again


def test_acts_serialized_on_one_name_never_interleave(journal: PostgresJournalStore) -> None:
    """Eight workers take 'nonces' from a counter they read and then write back slowly: under the
    lock each reads what the previous one wrote, so no nonce is taken twice."""
    counter = {"next": 0}
    taken: list[int] = []

    def take() -> tuple[str, dict[str, int]]:
        nonce = counter["next"]
        threading.Event().wait(0.01)  # not money: a window for another worker to read the same value
        counter["next"] = nonce + 1
        taken.append(nonce)
        return f"0x{nonce}", {"nonce": nonce}

    def worker() -> None:
        journal.claim(
            key(),
            ramp_id="rmp_x",
            kind="submit_tx",
            request=REQUEST,
            external_id=None,
            lease_seconds=60,
            prepare=take,
            serialize_on="base:0xgasfunder",
        )

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == list(range(8))


# -- the ledger mirror -------------------------------------------------------------------------
def holder(kind: str = "ephemeral") -> Holder:
    return Holder("base", "0x" + uuid.uuid4().hex + "00000000", kind)  # type: ignore[arg-type]


def settle_with(journal: PostgresJournalStore, *movements: Movement) -> Any:
    k = key()
    held = claim(journal, k)
    return journal.settle(k, held.claim_id, "confirmed", movements=movements)


def balances(db: PooledDatabase) -> dict[tuple[str, str], int]:
    return {(m.holder.key, m.asset): m.balance for m in mirrored(db)}


def test_a_confirmed_operation_posts_its_movements_with_it(journal: PostgresJournalStore, db: PooledDatabase) -> None:
    ephemeral, fees = holder(), holder("platform")
    brla = 100 * 10**18
    settle_with(journal, Movement(f"mint-{uuid.uuid4().hex}", "BRLA", brla, None, ephemeral))
    settle_with(journal, Movement(f"fee-{uuid.uuid4().hex}", "BRLA", brla // 100, ephemeral, fees))
    found = balances(db)
    assert found[(ephemeral.key, "BRLA")] == brla - brla // 100
    assert found[(fees.key, "BRLA")] == brla // 100
    kinds = {m.holder.key: m.holder.kind for m in mirrored(db)}
    assert (kinds[ephemeral.key], kinds[fees.key]) == ("ephemeral", "platform")


def test_the_schedules_scope_is_the_platform_and_the_recent_mirrors(
    journal: PostgresJournalStore, db: PooledDatabase, pg_url: str
) -> None:
    """What ``ramp-watch`` reconciles each minute: every platform mirror, and only the mirrors
    opened within the window (a day) — an ephemeral of a long-finished ramp is left to the admin
    endpoint, which compares every mirror."""
    old, fresh, platform = holder(), holder(), holder("platform")
    for target in (old, fresh, platform):
        settle_with(journal, Movement(f"in-{uuid.uuid4().hex}", "USDC", 7, None, target))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE journal.mirrors SET created_at = now() - interval '2 days' WHERE address IN (%s, %s)",
            (old.key, platform.key),
        )
    scoped = {m.holder.key for m in mirrored(db, 86_400)}
    assert {fresh.key, platform.key} <= scoped
    assert old.key not in scoped
    assert old.key in {m.holder.key for m in mirrored(db)}


def test_a_movement_the_chain_could_not_make_refuses_the_whole_settlement(
    journal: PostgresJournalStore, db: PooledDatabase
) -> None:
    ephemeral, user = holder(), holder("user")
    settle_with(journal, Movement(f"in-{uuid.uuid4().hex}", "USDC", 5, None, ephemeral))
    k = key()
    held = claim(journal, k)
    with pytest.raises(InsufficientFunds):
        journal.settle(
            k,
            held.claim_id,
            "confirmed",
            movements=[
                Movement(f"ok-{uuid.uuid4().hex}", "USDC", 5, ephemeral, user),
                Movement(f"over-{uuid.uuid4().hex}", "USDC", 1, ephemeral, user),  # 6 out of 5
            ],
        )
    op = journal.operation(k)
    assert op is not None
    assert op.status == "not_started"  # nothing settled, nothing posted
    assert balances(db)[(ephemeral.key, "USDC")] == 5
    assert (user.key, "USDC") not in balances(db)


def test_only_a_confirmed_operation_moves_money(journal: PostgresJournalStore) -> None:
    k = key()
    held = claim(journal, k)
    with pytest.raises(ValueError, match="confirmed"):
        journal.settle(k, held.claim_id, "failed", movements=[Movement("x", "USDC", 1, None, holder())])


def test_concurrent_first_movements_make_one_mirror_account(journal: PostgresJournalStore, db: PooledDatabase) -> None:
    target = holder()
    barrier = threading.Barrier(6)

    def worker() -> None:
        barrier.wait()
        settle_with(journal, Movement(f"c-{uuid.uuid4().hex}", "ETH", 7, None, target))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = [m for m in mirrored(db) if m.holder.key == target.key]
    assert len(rows) == 1
    assert rows[0].balance == 42


def test_the_worker_role_posts_the_mirror(pg_url: str, db: PooledDatabase) -> None:
    worker = PooledDatabase(as_role(pg_url, "rampart_ramp_worker"), min_size=1, max_size=2)
    try:
        target = holder()
        settle_with(PostgresJournalStore(worker), Movement(f"w-{uuid.uuid4().hex}", "BRL", 1000, None, target))
        assert balances(db)[(target.key, "BRL")] == 1000
    finally:
        worker.close()


def test_a_released_claim_is_taken_over_at_once(journal: PostgresJournalStore) -> None:
    """A claimant that stops with no outcome (a transient failure) releases its lease: the retry
    takes over immediately, to look up first, instead of waiting out the lease."""
    k = key()
    first = claim(journal, k, lease=600)
    journal.release(k, first.claim_id)
    second = claim(journal, k)
    assert second.look_up
    journal.release(k, first.claim_id)  # a stale claimant's release changes nothing
    with pytest.raises(OperationBusy):
        claim(journal, k)
