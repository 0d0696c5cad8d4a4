"""RFC 9457 problem+json replies, exactly the shape and slugs of API.md."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

PROBLEM_JSON = "application/problem+json"

TITLES: dict[str, str] = {
    "malformed-request": "Malformed request",
    "validation-error": "Validation failed",
    "unauthorized": "Unauthorized",
    "forbidden": "Forbidden",
    "not-found": "Not found",
    "unsupported-media-type": "Unsupported media type",
    "payload-too-large": "Payload too large",
    "rate-limited": "Too many requests",
    "idempotency-key-required": "Idempotency-Key header required",
    "idempotency-key-reused": "Idempotency-Key reused with another body",
    "idempotency-in-progress": "A request with this Idempotency-Key is in progress",
    "internal-error": "Internal error",
}


def problem_body(
    status: int,
    slug: str,
    *,
    detail: str | None = None,
    title: str | None = None,
    instance: str | None = None,
    correlation_id: str | None = None,
    errors: Iterable[Mapping[str, str]] = (),
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"/problems/{slug}",
        "title": title or TITLES.get(slug, slug.replace("-", " ").capitalize()),
        "status": status,
        "detail": detail or title or TITLES.get(slug, slug),
        "instance": instance,
        "correlation_id": correlation_id,
    }
    listed = [dict(e) for e in errors]
    if listed:
        body["errors"] = listed
    return body


def problem_json(status: int, slug: str, **kwargs: Any) -> str:
    return json.dumps(problem_body(status, slug, **kwargs), separators=(",", ":"))
