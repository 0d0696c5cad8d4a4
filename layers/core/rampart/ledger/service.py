"""The ledger's use cases. Converts decimal amounts to base units, validates what the store cannot
see (sizes, ranges, duplicates inside a batch) and turns the store's refusal codes into typed
errors. Storage is a :class:`LedgerStore`; nothing here knows it is PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from rampart.core.cursors import Cursors, CursorSigner
from rampart.core.errors import (
    DomainError,
    NotFound,
    ValidationFailed,
)
from rampart.core.money import scale_of, to_units
from rampart.ledger.errors import refusal
from rampart.ledger.models import (
    SYSTEM_OWNER,
    Account,
    Entry,
    Page,
    Transfer,
    TransferRequest,
    VerifyReport,
)
from rampart.ledger.ports import LedgerStore

T = TypeVar("T")

MAX_BATCH = 100
MAX_HOLD_SECONDS = 2_592_000  # 30 days
MAX_REFERENCE_LENGTH = 200
MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class TransferInput:
    """A transfer as a caller states it: decimal amount, optional hold timeout."""

    debit_account_id: int
    credit_account_id: int
    amount: str | Decimal
    currency: str
    reference: str
    timeout_seconds: int | None = None


def _check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationFailed(f"limit must be between 1 and {MAX_PAGE}", field="query:limit")
    return limit


def _prefixed(error: DomainError, index: int) -> DomainError:
    error.index = index
    if error.field and error.field.startswith("/"):
        error.field = f"/transfers/{index}{error.field}"
    return error


class Ledger:
    """``cursors`` signs the pagination cursors this service issues and verifies the ones it is
    given back; without one, a key of this process only (its cursors verify nowhere else)."""

    def __init__(self, store: LedgerStore, cursors: Cursors | None = None) -> None:
        self._store = store
        self._cursors: Cursors = cursors or CursorSigner.ephemeral()

    # accounts -------------------------------------------------------------------------------
    def open_account(self, owner_id: str, currency: str, name: str | None = None) -> Account:
        scale_of(currency)
        if name is not None and not 1 <= len(name) <= 100:
            raise ValidationFailed("name must be 1 to 100 characters", field="/name")
        return self._store.create_account(owner_id, currency, name)

    def account(self, account_id: int, *, owner_id: str | None = None) -> Account:
        """One account; with ``owner_id`` only if that principal owns it (else not found)."""
        account = self._store.get_account(account_id)
        if account is None or (owner_id is not None and account.owner_id != owner_id):
            raise NotFound("no such account", field="path:id")
        return account

    def system_account(self, currency: str, name: str = "world") -> Account:
        scale_of(currency)
        account = self._store.system_account(currency, name)
        if account is None:
            raise NotFound(f"no system account {name!r} for {currency}")
        return account

    def accounts(self, owner_id: str | None, limit: int = 50, cursor: str | None = None) -> Page[Account]:
        scope = f"accounts:{owner_id}"
        items = self._store.list_accounts(owner_id, _check_limit(limit) + 1, self._cursors.verify(scope, cursor))
        return self._page(scope, items, limit, lambda a: a.id)

    # transfers ------------------------------------------------------------------------------
    def _request(self, owner_id: str, item: TransferInput) -> TransferRequest:
        if not isinstance(item.reference, str) or not 1 <= len(item.reference) <= MAX_REFERENCE_LENGTH:
            raise ValidationFailed(f"reference must be 1 to {MAX_REFERENCE_LENGTH} characters", field="/reference")
        timeout = item.timeout_seconds
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= MAX_HOLD_SECONDS
        ):
            raise ValidationFailed(
                f"hold timeout_seconds must be 1 to {MAX_HOLD_SECONDS}", field="/hold/timeout_seconds"
            )
        return TransferRequest(
            owner_id=owner_id,
            reference=item.reference,
            debit_account_id=item.debit_account_id,
            credit_account_id=item.credit_account_id,
            amount=to_units(item.amount, item.currency),
            currency=item.currency,
            timeout_seconds=timeout,
        )

    def transfer(self, owner_id: str, item: TransferInput, *, enforce_owner: bool = True) -> Transfer:
        """Create one transfer (a hold when ``timeout_seconds`` is set). With ``enforce_owner``
        the caller must own the source account. Same reference + same content → the original
        transfer (``replayed``); other content → :class:`ReferenceConflict`; a refusal is pinned."""
        request = self._request(owner_id, item)
        return self._store.create_transfers([request], enforce_owner=enforce_owner)[0]

    def transfer_batch(
        self, owner_id: str, items: Sequence[TransferInput], *, enforce_owner: bool = True
    ) -> list[Transfer]:
        """An atomic batch of 1 to 100 transfers: all succeed or none does. A refusal names
        its item (``index``, and a field under ``/transfers/<index>``)."""
        if not 1 <= len(items) <= MAX_BATCH:
            raise ValidationFailed(f"a batch holds 1 to {MAX_BATCH} transfers", field="/transfers")
        requests: list[TransferRequest] = []
        seen: set[str] = set()
        for index, item in enumerate(items):
            try:
                request = self._request(owner_id, item)
            except DomainError as exc:
                raise _prefixed(exc, index) from None
            if request.reference in seen:
                raise _prefixed(refusal("duplicate_reference"), index)
            seen.add(request.reference)
            requests.append(request)
        try:
            return self._store.create_transfers(requests, enforce_owner=enforce_owner)
        except DomainError as exc:
            # A one-item batch runs as a single transfer, whose refusals carry no index.
            failed = exc.index if exc.index is not None else (0 if len(requests) == 1 else None)
            if failed is not None:
                raise _prefixed(exc, failed) from None
            raise

    def deposit(self, account_id: int, amount: str | Decimal, reference: str, *, owner_id: str) -> Transfer:
        """Money in from outside: a posted transfer from the currency's world account."""
        account = self.account(account_id)
        world = self.system_account(account.currency, "world")
        return self.transfer(
            owner_id,
            TransferInput(world.id, account.id, amount, account.currency, reference),
            enforce_owner=False,
        )

    def post(
        self,
        transfer_id: int,
        amount: str | Decimal | None = None,
        *,
        owner_id: str,
        enforce_owner: bool = True,
    ) -> Transfer:
        """Post a hold, fully or partly (the rest is released), exactly once."""
        units: int | None = None
        if amount is not None:
            current = self.transfer_by_id(transfer_id)
            units = to_units(amount, current.currency)
        return self._store.finalize_hold(transfer_id, "post", units, owner_id=owner_id, enforce_owner=enforce_owner)

    def void(self, transfer_id: int, *, owner_id: str, enforce_owner: bool = True) -> Transfer:
        """Release a hold, exactly once."""
        return self._store.finalize_hold(transfer_id, "void", None, owner_id=owner_id, enforce_owner=enforce_owner)

    def expire_holds(self, batch: int = 500) -> int:
        """Release every hold past its timeout; returns how many were released."""
        total = 0
        while True:
            released = self._store.expire_holds(batch)
            total += released
            if released < batch:
                return total

    def transfer_by_id(self, transfer_id: int) -> Transfer:
        transfer = self._store.get_transfer(transfer_id)
        if transfer is None:
            raise NotFound("no such transfer", field="path:id")
        return transfer

    def transfers(
        self, owner_id: str | None, account_id: int | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page[Transfer]:
        scope = f"transfers:{owner_id}:{account_id}"
        before = self._cursors.verify(scope, cursor)
        items = self._store.list_transfers(owner_id, account_id, _check_limit(limit) + 1, before)
        return self._page(scope, items, limit, lambda t: t.id)

    def entries(self, account_id: int, limit: int = 50, cursor: str | None = None) -> Page[Entry]:
        scope = f"entries:{account_id}"
        items = self._store.list_entries(account_id, _check_limit(limit) + 1, self._cursors.verify(scope, cursor))
        return self._page(scope, items, limit, lambda e: e.sequence)

    def _page(self, scope: str, items: list[T], limit: int, key: Callable[[T], int]) -> Page[T]:
        """Items were fetched with ``limit + 1``: the extra one says whether a next page exists."""
        if len(items) > limit:
            return Page(items[:limit], self._cursors.sign(scope, key(items[limit - 1])))
        return Page(items, None)

    # audit ----------------------------------------------------------------------------------
    def verify(self) -> VerifyReport:
        """Check every invariant: double entry per currency, balances as folds of entries and
        open holds, every account's hash chain, wallets never overdrawn."""
        return VerifyReport(problems=self._store.verify())


__all__ = ["SYSTEM_OWNER", "Ledger", "TransferInput", "refusal"]
