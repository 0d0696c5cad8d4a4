"""API Gateway (REST) Lambda authorizer: credentials from the request, an IAM policy out.

The policy does not depend on the route being called, only on who calls, so API Gateway may
cache it for any route of the API: it allows every method and path of the stage and, for anyone
but an admin, explicitly denies ``/v1/admin/*`` (an explicit Deny beats the Allow). The
functions check roles again (``require_role``). The context reaches the function as
``requestContext.authorizer``: ``principalId``, ``role``, ``kind`` and, for partners, ``partnerId``
(API Gateway allows only strings, numbers and booleans there).

Anything wrong with the credentials raises ``Exception("Unauthorized")``: that exact message is
how a Lambda authorizer makes API Gateway answer 401.
"""

from __future__ import annotations

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


def policy(identity: Identity, method_arn: str) -> dict[str, Any]:
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
    return {
        "principalId": identity.id,
        "policyDocument": {"Version": "2012-10-17", "Statement": statements},
        "context": context,
    }


# The entry stack of the ``authorizer`` kind ------------------------------------------------------

Authenticate = Callable[[dict[str, Any]], Identity]


def authorizer_entry(
    service: str = "authorizer", *, requires: Iterable[str] = ()
) -> Callable[[Authenticate], LambdaHandler]:
    """The authorizer's handler around ``authenticate(event) -> Identity``, on the shared entry
    stack (Logger with the request's correlation id, Tracer, Metrics, settings validated once).
    A refusal — :class:`Unauthorized`, an :class:`InvalidToken`, any ``DomainError`` — is logged
    with its reason, counted (``AuthorizerRefused``) and raised as ``Unauthorized`` (API Gateway:
    401); any other fault propagates (API Gateway: 500). The identity becomes :func:`policy`."""

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
            return policy(identity, str(event.get("methodArn", "")))

        def correlation(event: Any, context: Any) -> str | None:
            return header(event, "X-Correlation-Id") if isinstance(event, dict) else None

        return entry.wrap(run, correlation)

    return decorate
