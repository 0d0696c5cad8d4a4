"""The rail state on PostgreSQL (schema ``rails``, migration 0007): payments by charge reference,
mints and payouts by key. :class:`PostgresRailState` writes inside the inbox's transaction (it is
given that connection); :class:`PostgresRailReader` reads on the process's database."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from rampart.adapters.postgres.db import Database
from rampart.core.money import to_decimal, to_units
from rampart.rails.models import Operation, OperationKind, Payment

_PAYMENT = (
    "provider, payment_id, charge_id, reference, amount, currency, payer_tax_id, paid_at, status, refund_id, "
    "refunded_at"
)
_OPERATION = "provider, kind, key, status, amount, currency, destination, tx_hash, reason, event_id"


def _amount(value: Decimal, currency: str) -> Decimal:
    """A stored amount at exactly its currency's scale."""
    return to_decimal(to_units(value, currency), currency)


def _payment(row: dict[str, Any]) -> Payment:
    return Payment(**{**row, "amount": _amount(row["amount"], row["currency"])})


def _operation(row: dict[str, Any]) -> Operation:
    return Operation(**{**row, "amount": _amount(row["amount"], row["currency"])})


def _one(conn: psycopg.Connection, query: str, params: Any) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchone() if cur.description is not None else None


class PostgresRailState:
    """The writes of one application, on the inbox's open transaction."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self._conn = conn

    def insert_payment(self, payment: Payment) -> bool:
        row = _one(
            self._conn,
            f"INSERT INTO rails.payments ({_PAYMENT}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, NULL, NULL) "
            "ON CONFLICT (provider, payment_id) DO NOTHING RETURNING payment_id",
            (
                payment.provider,
                payment.payment_id,
                payment.charge_id,
                payment.reference,
                payment.amount,
                payment.currency,
                payment.payer_tax_id,
                payment.paid_at,
                payment.status,
            ),
        )
        return row is not None

    def payment(self, provider: str, payment_id: str, *, lock: bool = False) -> Payment | None:
        row = _one(
            self._conn,
            f"SELECT {_PAYMENT} FROM rails.payments WHERE provider = %s AND payment_id = %s"
            + (" FOR UPDATE" if lock else ""),
            (provider, payment_id),
        )
        return _payment(row) if row else None

    def mark_refunded(self, provider: str, payment_id: str, refund_id: str) -> None:
        self._conn.execute(
            "UPDATE rails.payments SET status = 'refunded', refund_id = %s, refunded_at = now() "
            "WHERE provider = %s AND payment_id = %s",
            (refund_id, provider, payment_id),
        )

    def insert_operation(self, operation: Operation) -> bool:
        row = _one(
            self._conn,
            f"INSERT INTO rails.operations ({_OPERATION}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (provider, kind, key) DO NOTHING RETURNING key",
            (
                operation.provider,
                operation.kind,
                operation.key,
                operation.status,
                operation.amount,
                operation.currency,
                operation.destination,
                operation.tx_hash,
                operation.reason,
                operation.event_id,
            ),
        )
        return row is not None

    def operation(self, provider: str, kind: OperationKind, key: str, *, lock: bool = False) -> Operation | None:
        row = _one(
            self._conn,
            f"SELECT {_OPERATION} FROM rails.operations WHERE provider = %s AND kind = %s AND key = %s"
            + (" FOR UPDATE" if lock else ""),
            (provider, kind, key),
        )
        return _operation(row) if row else None


class PostgresRailReader:
    def __init__(self, db: Database) -> None:
        self._db = db

    def payments_for(self, provider: str, reference: str) -> list[Payment]:
        with self._db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                f"SELECT {_PAYMENT} FROM rails.payments WHERE provider = %s AND reference = %s "
                "ORDER BY paid_at, payment_id",
                (provider, reference),
            )
            return [_payment(r) for r in cur.fetchall()]

    def payment(self, provider: str, payment_id: str) -> Payment | None:
        with self._db.connection() as conn:
            return PostgresRailState(conn).payment(provider, payment_id)

    def operation(self, provider: str, kind: OperationKind, key: str) -> Operation | None:
        with self._db.connection() as conn:
            return PostgresRailState(conn).operation(provider, kind, key)
