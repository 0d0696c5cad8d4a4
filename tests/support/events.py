"""API Gateway events for calling handlers in process, shaped as API Gateway (REST, proxy
integration) sends them: a proxy event per request, a REQUEST event per authorizer call."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"
API_ID = "rampart01"
STAGE = "test"


def method_arn(method: str, path: str) -> str:
    return f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/{STAGE}/{method}{path}"


def api_event(
    method: str,
    path: str,
    *,
    resource: str | None = None,
    path_parameters: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: Any = None,
    raw_body: str | None = None,
    query: dict[str, str] | None = None,
    principal: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A REST proxy event. ``body`` is JSON-encoded (with a JSON Content-Type) unless
    ``raw_body`` is given; ``principal`` becomes ``requestContext.authorizer`` (what the
    authorizer's context turns into), e.g. ``{"principalId": "usr_1", "role": "user", "kind": "user"}``."""
    sent = {"Accept": "application/json", **(headers or {})}
    text = raw_body
    if body is not None and raw_body is None:
        text = json.dumps(body)
        sent.setdefault("Content-Type", "application/json")
    if resource is None:
        resource = path
        for name, value in (path_parameters or {}).items():
            resource = resource.replace(value, "{" + name + "}", 1)
    request_context: dict[str, Any] = {
        "accountId": ACCOUNT,
        "apiId": API_ID,
        "stage": STAGE,
        "httpMethod": method,
        "path": f"/{STAGE}{path}",
        "resourcePath": resource,
        "requestId": str(uuid.uuid4()),
        "identity": {"sourceIp": "127.0.0.1", "userAgent": "pytest"},
    }
    if principal is not None:
        request_context["authorizer"] = dict(principal)
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": sent,
        "multiValueHeaders": {k: [v] for k, v in sent.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": request_context,
        "body": text,
        "isBase64Encoded": False,
    }


def authorizer_event(
    headers: dict[str, str] | None = None, *, method: str = "GET", path: str = "/v1/me", resource: str | None = None
) -> dict[str, Any]:
    """A REQUEST authorizer event for a call of ``method path``."""
    return {
        "type": "REQUEST",
        "methodArn": method_arn(method, path),
        "resource": resource or path,
        "path": path,
        "httpMethod": method,
        "headers": dict(headers or {}),
        "queryStringParameters": {},
        "pathParameters": {},
        "stageVariables": {},
        "requestContext": {"accountId": ACCOUNT, "apiId": API_ID, "stage": STAGE, "httpMethod": method},
    }


@dataclass
class LambdaContext:
    function_name: str = "test-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "test"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def problem(self) -> str:
        assert self.headers.get("content-type", "").startswith("application/problem+json"), self.headers
        return str(self.body["type"]).removeprefix("/problems/")

    @property
    def fields(self) -> list[str]:
        return [e["field"] for e in self.body.get("errors", [])]


def reply(response: dict[str, Any]) -> Reply:
    """A handler's proxy response, headers lower-cased and the body parsed when JSON."""
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    for key, values in (response.get("multiValueHeaders") or {}).items():
        headers.setdefault(key.lower(), ",".join(values))
    text = response.get("body") or ""
    body: Any = None
    if text:
        body = json.loads(text) if re.search(r"json", headers.get("content-type", "")) else text
    return Reply(int(response["statusCode"]), headers, body)


def call(handler: Any, event: dict[str, Any], context: Any = None) -> Reply:
    return reply(handler(event, context or LambdaContext()))
