"""The only runtime code that picks adapters: one small factory module per domain."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from rampart.adapters.postgres.db import Database

T = TypeVar("T")
_made: dict[str, tuple[Any, Any]] = {}


def per_database(name: str, build: Callable[[Database], T]) -> T:
    """The container's ``name``, built by ``build`` on the process-wide database, once — and again
    once that database was reset (tests, twin restarts)."""
    from rampart.adapters.postgres.db import get_database

    database = get_database()
    made = _made.get(name)
    if made is None or made[0] is not database:
        made = _made[name] = (database, build(database))
    built: T = made[1]
    return built


def forget(*names: str) -> None:
    """Forget what :func:`per_database` built under ``names``."""
    for name in names:
        _made.pop(name, None)
