"""The entry stack of ``webhook`` functions: a provider's callback on a Lambda function URL
(payload format 2.0; the twin serves it on the function's own path, not behind the authorizer).

A handler module is thin::

    @webhook_entry("pix_webhook")
    def handler(request: WebhookRequest) -> dict[str, Any] | WebhookReply | None: ...

On the shared part (:class:`rampart.core.entry.Entry`: Logger with correlation id, Tracer,
Metrics, settings validated once), this entry decodes the body (base64 when the URL says so),
refuses one over 256 KB (413) and, unless ``json_body=False``, parses it with the one bounded
parser (:mod:`rampart.core.jsonbody`; refused → 400 ``malformed-request``). Replies: a mapping is
200 JSON, ``None`` is 204, a :class:`WebhookReply` is as given. Errors are problem+json like the
API's: a ``DomainError`` its own status and slug, a pydantic ``ValidationError`` 422 naming the
fields, any other fault 500 without detail (logged). Signatures are checked by the handler, over
:attr:`WebhookRequest.body` (the raw bytes)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rampart.api.problems import PROBLEM_JSON, problem_json
from rampart.core import jsonbody
from rampart.core.entry import Entry, LambdaHandler
from rampart.core.errors import DomainError

MAX_BODY_BYTES = 256 * 1024


@dataclass(frozen=True)
class WebhookRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased, as function URLs deliver them
    query: dict[str, str]
    body: bytes  # exactly as sent (what a signature covers)
    json: Any = None  # the parsed body (None when empty or when the entry does not parse)
    correlation_id: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class WebhookReply:
    status: int = 200
    body: Any = None  # JSON-encoded unless a str or bytes
    headers: dict[str, str] = field(default_factory=dict)


WebhookFunction = Callable[[WebhookRequest], Any]


class _Refused(Exception):
    def __init__(self, status: int, slug: str, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.status, self.slug, self.detail, self.errors = status, slug, detail, errors or []


def _body(event: dict[str, Any]) -> bytes:
    text = event.get("body") or ""
    if not isinstance(text, str):
        raise _Refused(400, "malformed-request", "the body is not text")
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise _Refused(400, "malformed-request", "the body is not valid base64") from None
    return text.encode("utf-8", "surrogatepass")


def _pointer(loc: Iterable[Any]) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in loc]
    return "/" + "/".join(parts)


def _reply(status: int, body: Any, headers: Mapping[str, str], correlation_id: str) -> dict[str, Any]:
    sent = {str(k): str(v) for k, v in headers.items()}
    if body is None:
        text = ""
    elif isinstance(body, bytes):
        return {
            "statusCode": status,
            "headers": {**sent, "X-Correlation-Id": correlation_id},
            "body": base64.b64encode(body).decode(),
            "isBase64Encoded": True,
        }
    elif isinstance(body, str):
        text = body
    else:
        text = json.dumps(body, separators=(",", ":"))
        sent.setdefault("Content-Type", "application/json")
    return {
        "statusCode": status,
        "headers": {**sent, "X-Correlation-Id": correlation_id},
        "body": text,
        "isBase64Encoded": False,
    }


def _problem(status: int, slug: str, detail: str, path: str, correlation_id: str, **kwargs: Any) -> dict[str, Any]:
    body = problem_json(status, slug, detail=detail, instance=path, correlation_id=correlation_id, **kwargs)
    return _reply(status, body, {"Content-Type": PROBLEM_JSON}, correlation_id)


def webhook_entry(
    service: str, *, requires: Iterable[str] = (), json_body: bool = True
) -> Callable[[WebhookFunction], LambdaHandler]:
    def decorate(function: WebhookFunction) -> LambdaHandler:
        from pydantic import ValidationError

        entry = Entry(service, requires=requires)

        def run(event: Any, context: Any, correlation_id: str) -> dict[str, Any]:
            event = event if isinstance(event, dict) else {}
            http = (event.get("requestContext") or {}).get("http") or {}
            path = str(event.get("rawPath") or http.get("path") or "/")
            try:
                entry.settings()
                body = _body(event)
                if len(body) > MAX_BODY_BYTES:
                    raise _Refused(413, "payload-too-large", "the body is over 256 KB")
                parsed: Any = None
                if json_body and body:
                    try:
                        parsed = jsonbody.loads(body)
                    except jsonbody.MalformedBody as exc:
                        raise _Refused(
                            400, "malformed-request", exc.message, [{"field": "/", "message": exc.message}]
                        ) from None
                request = WebhookRequest(
                    method=str(http.get("method") or "POST").upper(),
                    path=path,
                    headers={str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()},
                    query={str(k): str(v) for k, v in (event.get("queryStringParameters") or {}).items()},
                    body=body,
                    json=parsed,
                    correlation_id=correlation_id,
                    raw=event,
                )
                result = function(request)
                if isinstance(result, WebhookReply):
                    return _reply(result.status, result.body, result.headers, correlation_id)
                if result is None:
                    return _reply(204, None, {}, correlation_id)
                return _reply(200, dict(result), {}, correlation_id)
            except _Refused as exc:
                entry.logger.info("webhook refused", extra={"status": exc.status, "reason": exc.detail})
                return _problem(exc.status, exc.slug, exc.detail, path, correlation_id, errors=exc.errors)
            except DomainError as exc:
                entry.logger.info("webhook refused", extra={"status": exc.status, "reason": exc.detail})
                errors = [{"field": exc.field, "message": exc.detail}] if exc.field else []
                return _problem(exc.status, exc.slug, exc.detail, path, correlation_id, title=exc.title, errors=errors)
            except ValidationError as exc:
                listed = [
                    {"field": _pointer(e.get("loc", ())), "message": str(e.get("msg", "invalid"))} for e in exc.errors()
                ]
                detail = "; ".join(f"{e['field']}: {e['message']}" for e in listed)
                return _problem(422, "validation-error", detail, path, correlation_id, errors=listed)
            except Exception:
                entry.logger.exception("unhandled fault")
                return _problem(
                    500, "internal-error", "an internal error occurred; it was logged", path, correlation_id
                )

        def correlation(event: Any, context: Any) -> str | None:
            if not isinstance(event, dict):
                return None
            for key, value in (event.get("headers") or {}).items():
                if str(key).lower() == "x-correlation-id":
                    return str(value)
            return None

        return entry.wrap(run, correlation)

    return decorate
