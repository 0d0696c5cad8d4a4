"""Per-container singletons: built on first use, reused across invocations.

Settings (:mod:`rampart.core.settings`, validated at cold start):
- ``cursor_key_arn``: the secret (manifest ``cursor_key``) whose value signs pagination cursors;
  read from Secrets Manager on the first cursor signed or verified, then kept by the container.
  Functions that never list (admin deposits, the sweep) never fetch it.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from rampart.core.cursors import CursorSigner
from rampart.core.settings import ConfigurationError, settings
from rampart.ledger import Ledger
from rampart.wiring import forget, per_database

if TYPE_CHECKING:
    pass


@cache
def cursor_signer() -> CursorSigner:
    arn = settings().cursor_key_arn
    if not arn:
        raise ConfigurationError("set RAMPART_CURSOR_KEY_ARN: the cursor_key secret signs pagination cursors")
    from rampart.adapters.aws.secrets import get_secret

    return CursorSigner(get_secret(arn).strip())


class _DeferredCursors:
    """The signer, resolved on first use."""

    def sign(self, scope: str, position: int) -> str:
        return cursor_signer().sign(scope, position)

    def verify(self, scope: str, cursor: str | None) -> int | None:
        return None if cursor is None else cursor_signer().verify(scope, cursor)


def ledger() -> Ledger:
    """The container's ledger, on the process-wide database (a new one once that was reset)."""
    from rampart.adapters.postgres.ledger_store import PostgresLedgerStore

    return per_database("ledger", lambda database: Ledger(PostgresLedgerStore(database), _DeferredCursors()))


def reset() -> None:
    """Forget every singleton (tests, twin restarts)."""
    forget("ledger")
    cursor_signer.cache_clear()
