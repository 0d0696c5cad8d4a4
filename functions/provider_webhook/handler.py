"""POST /webhooks/providers/{provider}: a provider's signed event (Standard Webhooks), on a Lambda
function URL. Unknown provider → 404 before anything else; a delivery that does not verify → 401;
a verified one is deduplicated by its webhook id, recorded, queued and only then acknowledged
(200). Recorded but not queued (the queue refused it) → 503 with Retry-After: the provider
retries, and its retry, a duplicate, queues it; the requeue schedule does so anyway."""

from __future__ import annotations

from typing import Any

from rampart.api.problems import PROBLEM_JSON, problem_body
from rampart.api.webhook import WebhookReply, WebhookRequest, webhook_entry
from rampart.core.errors import NotFound
from rampart.wiring import webhooks as wiring

RETRY_AFTER_SECONDS = 30


@webhook_entry("provider_webhook", json_body=False)
def handler(request: WebhookRequest) -> dict[str, Any] | WebhookReply:
    if request.method != "POST":
        raise NotFound(f"{request.method} is not served here: POST /webhooks/providers/{{provider}}")
    receipt = wiring.service().receive(request.path, request.headers, request.body)
    if not receipt.queued:
        body = problem_body(
            503,
            "internal-error",
            detail="the event is recorded but could not be queued yet; retry later",
            instance=request.path,
            correlation_id=request.correlation_id,
        )
        headers = {"Content-Type": PROBLEM_JSON, "Retry-After": str(RETRY_AFTER_SECONDS)}
        return WebhookReply(status=503, body=body, headers=headers)
    return {"received": True, "id": receipt.webhook_id, "duplicate": receipt.duplicate}
