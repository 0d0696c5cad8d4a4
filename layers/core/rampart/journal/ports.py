"""What the journal needs from storage (the PostgreSQL adapter implements it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from rampart.journal.models import Claim, Holder, Movement, Operation, OperationStatus


class JournalStore(Protocol):
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
        """One transaction: the first claim inserts the operation (``submitted`` when the external id
        is known before acting, else ``not_started``) and may act; a repeat with another request is a
        JournalConflict; an unsettled operation whose lease ran out is taken over (look up first);
        a live lease of another claim is OperationBusy; ``unknown`` is OutcomeUnknown; a settled one
        is returned done.

        ``prepare`` acts inside the first claim's transaction and returns ``(external_id,
        evidence)``: the operation is ``submitted`` with both when the claim commits, and nothing is
        claimed when it raises. With ``serialize_on``, the transaction first takes a lock on that
        name, held until it commits: one account's transactions take their nonces one at a time."""
        ...

    def release(self, key: str, claim_id: str) -> None:
        """End the claim's lease now: it stopped acting with no outcome (a retry takes over)."""
        ...

    def submitted(self, key: str, claim_id: str, external_id: str) -> Operation:
        """The provider answered with its id (the operation was ``not_started``)."""
        ...

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
        """One transaction: the operation becomes ``confirmed``, ``failed`` or ``unknown`` (only by
        the claim that holds it, and only once), a confirmed one's ``movements`` are mirrored in
        the ledger, and ``also(connection)`` runs on the same transaction: all of it commits, or
        none."""
        ...

    def open_mirror(self, holder: Holder, asset: str, balance: Callable[[], int], serialize_on: str) -> bool:
        """The mirror of a platform account, opened with its current balance (once)."""
        ...

    def operation(self, key: str) -> Operation | None: ...

    def of_ramp(self, ramp_id: str) -> list[Operation]: ...
