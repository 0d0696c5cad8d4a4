"""HTTP idempotency for money-moving POSTs, on the Powertools idempotency utility and its
DynamoDB persistence layer (API.md, "Idempotency"):

- key = (principal, method, path, Idempotency-Key); missing header → 400;
- same key + same body → the original status and body with ``Idempotent-Replayed: true``;
- same key + other body → 422; while the first is running → 409 with ``Retry-After``;
- records expire after 24 h (TTL attribute ``expiration``); 4xx outcomes are stored, 5xx are not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, cast

from rampart.api.problems import PROBLEM_JSON, problem_json

EXPIRES_AFTER_SECONDS = 24 * 3600
RETRY_AFTER_SECONDS = 1
MAX_KEY_LENGTH = 255

Resolve = Callable[[dict[str, Any], Any], dict[str, Any]]


class _ServerFault(Exception):
    """A 5xx reply: raised through Powertools so that it deletes the record instead of storing it."""

    def __init__(self, response: dict[str, Any]) -> None:
        super().__init__("server fault")
        self.response = response


def idempotency_key(event: dict[str, Any]) -> str | None:
    for name, value in (event.get("headers") or {}).items():
        if name.lower() == "idempotency-key" and isinstance(value, str):
            return value
    return None


def derived_reference(principal_id: str, key: str) -> str:
    """The ledger reference of a transfer sent without one: derived from (principal, key), so a
    retry cannot move money twice even after the idempotency record is gone."""
    digest = hashlib.sha256(f"{principal_id}\x00{key}".encode()).hexdigest()[:40]
    return f"idem-{digest}"


def _reply(
    status: int, slug: str, event: dict[str, Any], correlation_id: str, detail: str, **extra: str
) -> dict[str, Any]:
    headers = {"Content-Type": PROBLEM_JSON, **extra}
    field = "header:Idempotency-Key"
    return {
        "statusCode": status,
        "headers": headers,
        "body": problem_json(
            status,
            slug,
            detail=detail,
            instance=event.get("path"),
            correlation_id=correlation_id,
            errors=[{"field": field, "message": detail}],
        ),
        "isBase64Encoded": False,
    }


def _canonical_body(body: str | None) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body


class Idempotency:
    def __init__(self, routes: frozenset[str]) -> None:
        self.routes = routes
        self._process: Callable[..., dict[str, Any]] | None = None
        self._config: Any = None

    def applies(self, event: dict[str, Any]) -> bool:
        return f"{event.get('httpMethod')} {event.get('resource')}" in self.routes

    def _build(self) -> Callable[..., dict[str, Any]]:
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )

        def replayed(response: Any, record: Any) -> Any:
            if isinstance(response, dict):
                response.setdefault("headers", {})["Idempotent-Replayed"] = "true"
            return response

        from rampart.core.settings import ConfigurationError, settings

        table = settings().idempotency_table
        if not table:
            raise ConfigurationError("RAMPART_IDEMPOTENCY_TABLE is not set: no idempotency store")
        persistence = DynamoDBPersistenceLayer(table_name=table)
        self._config = IdempotencyConfig(
            event_key_jmespath="[principal, method, path, key]",
            payload_validation_jmespath="body",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=EXPIRES_AFTER_SECONDS,
            response_hook=cast(Any, replayed),
        )

        @idempotent_function(data_keyword_argument="request", config=self._config, persistence_store=persistence)
        def process(
            *, request: dict[str, Any], event: dict[str, Any], context: Any, resolve: Resolve
        ) -> dict[str, Any]:
            response = resolve(event, context)
            if int(response.get("statusCode", 500)) >= 500:
                raise _ServerFault(response)
            return response

        return cast(Callable[..., dict[str, Any]], process)

    def run(self, event: dict[str, Any], context: Any, resolve: Resolve, *, correlation_id: str) -> dict[str, Any]:
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyValidationError,
        )

        authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
        principal_id = authorizer.get("principalId")
        if not principal_id:
            return resolve(event, context)  # the function answers 401
        key = idempotency_key(event)
        if not key:
            return _reply(
                400,
                "idempotency-key-required",
                event,
                correlation_id,
                "this request moves money: send an Idempotency-Key header",
            )
        if len(key) > MAX_KEY_LENGTH or not (key.isascii() and key.isprintable()):
            return _reply(
                422,
                "validation-error",
                event,
                correlation_id,
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
            )
        if self._process is None:
            self._process = self._build()
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            self._config.register_lambda_context(context)
        request = {
            "principal": str(principal_id),
            "method": event.get("httpMethod"),
            "path": event.get("path"),
            "key": key,
            "body": _canonical_body(event.get("body")),
        }
        try:
            return self._process(request=request, event=event, context=context, resolve=resolve)
        except IdempotencyValidationError:
            return _reply(
                422,
                "idempotency-key-reused",
                event,
                correlation_id,
                "this Idempotency-Key was used with a different body",
            )
        except IdempotencyAlreadyInProgressError:
            return _reply(
                409,
                "idempotency-in-progress",
                event,
                correlation_id,
                "a request with this Idempotency-Key is still running; retry shortly",
                **{"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        except _ServerFault as fault:
            return fault.response
