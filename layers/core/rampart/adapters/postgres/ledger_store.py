"""The ledger on PostgreSQL: every operation is one call of a SQL function (one round trip)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from rampart.adapters.postgres.db import Database
from rampart.ledger.models import Account, Balance, Entry, Problem, Transfer, TransferRequest
from rampart.ledger.service import refusal

# Raised by ledger.create_transfers when a concurrent request took one of its references between
# its check and its insert: nothing was written, and a retry sees the winner's transfer.
_REFERENCE_RACE = "RP409"
_RACE_RETRIES = 3

_ACCOUNT_COLUMNS = (
    "id, owner_id, currency, name, is_system, debits_must_not_exceed_credits, debits_pending, "
    "debits_posted, credits_pending, credits_posted, version, created_at"
)
_TRANSFER_COLUMNS = (
    "id, owner_id, reference, debit_account_id, credit_account_id, currency, amount, hold_amount, "
    "timeout_seconds, status, created_at, expires_at, finalized_at"
)
_SINGLE = (
    f"SELECT error, error_index, replayed, {_TRANSFER_COLUMNS} "
    "FROM ledger.create_transfer(%s, %s, %s, %s, %s, %s, %s, %s)"
)
_BATCH = (
    f"SELECT error, error_index, replayed, {_TRANSFER_COLUMNS} "
    "FROM ledger.create_transfers(%s, %s, %s::bigint[], %s::bigint[], %s::numeric[], %s, %s::int[], %s)"
)
_FINALIZE = f"SELECT error, error_index, replayed, {_TRANSFER_COLUMNS} FROM ledger.finalize_hold(%s, %s, %s, %s, %s)"


def _account(row: dict[str, Any]) -> Account:
    return Account(
        id=row["id"],
        owner_id=row["owner_id"],
        currency=row["currency"],
        name=row["name"],
        is_system=row["is_system"],
        debits_must_not_exceed_credits=row["debits_must_not_exceed_credits"],
        balance=Balance(
            debits_pending=int(row["debits_pending"]),
            debits_posted=int(row["debits_posted"]),
            credits_pending=int(row["credits_pending"]),
            credits_posted=int(row["credits_posted"]),
        ),
        version=row["version"],
        created_at=row["created_at"],
    )


def _transfer(row: dict[str, Any]) -> Transfer:
    return Transfer(
        id=row["id"],
        owner_id=row["owner_id"],
        reference=row["reference"],
        debit_account_id=row["debit_account_id"],
        credit_account_id=row["credit_account_id"],
        currency=row["currency"],
        amount=int(row["amount"]),
        hold_amount=None if row["hold_amount"] is None else int(row["hold_amount"]),
        timeout_seconds=row["timeout_seconds"],
        status=row["status"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        finalized_at=row["finalized_at"],
        replayed=bool(row.get("replayed")),
    )


def _outcomes(rows: list[dict[str, Any]]) -> list[Transfer]:
    first = rows[0]
    if first["error"] is not None:
        raise refusal(first["error"], first["error_index"])
    return [_transfer(row) for row in rows]


class PostgresLedgerStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _all(self, query: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[dict[str, Any]]:
        with self._db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query, params)
            return cur.fetchall()

    # accounts -------------------------------------------------------------------------------
    def create_account(
        self,
        owner_id: str,
        currency: str,
        name: str | None,
        *,
        is_system: bool = False,
        debits_must_not_exceed_credits: bool = True,
    ) -> Account:
        rows = self._all(
            "INSERT INTO ledger.accounts (owner_id, currency, name, is_system, debits_must_not_exceed_credits) "
            f"VALUES (%s, %s, %s, %s, %s) RETURNING {_ACCOUNT_COLUMNS}",
            (owner_id, currency, name, is_system, debits_must_not_exceed_credits),
        )
        return _account(rows[0])

    def get_account(self, account_id: int) -> Account | None:
        rows = self._all(f"SELECT {_ACCOUNT_COLUMNS} FROM ledger.accounts WHERE id = %s", (account_id,))
        return _account(rows[0]) if rows else None

    def system_account(self, currency: str, name: str) -> Account | None:
        rows = self._all(
            f"SELECT {_ACCOUNT_COLUMNS} FROM ledger.accounts WHERE is_system AND currency = %s AND name = %s",
            (currency, name),
        )
        return _account(rows[0]) if rows else None

    def list_accounts(self, owner_id: str | None, limit: int, before_id: int | None) -> list[Account]:
        rows = self._all(
            f"SELECT {_ACCOUNT_COLUMNS} FROM ledger.accounts "
            "WHERE (%(owner)s::text IS NULL OR owner_id = %(owner)s) "
            "AND (%(before)s::bigint IS NULL OR id < %(before)s) "
            "ORDER BY id DESC LIMIT %(limit)s",
            {"owner": owner_id, "before": before_id, "limit": limit},
        )
        return [_account(r) for r in rows]

    # transfers ------------------------------------------------------------------------------
    def create_transfers(self, requests: Sequence[TransferRequest], *, enforce_owner: bool) -> list[Transfer]:
        if len(requests) == 1:
            r = requests[0]
            return _outcomes(
                self._all(
                    _SINGLE,
                    (
                        r.owner_id,
                        r.reference,
                        r.debit_account_id,
                        r.credit_account_id,
                        r.amount,
                        r.currency,
                        r.timeout_seconds,
                        enforce_owner,
                    ),
                )
            )
        owners = {r.owner_id for r in requests}
        if len(owners) != 1:
            raise ValueError("a batch belongs to one owner")
        params = (
            owners.pop(),
            [r.reference for r in requests],
            [r.debit_account_id for r in requests],
            [r.credit_account_id for r in requests],
            [r.amount for r in requests],
            [r.currency for r in requests],
            [r.timeout_seconds for r in requests],
            enforce_owner,
        )
        for attempt in range(_RACE_RETRIES):
            try:
                return _outcomes(self._all(_BATCH, params))
            except psycopg.Error as exc:
                if exc.sqlstate != _REFERENCE_RACE or attempt == _RACE_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def finalize_hold(
        self,
        transfer_id: int,
        action: Literal["post", "void"],
        amount: int | None,
        *,
        owner_id: str,
        enforce_owner: bool,
    ) -> Transfer:
        return _outcomes(self._all(_FINALIZE, (transfer_id, action, amount, owner_id, enforce_owner)))[0]

    def expire_holds(self, limit: int) -> int:
        rows = self._all("SELECT ledger.expire_holds(%s) AS n", (limit,))
        return int(rows[0]["n"])

    def get_transfer(self, transfer_id: int) -> Transfer | None:
        rows = self._all(
            "SELECT o.* FROM ledger.transfers t, LATERAL ledger.outcome_of(t, NULL, NULL, false) o "
            "WHERE t.id = %s AND t.status <> 'failed'",
            (transfer_id,),
        )
        return _transfer(rows[0]) if rows else None

    def list_transfers(
        self, owner_id: str | None, account_id: int | None, limit: int, before_id: int | None
    ) -> list[Transfer]:
        if account_id is not None:
            where = "(t.debit_account_id = %(account)s OR t.credit_account_id = %(account)s)"
        else:
            where = "(%(owner)s::text IS NULL OR t.owner_id = %(owner)s)"
        rows = self._all(
            f"SELECT o.* FROM ledger.transfers t, LATERAL ledger.outcome_of(t, NULL, NULL, false) o "
            f"WHERE {where} AND t.status <> 'failed' AND (%(before)s::bigint IS NULL OR t.id < %(before)s) "
            "ORDER BY t.id DESC LIMIT %(limit)s",
            {"owner": owner_id, "account": account_id, "before": before_id, "limit": limit},
        )
        return [_transfer(r) for r in rows]

    def list_entries(self, account_id: int, limit: int, before_sequence: int | None) -> list[Entry]:
        rows = self._all(
            "SELECT id, account_id, sequence, transfer_id, direction, amount, balance_after, created_at, "
            "prev_hash, hash FROM ledger.entries "
            "WHERE account_id = %(account)s AND (%(before)s::bigint IS NULL OR sequence < %(before)s) "
            "ORDER BY sequence DESC LIMIT %(limit)s",
            {"account": account_id, "before": before_sequence, "limit": limit},
        )
        return [
            Entry(
                id=r["id"],
                account_id=r["account_id"],
                sequence=r["sequence"],
                transfer_id=r["transfer_id"],
                direction=r["direction"],
                amount=int(r["amount"]),
                balance_after=int(r["balance_after"]),
                created_at=r["created_at"],
                prev_hash=bytes(r["prev_hash"]),
                hash=bytes(r["hash"]),
            )
            for r in rows
        ]

    # audit ----------------------------------------------------------------------------------
    def verify(self) -> list[Problem]:
        return [Problem(r["check_name"], r["detail"]) for r in self._all("SELECT * FROM ledger.verify()")]
