"""The financial-operations journal on PostgreSQL (schema ``journal``, migration 0011).

A claim is one transaction: ``INSERT … ON CONFLICT DO NOTHING`` makes the first claimant the
only one that may act; any later claimant locks the row (``FOR UPDATE``) and reads what it may do.
A settlement is one transaction too: the conditional UPDATE (still held by this claim, not yet
settled) and the caller's ``also(connection)`` — the ledger mirror and the ramp's phase — commit
together. So a side effect costs two PostgreSQL transactions (ARCHITECTURE.md's budget)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from rampart.adapters.postgres.db import Database
from rampart.journal.errors import JournalConflict, OperationBusy, OutcomeUnknown
from rampart.journal.models import (
    SETTLED,
    Claim,
    Holder,
    Mirrored,
    Movement,
    Operation,
    OperationStatus,
    request_hash,
)
from rampart.ledger.errors import refusal

_COLUMNS = (
    "key, ramp_id, kind, request, request_hash, status, external_id, evidence, claim_id::text AS claim_id, attempts, "
    "claimed_at, lease_until, outcome, error, (lease_until <= now()) AS lapsed"
)
MAX_ERROR = 2000


def _operation(row: Mapping[str, Any]) -> Operation:
    return Operation(
        key=row["key"],
        ramp_id=row["ramp_id"],
        kind=row["kind"],
        request=row["request"],
        status=row["status"],
        claim_id=row["claim_id"],
        attempts=int(row["attempts"]),
        claimed_at=row["claimed_at"],
        lease_until=row["lease_until"],
        external_id=row["external_id"],
        evidence=row["evidence"],
        outcome=row["outcome"],
        error=row["error"],
    )


class StaleClaim(RuntimeError):
    """A settlement by a claim that no longer holds the operation (taken over after its lease, or
    already settled): nothing was written. A bug or a worker that outlived its lease."""


class PostgresJournalStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(
        self,
        key: str,
        *,
        ramp_id: str,
        kind: str,
        request: Mapping[str, Any],
        external_id: str | None,
        lease_seconds: int,
        prepare: Callable[[], tuple[str, Mapping[str, Any]]] | None = None,
        serialize_on: str | None = None,
    ) -> Claim:
        digest = request_hash(request)
        claim_id = str(uuid.uuid4())
        status = "submitted" if external_id is not None else "not_started"
        with self._db.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            if serialize_on is not None:
                # Held until this transaction ends: the act below is the only one on that name.
                cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ("journal:" + serialize_on,))
            cur.execute(
                "INSERT INTO journal.operations (key, ramp_id, kind, request, request_hash, status, external_id, "
                "claim_id, lease_until) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now() + make_interval(secs => %s)) "
                f"ON CONFLICT (key) DO NOTHING RETURNING {_COLUMNS}",
                (key, ramp_id, kind, Jsonb(dict(request)), digest, status, external_id, claim_id, lease_seconds),
            )
            row = cur.fetchone()
            if row is not None:
                if prepare is None:
                    return Claim(_operation(row), act=True)
                sent_id, evidence = prepare()
                cur.execute(
                    "UPDATE journal.operations SET status = 'submitted', external_id = %s, evidence = %s "
                    f"WHERE key = %s RETURNING {_COLUMNS}",
                    (sent_id, Jsonb(dict(evidence)), key),
                )
                prepared = cur.fetchone()
                assert prepared is not None
                return Claim(_operation(prepared), act=True)
            cur.execute(f"SELECT {_COLUMNS} FROM journal.operations WHERE key = %s FOR UPDATE", (key,))
            row = cur.fetchone()
            assert row is not None, "a conflicting key exists"
            found = _operation(row)
            if found.status == "unknown":  # nothing goes on until someone reconciles it
                raise OutcomeUnknown(f"operation {key}: its outcome is unknown; reconcile it first")
            if bytes(row["request_hash"]) != digest:
                raise JournalConflict(f"operation {key} was claimed for another request")
            if found.status in SETTLED:
                return Claim(found)
            if not row["lapsed"]:
                raise OperationBusy(f"operation {key} is held by another claim until {found.lease_until.isoformat()}")
            cur.execute(
                "UPDATE journal.operations SET claim_id = %s, attempts = attempts + 1, claimed_at = now(), "
                "lease_until = now() + make_interval(secs => %s), "
                "external_id = COALESCE(external_id, %s) "
                f"WHERE key = %s RETURNING {_COLUMNS}",
                (claim_id, lease_seconds, external_id, key),
            )
            taken = cur.fetchone()
            assert taken is not None
            return Claim(_operation(taken), look_up=True)

    def release(self, key: str, claim_id: str) -> None:
        """The claimant stops acting without an outcome (it will be retried): its lease ends now,
        so the retry takes the operation over at once — and looks it up first."""
        with self._db.connection() as conn, conn.cursor() as cur:
            cur.execute(
                "UPDATE journal.operations SET lease_until = now() "
                "WHERE key = %s AND claim_id = %s AND status IN ('not_started', 'submitted')",
                (key, claim_id),
            )

    def submitted(self, key: str, claim_id: str, external_id: str) -> Operation:
        with self._db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "UPDATE journal.operations SET status = 'submitted', external_id = %s "
                f"WHERE key = %s AND claim_id = %s AND status IN ('not_started', 'submitted') RETURNING {_COLUMNS}",
                (external_id, key, claim_id),
            )
            row = cur.fetchone()
        if row is None:
            raise StaleClaim(f"operation {key}: this claim no longer holds it")
        return _operation(row)

    def settle(
        self,
        key: str,
        claim_id: str,
        status: OperationStatus,
        *,
        outcome: Mapping[str, Any] | None = None,
        error: str | None = None,
        movements: Sequence[Movement] = (),
        also: Callable[[Any], None] | None = None,
    ) -> Operation:
        if status not in ("confirmed", "failed", "unknown"):
            raise ValueError(f"an operation settles as confirmed, failed or unknown, not {status}")
        with self._db.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "UPDATE journal.operations SET status = %s, outcome = %s, error = %s, "
                "settled_at = CASE WHEN %s IN ('confirmed', 'failed') THEN now() END "
                "WHERE key = %s AND claim_id = %s AND status IN ('not_started', 'submitted') "
                f"RETURNING {_COLUMNS}",
                (
                    status,
                    Jsonb(dict(outcome)) if outcome is not None else None,
                    error[:MAX_ERROR] if error else None,
                    status,
                    key,
                    claim_id,
                ),
            )
            row = cur.fetchone()
            if row is None:
                raise StaleClaim(f"operation {key}: this claim no longer holds it, or it is settled")
            if movements and status != "confirmed":
                raise ValueError("only a confirmed operation moved anything")
            for movement in movements:
                post(cur, movement)
            if also is not None:
                also(conn)
        return _operation(row)

    def open_mirror(self, holder: Holder, asset: str, balance: Callable[[], int], serialize_on: str) -> bool:
        """Make the mirror of a platform account that already holds funds, opened with its balance
        (``balance()``, ledger units) from the world; under the ``serialize_on`` lock its own
        transactions take, so none moves it meanwhile. False when it existed."""
        with self._db.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ("journal:" + serialize_on,))
            cur.execute(
                "SELECT 1 FROM journal.mirrors WHERE network = %s AND address = %s AND asset = %s",
                (holder.network, holder.key, asset),
            )
            if cur.fetchone() is not None:
                return False
            mirror_account(cur, holder, asset)
            units = balance()
            if units > 0:
                post(cur, Movement(f"open:{holder.network}:{holder.key}:{asset}", asset, units, None, holder))
            return True

    def mirrored(self, recent_seconds: int | None = None) -> list[Mirrored]:
        return mirrored(self._db, recent_seconds)

    def operation(self, key: str) -> Operation | None:
        with self._db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM journal.operations WHERE key = %s", (key,))
            row = cur.fetchone()
        return None if row is None else _operation(row)

    def of_ramp(self, ramp_id: str) -> list[Operation]:
        with self._db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM journal.operations WHERE ramp_id = %s ORDER BY claimed_at", (ramp_id,))
            return [_operation(row) for row in cur.fetchall()]


# -- the ledger mirror -------------------------------------------------------------------------
MIRROR_OWNER = "platform"


def mirror_account(cur: Any, holder: Holder, asset: str) -> int:
    """The ledger account mirroring ``holder``'s ``asset`` (made on first use, under a lock on its
    key so two settlements never make two)."""
    params = (holder.network, holder.key, asset)
    cur.execute("SELECT account_id FROM journal.mirrors WHERE network = %s AND address = %s AND asset = %s", params)
    found = cur.fetchone()
    if found is None:
        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ("mirror:" + ":".join(params),))
        cur.execute("SELECT account_id FROM journal.mirrors WHERE network = %s AND address = %s AND asset = %s", params)
        found = cur.fetchone()
    if found is not None:
        return int(found["account_id"] if isinstance(found, Mapping) else found[0])
    cur.execute(
        "INSERT INTO ledger.accounts (owner_id, currency, name, is_system, debits_must_not_exceed_credits) "
        "VALUES (%s, %s, %s, false, true) RETURNING id",
        (MIRROR_OWNER, asset, f"{holder.kind} {holder.network}:{holder.key}"[:100]),
    )
    created = cur.fetchone()
    account_id = int(created["id"] if isinstance(created, Mapping) else created[0])
    cur.execute(
        "INSERT INTO journal.mirrors (network, address, asset, kind, account_id) VALUES (%s, %s, %s, %s, %s)",
        (*params, holder.kind, account_id),
    )
    return account_id


def world_account(cur: Any, asset: str) -> int:
    cur.execute("SELECT id FROM ledger.accounts WHERE is_system AND currency = %s AND name = 'world'", (asset,))
    found = cur.fetchone()
    if found is None:
        raise ValueError(f"no world account for {asset}")
    return int(found["id"] if isinstance(found, Mapping) else found[0])


def post(cur: Any, movement: Movement) -> None:
    """The ledger transfer that mirrors ``movement`` (a refusal — e.g. a mirror that would go
    below zero, which the chain never allows — raises the ledger's typed error and rolls the
    settlement back)."""
    if movement.units <= 0:
        raise ValueError(f"{movement.reference}: a movement moves a positive amount")
    debit = (
        world_account(cur, movement.asset)
        if movement.source is None
        else mirror_account(cur, movement.source, movement.asset)
    )
    credit = (
        world_account(cur, movement.asset)
        if movement.target is None
        else mirror_account(cur, movement.target, movement.asset)
    )
    cur.execute(
        "SELECT error, error_index FROM ledger.create_transfer(%s, %s, %s, %s, %s, %s, NULL, false)",
        (MIRROR_OWNER, movement.reference, debit, credit, movement.units, movement.asset),
    )
    outcome = cur.fetchone()
    error = outcome["error"] if isinstance(outcome, Mapping) else outcome[0]
    if error is not None:
        raise refusal(error, None)


def mirrored(db: Database, recent_seconds: int | None = None) -> list[Mirrored]:
    """Every mirrored account with its ledger balance (credits − debits posted): what
    reconciliation compares with the chain. ``recent_seconds``: only the platform's accounts and
    the mirrors opened that recently (an ephemeral's, of a ramp in flight or just ended)."""
    recent = (
        ""
        if recent_seconds is None
        else "WHERE m.kind = 'platform' OR m.created_at > now() - make_interval(secs => %s) "
    )
    with db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT m.network, m.address, m.asset, m.kind, m.account_id, "
            "a.credits_posted - a.debits_posted AS balance "
            f"FROM journal.mirrors m JOIN ledger.accounts a ON a.id = m.account_id {recent}"
            "ORDER BY m.created_at, m.asset",
            () if recent_seconds is None else (recent_seconds,),
        )
        return [
            Mirrored(Holder(r["network"], r["address"], r["kind"]), r["asset"], int(r["account_id"]), int(r["balance"]))
            for r in cur.fetchall()
        ]
