"""Typed errors of the auth domain, each with the problem slug and status API.md gives it."""

from __future__ import annotations

from rampart.core.errors import DomainError, Unauthorized


class InvalidCredentials(Unauthorized):
    """Wrong password, unknown email, a bad/expired/revoked/reused token: always the same 401."""


class EmailTaken(DomainError):
    """Registration with an address that already has an account (case-insensitive)."""

    slug = "email-taken"
    status = 409
    title = "Email already registered"

    def __init__(self, detail: str = "", *, field: str | None = "/email", index: int | None = None) -> None:
        super().__init__(detail, field=field, index=index)


class RateLimited(DomainError):
    """Throttled; the HTTP layer sends ``headers`` (``Retry-After``) with the problem."""

    slug = "rate-limited"
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str = "", *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after))

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class ApiKeysUnavailable(DomainError):
    """API Gateway did not take a partner's key (it did not answer, throttled us, or refused):
    the partner was not created; the caller may try again after ``Retry-After``."""

    slug = "service-unavailable"
    status = 503
    title = "A dependency is unavailable"

    def __init__(self, detail: str = "", *, retry_after: int = 2) -> None:
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after))

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class InvalidToken(Exception):
    """An access token that does not verify. Internal: the service/authorizer turns it into a
    401 (or, in the authorizer, into API Gateway's ``Unauthorized``)."""
