"""API Gateway REQUEST authorizer: ``Authorization: Bearer <jwt>`` (users) or ``X-Api-Key``
(partners) → an IAM policy and the principal's context (see :mod:`rampart.api.authorizer`).
Bearer tokens are checked without a database round trip; API keys cost one lookup by digest."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from rampart.api.authorizer import Unauthorized, credentials, policy
from rampart.auth import InvalidToken
from rampart.wiring import auth as auth_wiring

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "authorizer")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Rampart")
logger = Logger(service="authorizer")
tracer = Tracer(service="authorizer")
metrics = Metrics(namespace="Rampart", service="authorizer")


@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    kind, secret = credentials(event)
    service = auth_wiring.authenticator()
    try:
        identity = service.authenticate_bearer(secret) if kind == "bearer" else service.authenticate_api_key(secret)
    except InvalidToken as exc:
        logger.info("credentials refused", extra={"credential": kind, "reason": str(exc)})
        metrics.add_metric(name="AuthorizerRefused", unit=MetricUnit.Count, value=1)
        raise Unauthorized() from None
    logger.append_keys(principal_id=identity.id, role=identity.role)
    return policy(identity, str(event.get("methodArn", "")))
