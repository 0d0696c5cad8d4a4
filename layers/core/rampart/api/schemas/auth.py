"""Request and response models of the auth and admin endpoints (API.md, "Platform")."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from rampart.api.inputs import RequestModel
from rampart.api.schemas.ledger import AmountIn, Id, Reference

Email = Annotated[str, Field(min_length=3, max_length=254, examples=["ada@example.com"])]
NewPassword = Annotated[str, Field(min_length=12, max_length=1024, description="At least 12 characters")]
Password = Annotated[str, Field(max_length=1024)]
RefreshToken = Annotated[str, Field(min_length=1, max_length=256)]


# The problem+json schema of the merged OpenAPI document (components/schemas/Problem), for
# documenting a public route's 401: the merge adds the usual error replies, but 401 only to
# routes behind the authorizer.
PROBLEM_CONTENT: dict[str, Any] = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


class _In(RequestModel):
    pass  # strict, no extra fields, no NUL in text: see rampart.api.inputs


class RegisterIn(_In):
    email: Email
    password: NewPassword
    role: Literal["user", "business", "lender"]


class LoginIn(_In):
    email: Annotated[str, Field(max_length=254)]
    password: Password


class RefreshIn(_In):
    refresh_token: RefreshToken


class PartnerIn(_In):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    markup_bps: Annotated[int, Field(ge=0, le=10_000, description="Partner markup in basis points")]


class DepositIn(_In):
    account_id: Id
    amount: AmountIn
    reference: Reference | None = None


class UserOut(BaseModel):
    id: str
    email: str | None = Field(description="null for a partner (API key) caller")
    role: Literal["user", "business", "lender", "partner", "admin"]


class TokensOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - a scheme name
    expires_in: int = Field(description="Seconds until the access token expires")


class PartnerOut(BaseModel):
    id: str
    name: str
    markup_bps: int
    api_key: str = Field(description="Shown once; only its digest is stored")
