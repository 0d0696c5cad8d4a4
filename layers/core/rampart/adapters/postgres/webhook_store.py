"""The webhook inbox on PostgreSQL (schema ``webhooks``, migration 0007).

Recording is one transaction: the delivery id inserted into ``webhooks.deliveries`` (its primary
key is the dedup: a concurrent delivery of the same id waits for the first and then finds it),
and for a new id the event inserted into ``webhooks.inbox`` already claimed for queueing
(``queued_at``). A duplicate claims the event only when it was never queued (an earlier send
failed and released it), with ``UPDATE … WHERE queued_at IS NULL``: one claimant at a time.
Applying locks the inbox row, runs the applier on the same connection and transaction, and marks
the row applied: both commit, or neither."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from rampart.adapters.postgres.db import Database
from rampart.webhooks.errors import UnknownInboxEvent
from rampart.webhooks.models import Applied, InboxEvent, Recorded
from rampart.webhooks.ports import Applier

_COLUMNS = (
    "id, provider, webhook_id, event_type, body, received_at, queued_at, requeues, applied_at, outcome, "
    "attempts, last_error"
)
MAX_ERROR = 1000


def _event(row: dict[str, Any]) -> InboxEvent:
    return InboxEvent(**{**row, "body": bytes(row["body"])})


class PostgresWebhookStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _rows(self, query: str, params: Any = ()) -> list[dict[str, Any]]:
        with self._db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description is not None else []

    def record(self, provider: str, webhook_id: str, event_type: str, body: bytes) -> Recorded:
        with self._db.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "INSERT INTO webhooks.deliveries (provider, webhook_id, inbox_id) "
                "VALUES (%s, %s, nextval(pg_get_serial_sequence('webhooks.inbox', 'id'))) "
                "ON CONFLICT (provider, webhook_id) DO NOTHING RETURNING inbox_id",
                (provider, webhook_id),
            )
            inserted = cur.fetchone()
            if inserted is not None:
                cur.execute(
                    "INSERT INTO webhooks.inbox (id, provider, webhook_id, event_type, body, queued_at) "
                    f"OVERRIDING SYSTEM VALUE VALUES (%s, %s, %s, %s, %s, now()) RETURNING {_COLUMNS}",
                    (inserted["inbox_id"], provider, webhook_id, event_type, body),
                )
                row = cur.fetchone()
                assert row is not None
                return Recorded(_event(row), new=True, claimed=True)
            cur.execute(
                f"UPDATE webhooks.inbox SET queued_at = now() WHERE id = ("
                "SELECT inbox_id FROM webhooks.deliveries WHERE provider = %s AND webhook_id = %s"
                f") AND queued_at IS NULL AND applied_at IS NULL RETURNING {_COLUMNS}",
                (provider, webhook_id),
            )
            claimed = cur.fetchone()
            if claimed is not None:
                return Recorded(_event(claimed), new=False, claimed=True)
            cur.execute(
                f"SELECT {_COLUMNS} FROM webhooks.inbox WHERE id = ("
                "SELECT inbox_id FROM webhooks.deliveries WHERE provider = %s AND webhook_id = %s)",
                (provider, webhook_id),
            )
            row = cur.fetchone()
            assert row is not None, "a delivery always names its inbox row"
            return Recorded(_event(row), new=False, claimed=False)

    def release(self, inbox_id: int) -> None:
        self._rows("UPDATE webhooks.inbox SET queued_at = NULL WHERE id = %s AND applied_at IS NULL", (inbox_id,))

    def claim_due(self, *, grace: timedelta, stale: timedelta, max_requeues: int, limit: int) -> list[InboxEvent]:
        # A row never queued is retried for as long as it takes (the queue was down); one queued
        # and still not applied is counted, up to max_requeues (then it is the DLQ's).
        rows = self._rows(
            "UPDATE webhooks.inbox SET queued_at = now(), "
            "requeues = requeues + CASE WHEN queued_at IS NULL THEN 0 ELSE 1 END "
            "WHERE id IN (SELECT id FROM webhooks.inbox WHERE applied_at IS NULL "
            "AND received_at < now() - %(grace)s "
            "AND (queued_at IS NULL OR (queued_at < now() - %(stale)s AND requeues < %(max)s)) "
            "ORDER BY received_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED) "
            f"RETURNING {_COLUMNS}",
            {"grace": grace, "stale": stale, "max": max_requeues, "limit": limit},
        )
        return sorted((_event(r) for r in rows), key=lambda e: e.id)

    def prune(self, horizon: timedelta) -> int:
        with self._db.connection() as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM webhooks.deliveries WHERE received_at < now() - %s", (horizon,))
            return cur.rowcount

    def apply(self, inbox_id: int, applier: Applier) -> Applied:
        with self._db.connection() as conn:
            try:
                with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                    cur.execute(f"SELECT {_COLUMNS} FROM webhooks.inbox WHERE id = %s FOR UPDATE", (inbox_id,))
                    row = cur.fetchone()
                    if row is None:
                        raise UnknownInboxEvent(f"no inbox event {inbox_id}")
                    event = _event(row)
                    if event.applied_at is not None:
                        return Applied(inbox_id, event.outcome or "", already=True)
                    outcome = applier(event, conn)
                    cur.execute(
                        "UPDATE webhooks.inbox SET applied_at = now(), outcome = %s, last_error = NULL WHERE id = %s",
                        (outcome, inbox_id),
                    )
                    return Applied(inbox_id, outcome, already=False)
            except UnknownInboxEvent:
                raise
            except Exception as exc:
                if not isinstance(exc, psycopg.OperationalError):
                    conn.execute(
                        "UPDATE webhooks.inbox SET attempts = attempts + 1, last_error = %s WHERE id = %s",
                        (f"{type(exc).__name__}: {exc}"[:MAX_ERROR], inbox_id),
                    )
                raise

    def get(self, inbox_id: int) -> InboxEvent | None:
        rows = self._rows(f"SELECT {_COLUMNS} FROM webhooks.inbox WHERE id = %s", (inbox_id,))
        return _event(rows[0]) if rows else None

    def find(self, provider: str, webhook_id: str) -> InboxEvent | None:
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM webhooks.inbox WHERE provider = %s AND webhook_id = %s ORDER BY id DESC LIMIT 1",
            (provider, webhook_id),
        )
        return _event(rows[0]) if rows else None
