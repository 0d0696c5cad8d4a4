"""GET /health: 200 when PostgreSQL and DynamoDB answer, 503 naming the failing check."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import Response
from pydantic import BaseModel

from rampart.api.app import create_app, json_response, lambda_entry

app = create_app()


class HealthOut(BaseModel):
    status: str
    checks: dict[str, str]


@cache
def _dynamodb_client() -> Any:
    import boto3

    return boto3.client("dynamodb")


def _postgres() -> None:
    from rampart.adapters.postgres.db import get_database

    with get_database().connection() as conn:
        conn.execute("SELECT 1 FROM ledger.assets LIMIT 1")


def _dynamodb() -> None:
    client = _dynamodb_client()
    for variable in ("RAMPART_IDEMPOTENCY_TABLE", "RAMPART_RATE_LIMIT_TABLE"):
        table = os.environ.get(variable)
        if table:
            client.describe_table(TableName=table)


CHECKS = {"postgres": _postgres, "dynamodb": _dynamodb}


@app.get(
    "/health",
    responses={
        200: {"description": "every check passed", "content": {"application/json": {"model": HealthOut}}},
        503: {"description": "a check failed (named in checks)", "content": {"application/json": {"model": HealthOut}}},
    },
)
def health() -> Response[str]:
    checks: dict[str, Any] = {}
    for name, check in CHECKS.items():
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:  # a failing dependency is the answer, not an error
            checks[name] = f"failed: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return json_response(200 if ok else 503, {"status": "ok" if ok else "degraded", "checks": checks})


handler = lambda_entry(app, service="health")
