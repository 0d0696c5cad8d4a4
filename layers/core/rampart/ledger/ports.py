"""What the ledger needs from storage. The PostgreSQL adapter implements it; the domain never
imports a database driver."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from rampart.ledger.models import Account, Entry, Problem, Transfer, TransferRequest


class LedgerStore(Protocol):
    def create_account(
        self,
        owner_id: str,
        currency: str,
        name: str | None,
        *,
        is_system: bool = False,
        debits_must_not_exceed_credits: bool = True,
    ) -> Account: ...

    def get_account(self, account_id: int) -> Account | None: ...

    def system_account(self, currency: str, name: str) -> Account | None: ...

    def list_accounts(self, owner_id: str | None, limit: int, before_id: int | None) -> list[Account]: ...

    def create_transfers(self, requests: Sequence[TransferRequest], *, enforce_owner: bool) -> list[Transfer]:
        """Create one transfer, or an atomic batch: all or none. Raises a DomainError (with
        ``index`` set for a batch) when any is refused; a refusal is pinned to its reference."""
        ...

    def finalize_hold(
        self,
        transfer_id: int,
        action: Literal["post", "void"],
        amount: int | None,
        *,
        owner_id: str,
        enforce_owner: bool,
    ) -> Transfer: ...

    def expire_holds(self, limit: int) -> int: ...

    def get_transfer(self, transfer_id: int) -> Transfer | None: ...

    def list_transfers(
        self, owner_id: str | None, account_id: int | None, limit: int, before_id: int | None
    ) -> list[Transfer]: ...

    def list_entries(self, account_id: int, limit: int, before_sequence: int | None) -> list[Entry]: ...

    def verify(self) -> list[Problem]: ...
