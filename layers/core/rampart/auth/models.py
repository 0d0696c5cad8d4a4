"""Values of the auth domain."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Role = Literal["user", "business", "lender", "partner", "admin"]
ROLES: tuple[Role, ...] = ("user", "business", "lender", "partner", "admin")
# What anyone may register as; admins are seeded, partners created by an admin.
SELF_SERVICE_ROLES: tuple[Role, ...] = ("user", "business", "lender")

Kind = Literal["user", "partner"]
RotationOutcome = Literal["ok", "unknown", "revoked", "reused", "expired"]


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    role: Role
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user with the stored password hash (never leaves the auth domain)."""

    user: User
    password_hash: str


@dataclass(frozen=True, slots=True)
class Partner:
    id: str
    name: str
    markup_bps: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller: what the authorizer hands to the functions."""

    id: str
    role: Role
    kind: Kind = "user"
    partner_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int  # seconds the access token lives
    token_type: str = "Bearer"  # noqa: S105 - a scheme name, not a secret


@dataclass(frozen=True, slots=True)
class Rotation:
    """What the store did with a refresh token presented for rotation."""

    outcome: RotationOutcome
    user_id: str | None = None
    role: Role | None = None
    family_id: str | None = None


@dataclass(frozen=True, slots=True)
class Window:
    """A rate-limit counter: ``count`` events in the window that ends at ``resets_at`` (epoch s)."""

    count: int
    resets_at: float  # not money: epoch seconds
