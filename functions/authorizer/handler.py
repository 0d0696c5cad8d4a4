"""API Gateway REQUEST authorizer: ``Authorization: Bearer <jwt>`` (users) or ``X-Api-Key``
(partners) → an IAM policy and the principal's context (see :mod:`rampart.api.authorizer`).
Bearer tokens are checked without a database round trip; API keys cost one lookup by digest."""

from __future__ import annotations

from typing import Any

from rampart.api.authorizer import authorizer_entry, credentials
from rampart.auth import Identity
from rampart.wiring import auth as auth_wiring


@authorizer_entry("authorizer")
def handler(event: dict[str, Any]) -> Identity:
    kind, secret = credentials(event)
    service = auth_wiring.authenticator()
    return service.authenticate_bearer(secret) if kind == "bearer" else service.authenticate_api_key(secret)
