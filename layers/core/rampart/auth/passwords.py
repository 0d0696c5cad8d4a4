"""Password hashing with argon2id (argon2-cffi).

Parameters follow OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane): about 50 ms on one
core, and a Lambda function's fractional vCPU gains nothing from more lanes. Hashes carry their
parameters, so raising them later only needs :meth:`PasswordHasher.needs_rehash` on login.
argon2 is imported on first use: the authorizer never hashes a password and never pays for it.
"""

from __future__ import annotations

import secrets
from typing import Any

TIME_COST = 2
MEMORY_COST_KIB = 19 * 1024
PARALLELISM = 1
MIN_LENGTH = 12
MAX_LENGTH = 1024  # argon2 takes any length; a cap keeps a request from costing us much more


class PasswordHasher:
    def __init__(
        self, *, time_cost: int = TIME_COST, memory_cost: int = MEMORY_COST_KIB, parallelism: int = PARALLELISM
    ) -> None:
        self._time_cost, self._memory_cost, self._parallelism = time_cost, memory_cost, parallelism
        self._hasher: Any = None
        self._dummy: str | None = None

    def _argon2(self) -> Any:
        if self._hasher is None:
            import argon2

            self._hasher = argon2.PasswordHasher(
                time_cost=self._time_cost,
                memory_cost=self._memory_cost,
                parallelism=self._parallelism,
                type=argon2.Type.ID,
            )
        return self._hasher

    def hash(self, password: str) -> str:
        hashed: str = self._argon2().hash(password)
        return hashed

    def verify(self, password_hash: str, password: str) -> bool:
        """Constant work whatever the outcome; ``False`` for a mismatch or an unreadable hash."""
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            return bool(self._argon2().verify(password_hash, password))
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return bool(self._argon2().check_needs_rehash(password_hash))

    def burn(self, password: str) -> None:
        """Spend the time a verification costs, for an email we do not know: an unknown email
        and a wrong password must not be told apart by the clock either."""
        if self._dummy is None:
            self._dummy = self.hash(secrets.token_urlsafe(16))
        self.verify(self._dummy, password)
