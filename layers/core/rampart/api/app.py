"""What every API function shares: the resolver with validation and problem+json errors, the
principal handed over by the authorizer, the decorator stack (Logger with correlation id,
Tracer, Metrics) and idempotency for money-moving POSTs.

A handler module is thin::

    app = create_app()

    @app.post("/v1/things")
    def create(body: Annotated[ThingIn, Body()]) -> ...: ...

    handler = lambda_entry(app, service="things", idempotent={"POST /v1/things"})
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import uuid
import warnings
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, cast

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from rampart.api.problems import PROBLEM_JSON, problem_json
from rampart.core.errors import DomainError, Forbidden, NotFound, Unauthorized
from rampart.core.settings import Need

MAX_BODY_BYTES = 256 * 1024
_CORRELATION_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

log = logging.getLogger("rampart.api")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as the authorizer established it."""

    id: str
    role: str
    kind: str = "user"  # user | partner

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _header(event: dict[str, Any], name: str) -> str | None:
    headers = event.get("headers") or {}
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value if isinstance(value, str) else None
    return None


def correlation_id_of(event: dict[str, Any]) -> str:
    given = _header(event, "X-Correlation-Id")
    if given and _CORRELATION_RE.match(given):
        return given
    return str(uuid.uuid4())


def _pointer(loc: tuple[Any, ...]) -> str:
    """Powertools/pydantic error location → API.md field: a JSON pointer into the body, or
    ``query:name`` / ``path:name`` / ``header:Name``."""
    if not loc:
        return "/"
    where, rest = loc[0], [str(p) for p in loc[1:]]
    if where == "body":
        return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in rest)
    if where == "header":
        return "header:" + "-".join(part.capitalize() for part in (rest[0] if rest else "").split("-"))
    return f"{where}:{rest[0] if rest else ''}"


def _body_problem(event: dict[str, Any]) -> tuple[int, str, str] | None:
    """Checks on a request body that come before routing and validation: size, then type."""
    body = event.get("body")
    if event.get("httpMethod") not in _BODY_METHODS or not body:
        return None
    if len(body.encode()) > MAX_BODY_BYTES:
        return 413, "payload-too-large", "the body is over 256 KB"
    content_type = (_header(event, "Content-Type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return 415, "unsupported-media-type", "send the body as application/json"
    if event.get("isBase64Encoded") and not _utf8(body):  # bytes that are no text cannot be JSON
        return 400, "malformed-request", "the body is not valid JSON"
    return None


def _utf8(encoded: str) -> bool:
    """Whether a base64 body (API Gateway's form for bytes that are not UTF-8) decodes to UTF-8 text."""
    try:
        base64.b64decode(encoded, validate=True).decode("utf-8")
    except ValueError:  # binascii.Error and UnicodeDecodeError both are
        return False
    return True


def _problem(status: int, slug: str, *, headers: dict[str, str] | None = None, **kwargs: Any) -> Response[str]:
    return Response(
        status_code=status, content_type=PROBLEM_JSON, body=problem_json(status, slug, **kwargs), headers=headers
    )


def create_app() -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)

    def context() -> dict[str, Any]:
        event = app.current_event.raw_event
        return {"instance": event.get("path"), "correlation_id": app.context.get("correlation_id")}

    @app.exception_handler(RequestValidationError)
    def on_validation(exc: RequestValidationError) -> Response[str]:
        errors = exc.errors()
        malformed = [
            e
            for e in errors
            if e.get("type") == "json_invalid"
            or (tuple(e.get("loc", ())) == ("body",) and e.get("type") in ("missing", "model_attributes_type"))
        ]
        if malformed:
            detail = "the body must be a JSON object"
            if malformed[0].get("type") == "json_invalid":
                detail = "the body is not valid JSON"
            return _problem(
                400, "malformed-request", detail=detail, errors=[{"field": "/", "message": detail}], **context()
            )
        listed = [{"field": _pointer(tuple(e.get("loc", ()))), "message": str(e.get("msg", "invalid"))} for e in errors]
        return _problem(
            422,
            "validation-error",
            detail="; ".join(f"{e['field']}: {e['message']}" for e in listed),
            errors=listed,
            **context(),
        )

    @app.exception_handler(DomainError)
    def on_domain(exc: DomainError) -> Response[str]:
        errors = [{"field": exc.field, "message": exc.detail}] if exc.field else []
        headers = getattr(exc, "headers", None)  # e.g. Retry-After of a 429
        return _problem(
            exc.status, exc.slug, title=exc.title, detail=exc.detail, errors=errors, headers=headers, **context()
        )

    @app.not_found
    def on_not_found(exc: NotFoundError) -> Response[str]:
        return _problem(404, "not-found", detail="no such route or method", **context())

    return app


def principal(app: APIGatewayRestResolver) -> Principal:
    """The caller, from the authorizer's context (API Gateway puts it in requestContext.authorizer)."""
    authorizer = app.current_event.raw_event.get("requestContext", {}).get("authorizer") or {}
    principal_id, role = authorizer.get("principalId"), authorizer.get("role")
    if not principal_id or not role:
        raise Unauthorized("no authenticated principal")
    return Principal(id=str(principal_id), role=str(role), kind=str(authorizer.get("kind", "user")))


def require_role(who: Principal, *roles: str) -> None:
    if who.role not in roles:
        raise Forbidden(f"this needs the role {' or '.join(roles)}")


def id_number(value: str) -> int | None:
    """The number behind an id, or None when it is not one of ours: ASCII digits only
    (``str.isdigit`` also takes ``"²"``, which ``int`` refuses), at most 18 of them."""
    if value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def parse_id(value: str, field: str = "path:id") -> int:
    """Ids are opaque strings to clients; ours are positive integers underneath."""
    number = id_number(value)
    if number is None:
        raise NotFound("no such resource", field=field)
    return number


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body, separators=(",", ":")),
        headers=headers,
    )


# The entry point ------------------------------------------------------------------------------


def _error_reply(status: int, slug: str, detail: str, event: dict[str, Any], correlation_id: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": PROBLEM_JSON},
        "body": problem_json(status, slug, detail=detail, instance=event.get("path"), correlation_id=correlation_id),
        "isBase64Encoded": False,
    }


LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]
_DATABASE: tuple[Need, ...] = ("database",)


def lambda_entry(
    app: APIGatewayRestResolver,
    *,
    service: str,
    idempotent: Collection[str] = (),
    needs: Collection[Need] = _DATABASE,
) -> LambdaHandler:
    """The Lambda handler for ``app``: Logger (correlation id), Tracer, Metrics, idempotency on
    the ``"METHOD /resource"`` routes named in ``idempotent``, the environment validated on the
    container's first invocation (``needs``; the idempotency table too when there are idempotent
    routes), and a last guard that turns any fault into a 500 problem without detail. Every reply
    carries ``X-Correlation-Id``."""
    from aws_lambda_powertools import Logger, Metrics, Tracer

    from rampart.api.idempotency import Idempotency
    from rampart.core.settings import validated

    required: set[Need] = set(needs) | ({"idempotency_table"} if idempotent else set())
    cold = [True]

    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", service)
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Rampart")
    logger = Logger(service=service)
    tracer = Tracer(service=service)
    metrics = Metrics(namespace="Rampart", service=service)
    idempotency = Idempotency(frozenset(idempotent)) if idempotent else None

    def resolve(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return app.resolve(event, context)

    warnings.filterwarnings("ignore", message="No application metrics to publish")

    @metrics.log_metrics(capture_cold_start_metric=True)
    @tracer.capture_lambda_handler(capture_response=False)
    @logger.inject_lambda_context(log_event=False, clear_state=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        correlation_id = correlation_id_of(event)
        logger.set_correlation_id(correlation_id)
        app.append_context(correlation_id=correlation_id)
        try:
            if cold[0]:
                validated(required)  # raises ConfigurationError, logged below; retried next call
                cold[0] = False
            refused = _body_problem(event)
            if refused is not None:
                status, slug, detail = refused
                response = _error_reply(status, slug, detail, event, correlation_id)
            elif idempotency is not None and idempotency.applies(event):
                response = idempotency.run(event, context, resolve, correlation_id=correlation_id)
            else:
                response = resolve(event, context)
        except Exception:
            logger.exception("unhandled fault")
            response = {
                "statusCode": 500,
                "headers": {"Content-Type": PROBLEM_JSON},
                "body": problem_json(
                    500,
                    "internal-error",
                    detail="an internal error occurred; it was logged",
                    instance=event.get("path"),
                    correlation_id=correlation_id,
                ),
                "isBase64Encoded": False,
            }
        headers = response.setdefault("headers", {}) or {}
        headers["X-Correlation-Id"] = correlation_id
        response["headers"] = headers
        return response

    handler.idempotent_routes = frozenset(idempotent)  # what the manifest's idempotent routes are checked against
    return cast(LambdaHandler, handler)


__all__ = [
    "Forbidden",
    "NotFound",
    "Principal",
    "Unauthorized",
    "create_app",
    "id_number",
    "json_response",
    "lambda_entry",
    "parse_id",
    "principal",
    "require_role",
]
