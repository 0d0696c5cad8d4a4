"""The ledger on PostgreSQL: every operation is one call of a SQL function (one round trip)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields, is_dataclass
from typing import Any, Literal, TypeVar, get_type_hints

import psycopg
from psycopg.types.numeric import IntLoader

from rampart.adapters.postgres.db import Database
from rampart.ledger.errors import refusal
from rampart.ledger.models import Account, Entry, Problem, Transfer, TransferRequest

# Raised by ledger.create_transfers when a concurrent request took one of its references between
# its check and its insert; and PostgreSQL's deadlock_detected, when two requests claimed shared
# references in different orders (0006.ledger-speed.sql). Either way nothing was written, and a
# retry sees the winner's transfers (a replay or a conflict).
_RACES = frozenset({"RP409", "40P01"})
_RACE_RETRIES = 3
# Every numeric of the ledger schema is numeric(78, 0), integer base units: read them as int (the
# domain's type) with psycopg's C loader, instead of a Decimal converted row by row.
_NUMERIC_OID = 1700

M = TypeVar("M")
Row = tuple[Any, ...]


def _reader(model: type[M]) -> tuple[tuple[str, ...], Callable[[Row], M]]:
    """The columns a domain dataclass is read from, and the function that builds it from a row of
    exactly those columns, both derived (once, at import) from the dataclass's fields: a field
    is the column of the same name; a nested dataclass (an account's ``Balance``) is read from
    its own fields' columns, in order. The domain model is the one definition of the shape; the
    SQL side must name its columns the same (tests/integration/test_ledger.py checks it)."""
    hints = get_type_hints(model)
    columns: list[str] = []
    parts: list[tuple[int, int, Callable[..., Any] | None]] = []
    for field in fields(model):  # type: ignore[arg-type]
        nested = hints[field.name]
        if isinstance(nested, type) and is_dataclass(nested):
            start = len(columns)
            columns += [inner.name for inner in fields(nested)]
            parts.append((start, len(columns), nested))
        else:
            parts.append((len(columns), len(columns) + 1, None))
            columns.append(field.name)
    if all(build is None for _, _, build in parts):

        def flat(row: Row) -> M:
            return model(*row)

        return tuple(columns), flat

    def nested_read(row: Row) -> M:
        return model(*[row[start] if build is None else build(*row[start:stop]) for start, stop, build in parts])

    return tuple(columns), nested_read


_ACCOUNT_COLUMNS, _account = _reader(Account)
# ledger.outcome rows: an error code, the failing item of a batch, then the transfer (its
# ``replayed`` flag included, which the SQL functions compute).
_TRANSFER_COLUMNS, _transfer = _reader(Transfer)
_ENTRY_COLUMNS, _entry = _reader(Entry)
_ACCOUNTS = ", ".join(_ACCOUNT_COLUMNS)
_OUTCOMES = ", ".join(("error", "error_index", *_TRANSFER_COLUMNS))
_TRANSFERS = ", ".join(f"o.{c}" for c in _TRANSFER_COLUMNS)
_ENTRIES = ", ".join(_ENTRY_COLUMNS)

_SINGLE = f"SELECT {_OUTCOMES} FROM ledger.create_transfer(%s, %s, %s, %s, %s, %s, %s, %s)"
_BATCH = (
    f"SELECT {_OUTCOMES} "
    "FROM ledger.create_transfers(%s, %s, %s::bigint[], %s::bigint[], %s::numeric[], %s, %s::int[], %s)"
)
_FINALIZE = f"SELECT {_OUTCOMES} FROM ledger.finalize_hold(%s, %s, %s, %s, %s)"


def _outcomes(rows: list[Row]) -> list[Transfer]:
    error, error_index = rows[0][0], rows[0][1]
    if error is not None:
        raise refusal(error, error_index)
    return [_transfer(row[2:]) for row in rows]


class PostgresLedgerStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _all(self, query: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[Row]:
        with self._db.connection() as conn, conn.cursor() as cur:
            cur.adapters.register_loader(_NUMERIC_OID, IntLoader)
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
            f"VALUES (%s, %s, %s, %s, %s) RETURNING {_ACCOUNTS}",
            (owner_id, currency, name, is_system, debits_must_not_exceed_credits),
        )
        return _account(rows[0])

    def get_account(self, account_id: int) -> Account | None:
        rows = self._all(f"SELECT {_ACCOUNTS} FROM ledger.accounts WHERE id = %s", (account_id,))
        return _account(rows[0]) if rows else None

    def system_account(self, currency: str, name: str) -> Account | None:
        rows = self._all(
            f"SELECT {_ACCOUNTS} FROM ledger.accounts WHERE is_system AND currency = %s AND name = %s",
            (currency, name),
        )
        return _account(rows[0]) if rows else None

    def list_accounts(self, owner_id: str | None, limit: int, before_id: int | None) -> list[Account]:
        rows = self._all(
            f"SELECT {_ACCOUNTS} FROM ledger.accounts "
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
            return self._retrying(
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
        return self._retrying(_BATCH, params)

    def _retrying(self, sql: str, params: Sequence[Any]) -> list[Transfer]:
        """One call of a creating function, again (up to 3 times) after a race on references."""
        for attempt in range(_RACE_RETRIES):
            try:
                return _outcomes(self._all(sql, params))
            except psycopg.Error as exc:
                if exc.sqlstate not in _RACES or attempt == _RACE_RETRIES - 1:
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
        return int(rows[0][0])

    def get_transfer(self, transfer_id: int) -> Transfer | None:
        rows = self._all(
            f"SELECT {_TRANSFERS} FROM ledger.transfers t, LATERAL ledger.outcome_of(t, NULL, NULL, false) o "
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
            f"SELECT {_TRANSFERS} FROM ledger.transfers t, LATERAL ledger.outcome_of(t, NULL, NULL, false) o "
            f"WHERE {where} AND t.status <> 'failed' AND (%(before)s::bigint IS NULL OR t.id < %(before)s) "
            "ORDER BY t.id DESC LIMIT %(limit)s",
            {"owner": owner_id, "account": account_id, "before": before_id, "limit": limit},
        )
        return [_transfer(r) for r in rows]

    def list_entries(self, account_id: int, limit: int, before_sequence: int | None) -> list[Entry]:
        rows = self._all(
            f"SELECT {_ENTRIES} FROM ledger.entries "
            "WHERE account_id = %(account)s AND (%(before)s::bigint IS NULL OR sequence < %(before)s) "
            "ORDER BY sequence DESC LIMIT %(limit)s",
            {"account": account_id, "before": before_sequence, "limit": limit},
        )
        return [_entry(r) for r in rows]

    # audit ----------------------------------------------------------------------------------
    def verify(self) -> list[Problem]:
        return [Problem(*r) for r in self._all("SELECT check_name, detail FROM ledger.verify()")]
