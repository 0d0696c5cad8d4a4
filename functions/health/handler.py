"""GET /health: 200 when PostgreSQL and DynamoDB answer, 503 naming the failing check."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from pydantic import BaseModel

from rampart.api.app import create_app, json_response, lambda_entry
from rampart.wiring import health as probes

app = create_app()


class HealthOut(BaseModel):
    status: str
    checks: dict[str, str]


CHECKS = probes.CHECKS


@app.get(
    "/health",
    summary="Check that PostgreSQL and DynamoDB answer",
    tags=["platform"],
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
