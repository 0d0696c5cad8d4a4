"""The auth store on PostgreSQL (schema ``auth``, migration 0004). Every method is one round trip;
a refresh-token rotation is one call of ``auth.rotate_refresh_token``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from psycopg.rows import dict_row

from rampart.adapters.postgres.db import Database
from rampart.auth.models import Credentials, Partner, Role, Rotation, RotationOutcome, User

_USER_COLUMNS = "id, email, role, created_at"
_PARTNER_COLUMNS = "id, name, markup_bps, created_at"


def _user(row: dict[str, Any]) -> User:
    return User(id=row["id"], email=row["email"], role=row["role"], created_at=row["created_at"])


def _partner(row: dict[str, Any]) -> Partner:
    return Partner(id=row["id"], name=row["name"], markup_bps=row["markup_bps"], created_at=row["created_at"])


class PostgresAuthStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _all(self, query: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[dict[str, Any]]:
        with self._db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description is not None else []

    def _count(self, query: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> int:
        with self._db.connection() as conn, conn.cursor() as cur:
            cur.execute(query, params)
            return cur.rowcount

    # users ------------------------------------------------------------------------------------
    def create_user(self, user_id: str, email: str, password_hash: str, role: Role) -> User | None:
        rows = self._all(
            "INSERT INTO auth.users (id, email, password_hash, role) VALUES (%s, %s, %s, %s) "
            f"ON CONFLICT ((lower(email))) DO NOTHING RETURNING {_USER_COLUMNS}",
            (user_id, email, password_hash, role),
        )
        return _user(rows[0]) if rows else None

    def upsert_user(self, user_id: str, email: str, password_hash: str, role: Role) -> User:
        rows = self._all(
            "INSERT INTO auth.users (id, email, password_hash, role) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT ((lower(email))) DO UPDATE SET password_hash = EXCLUDED.password_hash, role = EXCLUDED.role "
            f"RETURNING {_USER_COLUMNS}",
            (user_id, email, password_hash, role),
        )
        return _user(rows[0])

    def credentials(self, email: str) -> Credentials | None:
        rows = self._all(
            f"SELECT {_USER_COLUMNS}, password_hash FROM auth.users WHERE lower(email) = lower(%s)", (email,)
        )
        return Credentials(user=_user(rows[0]), password_hash=rows[0]["password_hash"]) if rows else None

    def user(self, user_id: str) -> User | None:
        rows = self._all(f"SELECT {_USER_COLUMNS} FROM auth.users WHERE id = %s", (user_id,))
        return _user(rows[0]) if rows else None

    def set_password_hash(self, user_id: str, password_hash: str) -> None:
        self._count("UPDATE auth.users SET password_hash = %s WHERE id = %s", (password_hash, user_id))

    # refresh tokens ---------------------------------------------------------------------------
    def start_family(self, family_id: str, user_id: str, token_hash: bytes, ttl_seconds: int) -> None:
        self._count(
            "WITH family AS (INSERT INTO auth.refresh_families (id, user_id) VALUES (%(family)s, %(user)s) "
            "RETURNING id, user_id) "
            "INSERT INTO auth.refresh_tokens (token_hash, family_id, user_id, expires_at) "
            "SELECT %(token)s, id, user_id, now() + make_interval(secs => %(ttl)s) FROM family",
            {"family": family_id, "user": user_id, "token": token_hash, "ttl": ttl_seconds},
        )

    def rotate_refresh_token(self, old_hash: bytes, new_hash: bytes, ttl_seconds: int) -> Rotation:
        row = self._all(
            "SELECT outcome, user_id, role, family_id FROM auth.rotate_refresh_token(%s, %s, %s)",
            (old_hash, new_hash, ttl_seconds),
        )[0]
        return Rotation(
            outcome=cast(RotationOutcome, row["outcome"]),
            user_id=row["user_id"],
            role=row["role"],
            family_id=row["family_id"],
        )

    def revoke_family_of(self, token_hash: bytes, reason: str) -> bool:
        # An already revoked family keeps its first revocation (and reason).
        rows = self._all(
            "WITH token AS (SELECT family_id FROM auth.refresh_tokens WHERE token_hash = %s), "
            "revoked AS (UPDATE auth.refresh_families f SET revoked_at = now(), revoked_because = %s "
            "FROM token WHERE f.id = token.family_id AND f.revoked_at IS NULL RETURNING f.id) "
            "SELECT family_id FROM token",
            (token_hash, reason),
        )
        return bool(rows)

    def revoke_families_of_user(self, user_id: str, reason: str) -> int:
        return self._count(
            "UPDATE auth.refresh_families SET revoked_at = now(), revoked_because = %s "
            "WHERE user_id = %s AND revoked_at IS NULL",
            (reason, user_id),
        )

    # partners ---------------------------------------------------------------------------------
    def create_partner(
        self, partner_id: str, name: str, markup_bps: int, api_key_hash: bytes, api_key_prefix: str
    ) -> Partner:
        rows = self._all(
            "INSERT INTO auth.partners (id, name, markup_bps, api_key_hash, api_key_prefix) "
            f"VALUES (%s, %s, %s, %s, %s) RETURNING {_PARTNER_COLUMNS}",
            (partner_id, name, markup_bps, api_key_hash, api_key_prefix),
        )
        return _partner(rows[0])

    def partner_by_key_hash(self, api_key_hash: bytes) -> Partner | None:
        rows = self._all(f"SELECT {_PARTNER_COLUMNS} FROM auth.partners WHERE api_key_hash = %s", (api_key_hash,))
        return _partner(rows[0]) if rows else None
