"""The probes of ``GET /health``: each reaches one dependency the way the functions do, with the
settings validated at cold start, and raises when it does not answer."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from rampart.core.settings import settings


@cache
def _dynamodb_client() -> Any:
    import boto3

    return boto3.client("dynamodb")


def postgres() -> None:
    from rampart.adapters.postgres.db import get_database

    with get_database().connection() as conn:
        conn.execute("SELECT 1 FROM ledger.assets LIMIT 1")


def dynamodb() -> None:
    """Every table this function was given (idempotency, rate limits) is described."""
    current = settings()
    for table in (current.idempotency_table, current.rate_limit_table):
        if table:
            _dynamodb_client().describe_table(TableName=table)


CHECKS: dict[str, Callable[[], None]] = {"postgres": postgres, "dynamodb": dynamodb}


def reset() -> None:
    _dynamodb_client.cache_clear()
