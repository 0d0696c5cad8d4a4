"""API Gateway REQUEST authorizer: ``Authorization: Bearer <jwt>`` (users) or ``X-Api-Key``
(partners) → an IAM policy, the principal's context and the usage plan key API Gateway meters the
caller by (see :mod:`rampart.api.authorizer`): a partner's own key, or the users' shared key.
Bearer tokens are checked without a database round trip; an API key costs one lookup by digest,
then is remembered by this container for a minute (refusals never are)."""

from __future__ import annotations

from typing import Any

from rampart.api.authorizer import IdentityCache, authorizer_entry, credentials
from rampart.auth import Identity
from rampart.wiring import auth as auth_wiring

API_KEYS = IdentityCache(ttl_seconds=60.0)


@authorizer_entry("authorizer", users_key=auth_wiring.users_api_key)
def handler(event: dict[str, Any]) -> Identity:
    kind, secret = credentials(event)
    service = auth_wiring.authenticator()
    if kind == "bearer":
        return service.authenticate_bearer(secret)
    return API_KEYS.get(secret, service.authenticate_api_key)
