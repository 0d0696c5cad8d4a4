"""The ledger's refusals: the typed error for each refusal code its store returns. Here, not in
the service, because both sides need it: the store (an adapter, which may use a domain's ports,
models and errors but never its service) raises them, and the service raises some itself."""

from __future__ import annotations

from rampart.core.errors import (
    CurrencyMismatch,
    DomainError,
    ExceedsHold,
    HoldExpired,
    HoldFinalized,
    InsufficientFunds,
    InvalidAmount,
    LimitExceeded,
    NotFound,
    ReferenceConflict,
    SameAccount,
    UnknownAccount,
    ValidationFailed,
)


def refusal(code: str, index: int | None = None) -> DomainError:
    """The typed error for a refusal code returned by the store. ``field`` names the request
    field at fault, relative to the transfer (a batch prefixes ``/transfers/<index>``)."""
    errors: dict[str, DomainError] = {
        "insufficient_funds": InsufficientFunds(
            "the debit would take the source account below its available balance", field="/amount"
        ),
        "unknown_debit_account": UnknownAccount(
            "the source account does not exist or is not yours", field="/from_account_id"
        ),
        "unknown_credit_account": UnknownAccount("the destination account does not exist", field="/to_account_id"),
        "currency_mismatch": CurrencyMismatch("both accounts and the stated currency must agree", field="/currency"),
        "same_account": SameAccount("debit and credit account must differ", field="/to_account_id"),
        "reference_conflict": ReferenceConflict(
            "this reference was already used with other content", field="/reference"
        ),
        "duplicate_reference": ValidationFailed("a reference appears twice in the batch", field="/reference"),
        "invalid_amount": InvalidAmount("amount must be greater than zero"),
        "amount_limit": LimitExceeded("amount is beyond what the ledger holds (2^256 - 1 base units)"),
        "balance_limit": LimitExceeded(
            "the transfer would take an account's balance beyond what the ledger holds (2^256 - 1 base units)"
        ),
        "exceeds_hold": ExceedsHold("amount exceeds the held amount", field="/amount"),
        "hold_finalized": HoldFinalized("the hold was already posted or voided"),
        "hold_expired": HoldExpired("the hold's timeout has passed"),
        "transfer_not_found": NotFound("no such transfer", field="path:id"),
    }
    error = errors.get(code)
    if error is None:  # pragma: no cover - a code the schema added without the service knowing
        raise RuntimeError(f"unknown ledger refusal {code!r}")
    error.index = index
    return error
