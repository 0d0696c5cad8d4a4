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

import json
import logging
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, cast

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from rampart.api.problems import PROBLEM_JSON, problem_json
from rampart.core import jsonbody
from rampart.core.errors import DomainError, Forbidden, NotFound, Unauthorized

MAX_BODY_BYTES = 256 * 1024
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
    from rampart.core.entry import valid_correlation_id

    return valid_correlation_id(_header(event, "X-Correlation-Id")) or str(uuid.uuid4())


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
    """Checks on a request body that come before routing and validation: size, then type, then
    the bounded parse of :mod:`rampart.core.jsonbody` (UTF-8, depth, number literals, strict JSON).
    Every entry stack of a function that takes a JSON body calls this before anything reads it."""
    body = event.get("body")
    if event.get("httpMethod") not in _BODY_METHODS or not body or not isinstance(body, str):
        return None
    if len(body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        return 413, "payload-too-large", "the body is over 256 KB"
    if not _json_content_type(event):
        return 415, "unsupported-media-type", "send the body as application/json (UTF-8), one Content-Type"
    _canonical_content_type(event)
    try:
        jsonbody.parse(body, base64_encoded=bool(event.get("isBase64Encoded")))
    except jsonbody.MalformedBody as exc:
        return 400, "malformed-request", exc.message
    return None


def _canonical_content_type(event: dict[str, Any]) -> None:
    """Media types are case-insensitive (``Application/JSON``); Powertools' validation compares
    them as written, so an accepted one is handed on in its canonical spelling."""
    for key in list(event.get("headers") or {}):
        if key.lower() == "content-type":
            event["headers"][key] = "application/json"
    for key in list(event.get("multiValueHeaders") or {}):
        if key.lower() == "content-type":
            event["multiValueHeaders"][key] = ["application/json"]


def _json_content_type(event: dict[str, Any]) -> bool:
    """One Content-Type (repeats must agree), ``application/json``, and no charset but UTF-8."""
    given = [_header(event, "Content-Type") or ""]
    for key, values in (event.get("multiValueHeaders") or {}).items():
        if key.lower() == "content-type" and isinstance(values, list):
            given += [v for v in values if isinstance(v, str)]
    if len({v.strip().lower() for v in given}) != 1:
        return False
    media, _, params = given[0].partition(";")
    if media.strip().lower() != "application/json":
        return False
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


def _problem(status: int, slug: str, *, headers: dict[str, str] | None = None, **kwargs: Any) -> Response[str]:
    return Response(
        status_code=status, content_type=PROBLEM_JSON, body=problem_json(status, slug, **kwargs), headers=headers
    )


def create_app() -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=jsonbody.loads)

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

    @app.exception_handler(RequestUnsupportedContentType)
    def on_content_type(exc: RequestUnsupportedContentType) -> Response[str]:
        # An empty body under another Content-Type reaches Powertools' own check: a problem too.
        return _problem(415, "unsupported-media-type", detail="send the body as application/json", **context())

    @app.exception_handler(DomainError)
    def on_domain(exc: DomainError) -> Response[str]:
        listed = getattr(exc, "errors", None)  # a refusal naming several fields (rampart.ramps.errors.FieldErrors)
        errors = listed or ([{"field": exc.field, "message": exc.detail}] if exc.field else [])
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
    errors = [{"field": "/", "message": detail}] if slug == "malformed-request" else []
    return {
        "statusCode": status,
        "headers": {"Content-Type": PROBLEM_JSON},
        "body": problem_json(
            status, slug, detail=detail, errors=errors, instance=event.get("path"), correlation_id=correlation_id
        ),
        "isBase64Encoded": False,
    }


LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def lambda_entry(app: APIGatewayRestResolver, *, service: str, idempotent: Collection[str] = ()) -> LambdaHandler:
    """The Lambda handler for ``app``, on the shared entry stack (:class:`rampart.core.entry.Entry`:
    Logger with the request's correlation id, Tracer, Metrics, the settings validated on the
    container's first invocation — every resource the manifest says the function uses, and the
    idempotency table when there are idempotent routes): idempotency on the ``"METHOD /resource"``
    routes named in ``idempotent``, domain errors as problem+json, and a last guard that turns any
    fault into a 500 problem without detail. Every reply carries ``X-Correlation-Id``."""
    from rampart.api.idempotency import Idempotency
    from rampart.core.entry import Entry

    entry = Entry(service, requires={"idempotency_table"} if idempotent else ())
    idempotency = Idempotency(frozenset(idempotent)) if idempotent else None

    def resolve(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return app.resolve(event, context)

    def run(event: dict[str, Any], context: Any, correlation_id: str) -> dict[str, Any]:
        app.append_context(correlation_id=correlation_id)
        try:
            entry.settings()  # raises ConfigurationError on a cold start that lacks something (logged below)
            refused = _body_problem(event)
            if refused is not None:
                status, slug, detail = refused
                response = _error_reply(status, slug, detail, event, correlation_id)
            elif idempotency is not None and idempotency.applies(event):
                response = idempotency.run(event, context, resolve, correlation_id=correlation_id)
            else:
                response = resolve(event, context)
        except Exception:
            entry.logger.exception("unhandled fault")
            response = _error_reply(
                500, "internal-error", "an internal error occurred; it was logged", event, correlation_id
            )
        headers = response.setdefault("headers", {}) or {}
        headers["X-Correlation-Id"] = correlation_id
        response["headers"] = headers
        return response

    handler = entry.wrap(run, lambda event, context: correlation_id_of(event))
    handler.idempotent_routes = frozenset(idempotent)  # type: ignore[attr-defined]  # checked against the manifest
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
