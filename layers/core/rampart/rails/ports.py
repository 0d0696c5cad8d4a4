"""What applying rail events needs from storage. Every call runs inside the transaction that also
marks the event applied (the webhooks inbox), so an event is applied exactly once."""

from __future__ import annotations

from typing import Protocol

from rampart.rails.models import Operation, OperationKind, Payment


class RailState(Protocol):
    def insert_payment(self, payment: Payment) -> bool:
        """Insert ``payment`` unless one with its (provider, payment_id) exists; True when inserted."""
        ...

    def payment(self, provider: str, payment_id: str, *, lock: bool = False) -> Payment | None: ...

    def mark_refunded(self, provider: str, payment_id: str, refund_id: str) -> None: ...

    def insert_operation(self, operation: Operation) -> bool:
        """Insert ``operation`` unless one with its (provider, kind, key) exists; True when inserted."""
        ...

    def operation(self, provider: str, kind: OperationKind, key: str, *, lock: bool = False) -> Operation | None: ...


class RailReader(Protocol):
    """Reads for the rest of the backend (the ramps, operators, tests)."""

    def payments_for(self, provider: str, reference: str) -> list[Payment]: ...

    def payment(self, provider: str, payment_id: str) -> Payment | None: ...

    def operation(self, provider: str, kind: OperationKind, key: str) -> Operation | None: ...
