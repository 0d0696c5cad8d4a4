"""The ramps' refusals, each with API.md's slug and status (the HTTP layer maps them as it maps
every :class:`~rampart.core.errors.DomainError`)."""

from __future__ import annotations

from collections.abc import Iterable

from rampart.core.errors import DomainError


class FieldErrors(DomainError):
    """A refusal naming several fields at once: ``errors`` is API.md's ``errors[]`` list."""

    def __init__(self, detail: str, errors: Iterable[tuple[str, str]]) -> None:
        listed = [{"field": field, "message": message} for field, message in errors]
        super().__init__(detail, field=listed[0]["field"] if listed else None)
        self.errors = listed


class InvalidRamp(FieldErrors):
    """Malformed destination, payer or signing accounts (422 ``validation-error``)."""

    slug = "validation-error"
    title = "Validation failed"


class BlueprintMismatchError(FieldErrors):
    slug = "blueprint-mismatch"
    title = "A pre-signed transaction differs from its blueprint"


class UnsupportedCorridor(DomainError):
    slug = "unsupported-corridor"
    title = "No corridor for this from/to/currencies"


class AmountOutOfRange(DomainError):
    slug = "amount-out-of-range"
    title = "The amount is outside the corridor's limits"

    def __init__(self, detail: str = "", *, field: str | None = "/input_amount") -> None:
        super().__init__(detail, field=field)


class InsufficientLiquidity(DomainError):
    slug = "insufficient-liquidity"
    title = "The pools cannot fill this amount"

    def __init__(self, detail: str = "", *, field: str | None = "/input_amount") -> None:
        super().__init__(detail, field=field)


class UnknownQuote(DomainError):
    slug = "unknown-quote"
    title = "Unknown quote"

    def __init__(self, detail: str = "no such quote", *, field: str | None = "/quote_id") -> None:
        super().__init__(detail, field=field)


class QuoteExpired(DomainError):
    slug = "quote-expired"
    status = 409
    title = "The quote has expired"

    def __init__(self, detail: str = "the quote is past expires_at", *, field: str | None = "/quote_id") -> None:
        super().__init__(detail, field=field)


class QuoteConsumed(DomainError):
    slug = "quote-consumed"
    status = 409
    title = "The quote was already used"

    def __init__(self, detail: str = "the quote already registered a ramp", *, field: str | None = "/quote_id") -> None:
        super().__init__(detail, field=field)


class EphemeralNotFresh(DomainError):
    slug = "ephemeral-not-fresh"
    title = "An ephemeral account is not fresh on its chain"


class EphemeralInUse(DomainError):
    slug = "ephemeral-in-use"
    status = 409
    title = "An ephemeral account is registered to another unfinished ramp"


class PresignedIncomplete(DomainError):
    slug = "presigned-incomplete"
    status = 409
    title = "Not every blueprint is signed"


class InvalidPhase(DomainError):
    slug = "invalid-phase"
    status = 409
    title = "The ramp is not in a phase that allows this"


class StartDeadlinePassed(DomainError):
    slug = "start-deadline-passed"
    status = 409
    title = "The start deadline has passed"


class ServiceUnavailable(DomainError):
    """A chain or a rail did not answer: nothing was changed; try again after ``Retry-After``."""

    slug = "service-unavailable"
    status = 503
    title = "A dependency is unavailable"

    def __init__(self, detail: str = "", *, retry_after: int = 2) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(retry_after)}
