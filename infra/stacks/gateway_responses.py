"""The answers API Gateway gives by itself (no function ran), rewritten to the problem+json of
API.md. Pure data: the CDK app turns each into a ``GatewayResponse``; the local twin can answer
the same situations from the same table.

API Gateway substitutes ``$context`` variables in these templates (no VTL): ``$context.path`` is
the request path, ``$context.requestId`` the id API Gateway logs and traces under."""

from __future__ import annotations

import json
from dataclasses import dataclass

PROBLEM_CONTENT_TYPE = "application/problem+json"


@dataclass(frozen=True)
class GatewayProblem:
    response_type: str  # aws_apigateway.ResponseType attribute name
    status: int
    slug: str
    title: str
    detail: str
    retry_after_seconds: int | None = None

    def body(self) -> str:
        """The response template: API.md's problem shape with the request's path and id."""
        return json.dumps(
            {
                "type": f"/problems/{self.slug}",
                "title": self.title,
                "status": self.status,
                "detail": self.detail,
                "instance": "$context.path",
                "correlation_id": "$context.requestId",
            },
            separators=(",", ":"),
        )

    def headers(self) -> dict[str, str]:
        """Static response headers (API Gateway wants literal values in single quotes)."""
        headers = {"Content-Type": f"'{PROBLEM_CONTENT_TYPE}'"}
        if self.retry_after_seconds is not None:
            headers["Retry-After"] = f"'{self.retry_after_seconds}'"
        return headers


_UNAUTHORIZED = ("unauthorized", "Unauthorized")
_FORBIDDEN = ("forbidden", "Forbidden")
_NOT_FOUND = ("not-found", "Not found")
_MALFORMED = ("malformed-request", "Malformed request")
_RATE_LIMITED = ("rate-limited", "Too many requests")
_INTERNAL = ("internal-error", "Internal error")

GATEWAY_PROBLEMS: tuple[GatewayProblem, ...] = (
    # Catch-alls first: API Gateway applies a specific type's response over them.
    GatewayProblem("DEFAULT_4_XX", 400, *_MALFORMED, "The request was refused."),
    GatewayProblem("DEFAULT_5_XX", 500, *_INTERNAL, "Something went wrong on our side."),
    # Unknown route or method: API Gateway calls it "missing authentication token".
    GatewayProblem("MISSING_AUTHENTICATION_TOKEN", 404, *_NOT_FOUND, "No such route or method."),
    GatewayProblem("RESOURCE_NOT_FOUND", 404, *_NOT_FOUND, "No such route or method."),
    GatewayProblem("UNAUTHORIZED", 401, *_UNAUTHORIZED, "Missing, expired or invalid credentials."),
    GatewayProblem("EXPIRED_TOKEN", 401, *_UNAUTHORIZED, "Missing, expired or invalid credentials."),
    GatewayProblem("INVALID_SIGNATURE", 401, *_UNAUTHORIZED, "Missing, expired or invalid credentials."),
    GatewayProblem("INVALID_API_KEY", 401, *_UNAUTHORIZED, "Missing, expired or invalid credentials."),
    GatewayProblem("ACCESS_DENIED", 403, *_FORBIDDEN, "You may not do this."),
    GatewayProblem("WAF_FILTERED", 403, *_FORBIDDEN, "The request was blocked."),
    GatewayProblem("THROTTLED", 429, *_RATE_LIMITED, "Too many requests; retry later.", retry_after_seconds=1),
    GatewayProblem(
        "QUOTA_EXCEEDED", 429, *_RATE_LIMITED, "Request quota exceeded; retry later.", retry_after_seconds=60
    ),
    GatewayProblem("REQUEST_TOO_LARGE", 413, "payload-too-large", "Payload too large", "The body is over 256 KB."),
    GatewayProblem(
        "UNSUPPORTED_MEDIA_TYPE",
        415,
        "unsupported-media-type",
        "Unsupported media type",
        "Send the body as application/json.",
    ),
    GatewayProblem("BAD_REQUEST_BODY", 400, *_MALFORMED, "The body could not be read."),
    GatewayProblem("BAD_REQUEST_PARAMETERS", 400, *_MALFORMED, "A request parameter is missing or invalid."),
    GatewayProblem("AUTHORIZER_FAILURE", 500, *_INTERNAL, "Something went wrong on our side."),
    GatewayProblem("AUTHORIZER_CONFIGURATION_ERROR", 500, *_INTERNAL, "Something went wrong on our side."),
    GatewayProblem("API_CONFIGURATION_ERROR", 500, *_INTERNAL, "Something went wrong on our side."),
    GatewayProblem("INTEGRATION_FAILURE", 502, *_INTERNAL, "Something went wrong on our side."),
    GatewayProblem("INTEGRATION_TIMEOUT", 504, *_INTERNAL, "The request took too long; it may or may not have run."),
)
