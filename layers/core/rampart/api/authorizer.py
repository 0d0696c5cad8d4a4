"""API Gateway (REST) Lambda authorizer: credentials from the request, an IAM policy out.

The policy does not depend on the route being called, only on who calls, so API Gateway may
cache it for any route of the API: it allows every method and path of the stage and, for anyone
but an admin, explicitly denies ``/v1/admin/*`` (an explicit Deny beats the Allow). The
functions check roles again (``require_role``). The context reaches the function as
``requestContext.authorizer``: ``principalId``, ``role``, ``kind`` and, for partners, ``partnerId``
(API Gateway allows only strings, numbers and booleans there).

Anything wrong with the credentials raises ``Exception("Unauthorized")``: that exact message is
how a Lambda authorizer makes API Gateway answer 401 (a returned Deny policy would be a 403,
which API.md reserves for an authenticated caller without the right). Lambda counts that raise
as a function error, so each refusal is also counted as the ``AuthorizerRefused`` metric and the
error alarm watches errors less refusals (infra/stacks/observability.py).

Every policy carries ``usageIdentifierKey``: every authenticated method requires an API key
(``apiKeyRequired``) and API Gateway (API key source ``AUTHORIZER``) takes it from here, then
throttles and meters the caller by the usage plan that key is in. A partner is named by the key it
presented (its own key of the partner plan, imported when the partner was created); a user — any
bearer token, admins included — by the users' shared key of the users plan (a secret the
deployment imports). A key API Gateway does not find in a plan of the stage is refused (403).

No API Gateway authorizer cache: its cache key is every identity source, all of which must be
present, and a caller presents one of two headers (``Authorization`` or ``X-Api-Key``); a cache
keyed on fewer headers than the credential could serve one caller's policy to another. Instead
:class:`IdentityCache` keeps a verified API key's identity in the container for a minute, keyed
by the key's SHA-256 (never the key), so a partner's steady traffic costs one database lookup a
minute per container; refusals are never cached. Bearer tokens need no cache (verified locally).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from rampart.auth.errors import InvalidToken
from rampart.auth.models import Identity
from rampart.core.entry import Entry, LambdaHandler
from rampart.core.errors import DomainError

BEARER = "bearer "
ADMIN_PATHS = "v1/admin/*"


class Unauthorized(Exception):
    """API Gateway turns an authorizer failing with exactly this message into a 401."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


def header(event: dict[str, Any], name: str) -> str | None:
    lowered = name.lower()
    for key, value in (event.get("headers") or {}).items():
        if isinstance(key, str) and key.lower() == lowered and isinstance(value, str):
            return value
    return None


def credentials(event: dict[str, Any]) -> tuple[str, str]:
    """``("bearer", token)`` or ``("api_key", key)``. An Authorization header wins over
    X-Api-Key and must be a Bearer token; neither header → :class:`Unauthorized`."""
    authorization = header(event, "Authorization")
    if authorization is not None:
        if authorization[: len(BEARER)].lower() != BEARER or not authorization[len(BEARER) :].strip():
            raise Unauthorized()
        return "bearer", authorization[len(BEARER) :].strip()
    api_key = header(event, "X-Api-Key")
    if api_key:
        return "api_key", api_key.strip()
    raise Unauthorized()


def stage_arn(method_arn: str) -> str:
    """``arn:aws:execute-api:region:account:api/stage/METHOD/path`` → ``arn:…:api/stage``."""
    parts = method_arn.split(":", 5)
    if len(parts) != 6 or parts[:3] != ["arn", parts[1], "execute-api"]:
        raise ValueError(f"not an execute-api ARN: {method_arn!r}")
    api_and_stage = parts[5].split("/")
    if len(api_and_stage) < 2 or not api_and_stage[0] or not api_and_stage[1]:
        raise ValueError(f"no api id and stage in {method_arn!r}")
    return ":".join(parts[:5]) + ":" + "/".join(api_and_stage[:2])


def policy(identity: Identity, method_arn: str, usage_key: str | None = None) -> dict[str, Any]:
    base = stage_arn(method_arn)
    statements: list[dict[str, Any]] = [
        {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [f"{base}/*/*"]},
    ]
    if not identity.is_admin:
        statements.append(
            {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": [f"{base}/*/{ADMIN_PATHS}"]},
        )
    context: dict[str, str] = {"principalId": identity.id, "role": identity.role, "kind": identity.kind}
    if identity.partner_id is not None:
        context["partnerId"] = identity.partner_id
    result: dict[str, Any] = {
        "principalId": identity.id,
        "policyDocument": {"Version": "2012-10-17", "Statement": statements},
        "context": context,
    }
    if usage_key is not None:
        result["usageIdentifierKey"] = usage_key
    return result


def usage_key(event: dict[str, Any], identity: Identity, users_key: str | None = None) -> str | None:
    """The key API Gateway meters this caller by: a partner's API key as presented (its key of
    the partner plan), else — a bearer token — the users' shared key (``users_key``)."""
    try:
        kind, secret = credentials(event)
    except Unauthorized:
        return None
    if identity.partner_id is not None:
        return secret if kind == "api_key" else None
    return users_key if kind == "bearer" else None


class IdentityCache:
    """Verified identities by the SHA-256 of their credential, for ``ttl_seconds``, at most
    ``max_entries`` (the least recently used go first). Only successes are stored."""

    def __init__(
        self,
        ttl_seconds: float = 60.0,  # not money: seconds
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,  # not money: seconds
    ) -> None:
        self.ttl_seconds, self.max_entries, self._clock = ttl_seconds, max_entries, clock
        self._entries: OrderedDict[str, tuple[Identity, float]] = OrderedDict()  # not money: expiry clock
        self._lock = threading.Lock()
        self.loads = 0

    def get(self, credential: str, load: Callable[[str], Identity]) -> Identity:
        key = hashlib.sha256(credential.encode()).hexdigest()
        now = self._clock()
        with self._lock:
            found = self._entries.get(key)
            if found is not None and now - found[1] < self.ttl_seconds:
                self._entries.move_to_end(key)
                return found[0]
        identity = load(credential)  # raises on a refusal: nothing is stored
        with self._lock:
            self.loads += 1
            self._entries[key] = (identity, now)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return identity

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


# The entry stack of the ``authorizer`` kind ------------------------------------------------------

Authenticate = Callable[[dict[str, Any]], Identity]
UsersKey = Callable[[], str | None]


def authorizer_entry(
    service: str = "authorizer", *, requires: Iterable[str] = (), users_key: UsersKey | None = None
) -> Callable[[Authenticate], LambdaHandler]:
    """The authorizer's handler around ``authenticate(event) -> Identity``, on the shared entry
    stack (Logger with the request's correlation id, Tracer, Metrics, settings validated once).
    A refusal — :class:`Unauthorized`, an :class:`InvalidToken`, any ``DomainError`` — is logged
    with its reason, counted (``AuthorizerRefused``) and raised as ``Unauthorized`` (API Gateway:
    401); any other fault propagates (API Gateway: 500). The identity becomes :func:`policy`,
    with :func:`usage_key`; ``users_key()`` gives the users' shared key, asked only for a user."""

    def decorate(authenticate: Authenticate) -> LambdaHandler:
        entry = Entry(service, requires=requires)

        def run(event: Any, context: Any, correlation_id: str) -> dict[str, Any]:
            entry.settings()
            try:
                identity = authenticate(event)
            except (Unauthorized, InvalidToken, DomainError) as exc:
                entry.logger.info("credentials refused", extra={"reason": str(exc) or type(exc).__name__})
                entry.count("AuthorizerRefused")
                raise Unauthorized() from None
            entry.logger.append_keys(principal_id=identity.id, role=identity.role)
            shared = users_key() if users_key is not None and identity.partner_id is None else None
            return policy(identity, str(event.get("methodArn", "")), usage_key(event, identity, shared))

        def correlation(event: Any, context: Any) -> str | None:
            return header(event, "X-Correlation-Id") if isinstance(event, dict) else None

        return entry.wrap(run, correlation)

    return decorate
