"""Typed domain errors. Each names the problem slug and HTTP status API.md gives it, so the
HTTP layer maps them without a lookup table of its own."""

from __future__ import annotations


class DomainError(Exception):
    """A business rule refused the request. Never a bug: always a 4xx for the caller."""

    slug = "validation-error"
    status = 422
    title = "The request breaks a business rule"

    def __init__(self, detail: str = "", *, field: str | None = None, index: int | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.field = field
        # For batch operations: which item (0-based) failed.
        self.index = index

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.detail!r}, field={self.field!r}, index={self.index!r})"


class InvalidAmount(DomainError):
    slug = "validation-error"
    title = "Invalid amount"

    def __init__(self, detail: str = "", *, field: str | None = "/amount", index: int | None = None) -> None:
        super().__init__(detail, field=field, index=index)


class LimitExceeded(DomainError):
    """An amount, or a balance it would produce, beyond what the ledger holds (2^256 - 1 base units)."""

    slug = "limit-exceeded"
    title = "Beyond what the ledger holds"

    def __init__(self, detail: str = "", *, field: str | None = "/amount", index: int | None = None) -> None:
        super().__init__(detail, field=field, index=index)


class UnknownAsset(DomainError):
    slug = "validation-error"
    title = "Unknown currency"

    def __init__(self, detail: str = "", *, field: str | None = "/currency", index: int | None = None) -> None:
        super().__init__(detail, field=field, index=index)


class ValidationFailed(DomainError):
    slug = "validation-error"
    title = "Validation failed"


class Unauthorized(DomainError):
    slug = "unauthorized"
    status = 401
    title = "Unauthorized"


class Forbidden(DomainError):
    slug = "forbidden"
    status = 403
    title = "Forbidden"


class UnknownAccount(DomainError):
    slug = "unknown-account"
    title = "Unknown account"


class InsufficientFunds(DomainError):
    slug = "insufficient-funds"
    title = "Insufficient funds"


class CurrencyMismatch(DomainError):
    slug = "currency-mismatch"
    title = "Currency mismatch"


class SameAccount(DomainError):
    slug = "same-account"
    title = "Debit and credit account are the same"


class HoldFinalized(DomainError):
    slug = "hold-finalized"
    status = 409
    title = "The hold was already posted or voided"


class HoldExpired(DomainError):
    slug = "hold-expired"
    status = 409
    title = "The hold has expired"


class ExceedsHold(DomainError):
    slug = "validation-error"
    title = "Amount exceeds the held amount"


class ReferenceConflict(DomainError):
    slug = "reference-conflict"
    status = 409
    title = "The reference exists with other content"


class NotFound(DomainError):
    slug = "not-found"
    status = 404
    title = "Not found"


# Asynchronous work (Step Functions tasks, queue consumers, schedules) -------------------------
# ARCHITECTURE.md, "Errors": every async failure is classified. A worker raises one of these; the
# class name is the error name a state machine's Retry and Catch match on (``ErrorEquals``), so
# renaming one is a breaking change for every ASL file that names it. The message is for an
# operator: a sentence, never a stack trace.


class TaskError(Exception):
    """A classified failure of asynchronous work."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Transient(TaskError):
    """Worth retrying with backoff: a dependency timed out or was unavailable."""


class Busy(Transient):
    """Another attempt holds the work (a journal claim whose lease has not run out): a worker that
    hung or was killed holds it until the lease ends, so this is retried longer than a ``Transient``
    (ASL: its own Retry, spanning the lease)."""


class ReconciliationRequired(TaskError):
    """RECOVERABLE: the outside world's state is unknown (a payment may or may not have gone
    out); reconcile before going on, never retry blindly."""


class Permanent(TaskError):
    """Will fail the same way every time (bad input, a business rule): park it for an operator."""
