"""Quotes and ramps on PostgreSQL (schema ``ramps``, migration 0009).

Amounts are stored as integer units at the asset's ledger scale; a quote's corridor, fees and
snapshot come back as written. Every time condition uses the database's ``now()``. A
registration is one transaction: the quote's conditional consumption, the ramp, the claimed
ephemerals (a partial unique index: one active claim per address) — a refusal of any of them
rolls back all of them, so the quote stays unconsumed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from rampart.adapters.postgres.db import Database
from rampart.core.money import to_decimal, to_units
from rampart.ramps.errors import EphemeralInUse, InvalidPhase, QuoteConsumed, QuoteExpired, StartDeadlinePassed
from rampart.ramps.models import (
    FeeBreakdown,
    HistoryEntry,
    Quote,
    Ramp,
    RampError,
    SigningAccount,
    Status,
    UnsignedTx,
    corridor,
)

_QUOTE = (
    "q.id, q.owner_id, q.partner_id, q.corridor, q.input_units, q.output_units, q.fee_network, q.fee_anchor, "
    "q.fee_platform, q.fee_partner, q.rate, q.snapshot, q.created_at, q.expires_at, q.consumed_by, "
    "(q.expires_at <= now()) AS expired"
)
_RAMP = (
    "r.id AS ramp_id, r.seq, r.owner_id AS ramp_owner, r.status, r.phase, r.destination, r.payer, "
    "r.signing_accounts, r.unsigned_txs, r.presigned_txs, r.charge_id, r.payment_instructions, r.refund, "
    "r.start_deadline, r.execution_arn, r.history, r.errors, r.transactions, r.created_at AS ramp_created, "
    "r.updated_at, r.resume_at, r.recoveries"
)
_SELECT_RAMP = f"SELECT {_RAMP}, {_QUOTE} FROM ramps.ramps r JOIN ramps.quotes q ON q.id = r.quote_id"


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _quote(row: Mapping[str, Any]) -> Quote:
    spec = corridor(row["corridor"])
    cur_in, cur_out = spec.input_currency, spec.output_currency
    return Quote(
        id=row["id"],
        owner_id=row["owner_id"],
        corridor=spec,
        input_amount=to_decimal(int(row["input_units"]), cur_in),
        output_amount=to_decimal(int(row["output_units"]), cur_out),
        rate=row["rate"],
        fees=FeeBreakdown(
            network=to_decimal(int(row["fee_network"]), cur_in),
            anchor=to_decimal(int(row["fee_anchor"]), cur_in),
            platform=to_decimal(int(row["fee_platform"]), cur_in),
            partner=to_decimal(int(row["fee_partner"]), cur_in),
            currency=cur_in,
        ),
        snapshot=row["snapshot"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        partner_id=row["partner_id"],
        consumed_by=row["consumed_by"],
        expired=bool(row["expired"]),
    )


def _ramp(row: Mapping[str, Any]) -> Ramp:
    return Ramp(
        id=row["ramp_id"],
        seq=int(row["seq"]),
        owner_id=row["ramp_owner"],
        quote=_quote(row),
        status=row["status"],
        phase=row["phase"],
        destination=row["destination"],
        payer=row["payer"],
        signing_accounts=tuple(SigningAccount(**item) for item in row["signing_accounts"]),
        unsigned_txs=tuple(UnsignedTx(**item) for item in row["unsigned_txs"]),
        presigned=row["presigned_txs"],
        charge_id=row["charge_id"],
        payment_instructions=row["payment_instructions"],
        refund=row["refund"],
        start_deadline=row["start_deadline"],
        execution_arn=row["execution_arn"],
        history=tuple(HistoryEntry(item["phase"], _moment(item["entered_at"])) for item in row["history"]),
        errors=tuple(
            RampError(item["phase"], item["message"], bool(item["recoverable"]), _moment(item["at"]))
            for item in row["errors"]
        ),
        transactions=row["transactions"],
        created_at=row["ramp_created"],
        updated_at=row["updated_at"],
        resume_at=row["resume_at"],
        recoveries=int(row["recoveries"]),
    )


class PostgresRampStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _one(self, query: str, params: Any = ()) -> dict[str, Any] | None:
        with self._db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query, params)
            return cur.fetchone()

    # -- quotes ---------------------------------------------------------------------------------
    def partner_markup(self, partner_id: str) -> int | None:
        row = self._one("SELECT markup_bps FROM auth.partners WHERE id = %s", (partner_id,))
        return None if row is None else int(row["markup_bps"])

    def save_quote(self, quote: Quote, ttl_seconds: int) -> Quote:
        spec = quote.corridor
        cur_in = spec.input_currency
        row = self._one(
            "WITH q AS (INSERT INTO ramps.quotes (id, owner_id, partner_id, corridor, input_units, output_units, "
            "fee_network, fee_anchor, fee_platform, fee_partner, rate, snapshot, expires_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now() + make_interval(secs => %s)) "
            f"RETURNING *) SELECT {_QUOTE} FROM q",
            (
                quote.id,
                quote.owner_id,
                quote.partner_id,
                spec.key,
                to_units(quote.input_amount, cur_in),
                to_units(quote.output_amount, spec.output_currency),
                to_units(quote.fees.network, cur_in, allow_zero=True),
                to_units(quote.fees.anchor, cur_in, allow_zero=True),
                to_units(quote.fees.platform, cur_in, allow_zero=True),
                to_units(quote.fees.partner, cur_in, allow_zero=True),
                quote.rate,
                Jsonb(dict(quote.snapshot)),
                ttl_seconds,
            ),
        )
        assert row is not None
        return _quote(row)

    def quote(self, quote_id: str) -> Quote | None:
        row = self._one(f"SELECT {_QUOTE} FROM ramps.quotes q WHERE q.id = %s", (quote_id,))
        return None if row is None else _quote(row)

    def sweep_quotes(self, grace_seconds: int) -> int:
        with self._db.connection() as conn, conn.cursor() as cur:
            cur.execute(
                "DELETE FROM ramps.quotes WHERE consumed_at IS NULL AND expires_at < now() - make_interval(secs => %s)",
                (grace_seconds,),
            )
            return cur.rowcount

    # -- ramps ----------------------------------------------------------------------------------
    def ephemeral_in_use(self, network: str, address: str) -> bool:
        row = self._one(
            "SELECT 1 AS found FROM ramps.ephemerals WHERE network = %s AND address = %s AND active",
            (network, address),
        )
        return row is not None

    def register(self, ramp: Ramp, start_deadline_seconds: int) -> Ramp:
        quote = ramp.quote
        with self._db.connection() as conn:
            try:
                with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                    cur.execute(
                        "UPDATE ramps.quotes SET consumed_at = now(), consumed_by = %s "
                        "WHERE id = %s AND consumed_at IS NULL AND expires_at > now() RETURNING id",
                        (ramp.id, quote.id),
                    )
                    if cur.fetchone() is None:
                        cur.execute(
                            "SELECT consumed_by IS NOT NULL AS consumed FROM ramps.quotes WHERE id = %s", (quote.id,)
                        )
                        state = cur.fetchone()
                        if state is not None and state["consumed"]:
                            raise QuoteConsumed()
                        raise QuoteExpired()
                    cur.execute(
                        "INSERT INTO ramps.ramps (id, owner_id, quote_id, status, phase, destination, payer, "
                        "signing_accounts, unsigned_txs, start_deadline, history) "
                        "VALUES (%s, %s, %s, 'initial', 'initial', %s, %s, %s, %s, "
                        "now() + make_interval(secs => %s), jsonb_build_array(jsonb_build_object("
                        "'phase', 'initial', 'entered_at', now())))",
                        (
                            ramp.id,
                            ramp.owner_id,
                            quote.id,
                            Jsonb(dict(ramp.destination)),
                            Jsonb(dict(ramp.payer)) if ramp.payer is not None else None,
                            Jsonb([account.__dict__ for account in ramp.signing_accounts]),
                            Jsonb(
                                [
                                    {
                                        "network": tx.network,
                                        "phase": tx.phase,
                                        "nonce": tx.nonce,
                                        "signer": tx.signer,
                                        "tx_data": dict(tx.tx_data),
                                    }
                                    for tx in ramp.unsigned_txs
                                ]
                            ),
                            start_deadline_seconds,
                        ),
                    )
                    for account in ramp.signing_accounts:
                        if account.role == "ephemeral":
                            address = account.address.lower() if account.address.startswith("0x") else account.address
                            cur.execute(
                                "INSERT INTO ramps.ephemerals (ramp_id, network, address) VALUES (%s, %s, %s)",
                                (ramp.id, account.network, address),
                            )
            except psycopg.errors.UniqueViolation as error:
                if "ephemerals_active" in str(error):
                    raise EphemeralInUse("an ephemeral is registered to another unfinished ramp") from None
                if "quote_id" in str(error):
                    raise QuoteConsumed() from None
                raise
        found = self.ramp(ramp.id)
        assert found is not None
        return found

    def ramp(self, ramp_id: str) -> Ramp | None:
        row = self._one(f"{_SELECT_RAMP} WHERE r.id = %s", (ramp_id,))
        return None if row is None else _ramp(row)

    def _update(self, query: str, params: tuple[Any, ...], ramp_id: str, refusal: Exception | None = None) -> Ramp:
        """Run an UPDATE of one ramp (``… RETURNING id``); None returned → ``refusal``."""
        with self._db.connection() as conn, conn.cursor() as cur:
            cur.execute(query, params)
            updated = cur.fetchone()
        if updated is None and refusal is not None:
            raise refusal
        found = self.ramp(ramp_id)
        if found is None:
            raise InvalidPhase("no such ramp")
        return found

    def merge_presigned(self, ramp_id: str, signed: Mapping[str, Mapping[str, Any]]) -> Ramp:
        return self._update(
            "UPDATE ramps.ramps SET presigned_txs = presigned_txs || %s, updated_at = now() "
            "WHERE id = %s AND status = 'initial' RETURNING id",
            (Jsonb({key: dict(value) for key, value in signed.items()}), ramp_id),
            ramp_id,
            InvalidPhase("pre-signed transactions are taken only while the ramp is initial"),
        )

    def set_payment_instructions(self, ramp_id: str, charge_id: str, instructions: Mapping[str, str]) -> Ramp:
        return self._update(
            "UPDATE ramps.ramps SET charge_id = %s, payment_instructions = %s, updated_at = now() "
            "WHERE id = %s RETURNING id",
            (charge_id, Jsonb(dict(instructions)), ramp_id),
            ramp_id,
        )

    def start(self, ramp_id: str) -> tuple[Ramp, bool]:
        found = self.ramp(ramp_id)
        if found is None:
            raise InvalidPhase("no such ramp")
        first = found.corridor.first_phase()
        with self._db.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "SELECT status, start_deadline <= now() AS late FROM ramps.ramps WHERE id = %s FOR UPDATE", (ramp_id,)
            )
            row = cur.fetchone()
            assert row is not None
            started = False
            if row["status"] == "initial":
                if row["late"]:
                    raise StartDeadlinePassed("the start deadline has passed")
                cur.execute(
                    "UPDATE ramps.ramps SET status = 'running', phase = %s, started_at = now(), updated_at = now(), "
                    "history = history || jsonb_build_array(jsonb_build_object('phase', %s::text, 'entered_at', now()))"
                    " "
                    "WHERE id = %s",
                    (first, first, ramp_id),
                )
                started = True
            elif row["status"] == "cancelled":
                raise InvalidPhase("the ramp was cancelled")
            elif row["status"] == "expired":
                raise StartDeadlinePassed("the ramp expired before it was started")
        ramp = self.ramp(ramp_id)
        assert ramp is not None
        return ramp, started

    def set_execution(self, ramp_id: str, execution_arn: str) -> Ramp:
        return self._update(
            "UPDATE ramps.ramps SET execution_arn = %s, updated_at = now() WHERE id = %s RETURNING id",
            (execution_arn, ramp_id),
            ramp_id,
        )

    def cancel(self, ramp_id: str) -> Ramp:
        with self._db.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute(
                "UPDATE ramps.ramps SET status = 'cancelled', updated_at = now() "
                "WHERE id = %s AND status = 'initial' RETURNING id",
                (ramp_id,),
            )
            if cur.fetchone() is None:
                raise InvalidPhase("only a ramp not yet started can be cancelled")
            cur.execute("UPDATE ramps.ephemerals SET active = false WHERE ramp_id = %s AND active", (ramp_id,))
        found = self.ramp(ramp_id)
        assert found is not None
        return found

    def ramps(self, owner_id: str | None, status: Status | None, limit: int, after: int | None) -> list[Ramp]:
        clauses: list[str] = []
        params: list[Any] = []
        if owner_id is not None:
            clauses.append("r.owner_id = %s")
            params.append(owner_id)
        if status is not None:
            clauses.append("r.status = %s")
            params.append(status)
        if after is not None:
            clauses.append("r.seq < %s")
            params.append(after)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        with self._db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(f"{_SELECT_RAMP}{where} ORDER BY r.seq DESC LIMIT %s", (*params, limit))
            return [_ramp(row) for row in cur.fetchall()]

    def expire_due(self) -> list[Ramp]:
        with self._db.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute(
                "UPDATE ramps.ramps SET status = 'expired', updated_at = now() "
                "WHERE status = 'initial' AND start_deadline <= now() RETURNING id"
            )
            ids = [row[0] for row in cur.fetchall()]
            if ids:
                cur.execute("UPDATE ramps.ephemerals SET active = false WHERE ramp_id = ANY(%s) AND active", (ids,))
        return [ramp for ramp in (self.ramp(i) for i in ids) if ramp is not None]

    def park(self, ramp_id: str, phase: str, task_token: str) -> Ramp:
        return self._update(
            "UPDATE ramps.ramps SET task_token = %s, task_phase = %s, updated_at = now() WHERE id = %s RETURNING id",
            (task_token, phase, ramp_id),
            ramp_id,
            InvalidPhase("no such ramp"),
        )

    # -- execution (Ramps III) ------------------------------------------------------------------
    def enter(self, ramp_id: str, phase: str) -> Ramp:
        """The running ramp enters ``phase`` (history grows once: entering it again changes nothing)."""
        return self._update(
            "UPDATE ramps.ramps SET phase = %s, updated_at = now(), "
            "history = history || jsonb_build_array(jsonb_build_object('phase', %s::text, 'entered_at', now()))"
            " WHERE id = %s AND status = 'running' AND phase <> %s RETURNING id",
            (phase, phase, ramp_id, phase),
            ramp_id,
        )

    def finish(self, ramp_id: str, status: Status, phase: str) -> Ramp:
        """The ramp ends (``completed`` / ``failed``) in ``phase``; its ephemerals are free again."""
        with self._db.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute(
                "UPDATE ramps.ramps SET status = %s, phase = %s, updated_at = now(), "
                "history = CASE WHEN phase = %s THEN history ELSE history || jsonb_build_array("
                "jsonb_build_object('phase', %s::text, 'entered_at', now())) END "
                "WHERE id = %s AND status IN ('running', 'paused')",
                (status, phase, phase, phase, ramp_id),
            )
            cur.execute("UPDATE ramps.ephemerals SET active = false WHERE ramp_id = %s AND active", (ramp_id,))
        found = self.ramp(ramp_id)
        assert found is not None
        return found

    def record_error(self, ramp_id: str, phase: str, message: str, recoverable: bool) -> None:
        with self._db.connection() as conn, conn.cursor() as cur:
            cur.execute(
                "UPDATE ramps.ramps SET updated_at = now(), errors = errors || jsonb_build_array(jsonb_build_object("
                "'phase', %s::text, 'message', %s::text, 'recoverable', %s::boolean, 'at', now())) WHERE id = %s",
                (phase, message[:1000], recoverable, ramp_id),
            )

    def add_transaction(self, ramp_id: str, phase: str, tx_hash: str) -> None:
        """``tx_hash`` under ``phase`` in the ramp's ``transactions`` (once)."""
        with self._db.connection() as conn:
            self.transaction_recorder(ramp_id, phase, tx_hash)(conn)

    def transaction_recorder(self, ramp_id: str, phase: str, tx_hash: str) -> Callable[[Any], None]:
        """:meth:`add_transaction` on a connection the caller holds: the journal's settlement runs
        it in its own transaction (one transaction for the settlement, its mirror and this)."""

        def record(conn: Any) -> None:
            conn.execute(
                "UPDATE ramps.ramps SET transactions = jsonb_set(transactions, ARRAY[%s::text], "
                "COALESCE(transactions -> %s::text, '[]'::jsonb) || jsonb_build_array(%s::text)) "
                "WHERE id = %s AND NOT COALESCE(transactions -> %s::text, '[]'::jsonb) ? %s",
                (phase, phase, tx_hash, ramp_id, phase, tx_hash),
            )

        return record

    def set_refund(self, ramp_id: str, refund: Mapping[str, str]) -> None:
        with self._db.connection() as conn, conn.cursor() as cur:
            cur.execute(
                "UPDATE ramps.ramps SET refund = %s, updated_at = now() WHERE id = %s", (Jsonb(dict(refund)), ramp_id)
            )

    def task_token(self, ramp_id: str) -> tuple[str | None, str | None]:
        """The token of the task the ramp's execution waits on, and its phase."""
        row = self._one("SELECT task_token, task_phase FROM ramps.ramps WHERE id = %s", (ramp_id,))
        return (None, None) if row is None else (row["task_token"], row["task_phase"])

    def pause(self, ramp_id: str, resume_at: str, task_token: str, message: str) -> Ramp:
        """The execution waits for an operator: ``paused`` (never silent: the error says why), the
        phase to resume at and the waiting task's token kept."""
        with self._db.connection() as conn, conn.cursor() as cur:
            cur.execute(
                "UPDATE ramps.ramps SET status = 'paused', resume_at = %s, task_token = %s, task_phase = 'paused', "
                "updated_at = now(), errors = errors || jsonb_build_array(jsonb_build_object("
                "'phase', %s::text, 'message', %s::text, 'recoverable', true, 'at', now())) "
                "WHERE id = %s AND status IN ('running', 'paused')",
                (resume_at, task_token, resume_at, message[:1000], ramp_id),
            )
        found = self.ramp(ramp_id)
        assert found is not None
        return found

    # -- the watch (rampart.ramps.watch) -----------------------------------------------------------
    def idle_running(self, idle_seconds: int, limit: int) -> list[Ramp]:
        return self._idle("r.status = 'running'", idle_seconds, limit)

    def waiting_for_payment(self, idle_seconds: int, limit: int) -> list[Ramp]:
        """Running ramps whose execution waits for their payment (a task token kept in ``payment``)
        for ``idle_seconds`` at least, the longest waiting first."""
        return self._idle(
            "r.status = 'running' AND r.phase = 'payment' AND r.task_phase = 'payment' AND r.charge_id IS NOT NULL",
            idle_seconds,
            limit,
        )

    def _idle(self, condition: str, idle_seconds: int, limit: int) -> list[Ramp]:
        """The ramps meeting ``condition`` (SQL text of this module, never input) not updated for
        ``idle_seconds``, the longest idle first."""
        with self._db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                f"{_SELECT_RAMP} WHERE {condition} AND r.updated_at <= now() - make_interval(secs => %s) "
                "ORDER BY r.updated_at LIMIT %s",
                (idle_seconds, limit),
            )
            return [_ramp(row) for row in cur.fetchall()]

    def pause_lost(self, ramp_id: str, seen_at: datetime, message: str) -> bool:
        """The task token goes: nothing waits on it any more (a resume starts a recovery)."""
        with self._db.connection() as conn, conn.cursor() as cur:
            cur.execute(
                "UPDATE ramps.ramps SET status = 'paused', resume_at = phase, task_token = NULL, task_phase = NULL, "
                "updated_at = now(), errors = errors || jsonb_build_array(jsonb_build_object("
                "'phase', phase, 'message', %s::text, 'recoverable', true, 'at', now())) "
                "WHERE id = %s AND status = 'running' AND updated_at = %s RETURNING id",
                (message[:1000], ramp_id, seen_at),
            )
            return cur.fetchone() is not None

    def paused_count(self) -> int:
        row = self._one("SELECT count(*) AS n FROM ramps.ramps WHERE status = 'paused'")
        return 0 if row is None else int(row["n"])

    def unpause(self, ramp_id: str, *, recovery: bool) -> Ramp:
        """``paused`` → ``running`` (an operator resumes it); a recovery execution is counted."""
        return self._update(
            "UPDATE ramps.ramps SET status = 'running', recoveries = recoveries + %s, updated_at = now() "
            "WHERE id = %s AND status = 'paused' RETURNING id",
            (1 if recovery else 0, ramp_id),
            ramp_id,
            InvalidPhase("only a paused ramp can be resumed"),
        )
