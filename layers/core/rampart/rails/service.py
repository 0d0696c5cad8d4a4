"""Applying a provider's events to the rail state. Each application is idempotent on its own (the
same fact twice changes nothing) on top of the inbox's exactly-once mark; a contradiction raises
:class:`~rampart.rails.errors.RailConflict` (parked for an operator), an event that depends on one
not yet applied raises :class:`~rampart.core.errors.Transient` (retried by the queue)."""

from __future__ import annotations

from rampart.core.errors import Transient
from rampart.rails.errors import RailConflict
from rampart.rails.events import (
    ChargePaid,
    MintCompleted,
    MintFailed,
    PayoutCompleted,
    PayoutFailed,
    RailEvent,
    RefundCompleted,
)
from rampart.rails.models import Operation, OperationKind, OperationStatus, Payment
from rampart.rails.ports import RailState


class RailService:
    def __init__(self, state: RailState) -> None:
        self.state = state

    def apply(self, provider: str, event: RailEvent) -> str:
        """Apply ``event``; returns what it did, in a few words (kept on the inbox row)."""
        if isinstance(event, ChargePaid):
            return self._charge_paid(provider, event)
        if isinstance(event, RefundCompleted):
            return self._refund_completed(provider, event)
        return self._operation(provider, event)

    def _charge_paid(self, provider: str, event: ChargePaid) -> str:
        payment = Payment(
            provider=provider,
            payment_id=event.payment_id,
            charge_id=event.charge_id,
            reference=event.reference,
            amount=event.amount,
            currency=event.currency,
            payer_tax_id=event.payer_tax_id,
            paid_at=event.paid_at,
            status=event.outcome,
        )
        if self.state.insert_payment(payment):
            return f"payment {event.payment_id} recorded for {event.reference} ({event.outcome})"
        known = self.state.payment(provider, event.payment_id)
        assert known is not None
        if (known.charge_id, known.reference, known.amount, known.currency) != (
            event.charge_id,
            event.reference,
            event.amount,
            event.currency,
        ):
            raise RailConflict(f"payment {event.payment_id} is already recorded with other content")
        return f"payment {event.payment_id} already recorded"

    def _refund_completed(self, provider: str, event: RefundCompleted) -> str:
        known = self.state.payment(provider, event.payment_id, lock=True)
        if known is None:
            raise Transient(f"refund {event.refund_id}: payment {event.payment_id} is not recorded yet")
        if (known.charge_id, known.reference) != (event.charge_id, event.reference):
            raise RailConflict(f"refund {event.refund_id} names another charge than payment {event.payment_id}")
        if (known.amount, known.currency) != (event.amount, event.currency):
            raise RailConflict(f"refund {event.refund_id} is not the full amount of payment {event.payment_id}")
        if known.status == "refunded":
            if known.refund_id != event.refund_id:
                raise RailConflict(f"payment {event.payment_id} was already refunded by {known.refund_id}")
            return f"payment {event.payment_id} already refunded"
        self.state.mark_refunded(provider, event.payment_id, event.refund_id)
        return f"payment {event.payment_id} refunded ({event.refund_id})"

    def _operation(self, provider: str, event: MintCompleted | MintFailed | PayoutCompleted | PayoutFailed) -> str:
        kind: OperationKind
        if isinstance(event, MintCompleted | MintFailed):
            kind, destination = "mint", event.address
            tx_hash = event.tx_hash if isinstance(event, MintCompleted) else None
        else:
            kind, destination = "payout", event.pix_key
            tx_hash = event.burn_tx_hash if isinstance(event, PayoutCompleted) else None
        status: OperationStatus = "completed" if isinstance(event, MintCompleted | PayoutCompleted) else "failed"
        reason = event.reason if isinstance(event, MintFailed | PayoutFailed) else None
        operation = Operation(
            provider=provider,
            kind=kind,
            key=event.key,
            status=status,
            amount=event.amount,
            currency=event.currency,
            destination=destination,
            tx_hash=tx_hash,
            reason=reason,
            event_id=event.id,
        )
        if self.state.insert_operation(operation):
            return f"{kind} {event.key} {status}"
        known = self.state.operation(provider, kind, event.key)
        assert known is not None
        if (known.status, known.amount, known.currency, known.destination, known.tx_hash) != (
            status,
            event.amount,
            event.currency,
            destination,
            tx_hash,
        ):
            raise RailConflict(f"{kind} {event.key} was already reported {known.status} with other content")
        return f"{kind} {event.key} already {status}"
