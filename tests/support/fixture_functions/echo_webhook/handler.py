"""Fixture webhook (never deployed): answers 200 with the JSON body it got, its path and method.
A body that is not a JSON object is refused as a business rule (422)."""

from __future__ import annotations

from typing import Any

from rampart.api.webhook import WebhookRequest, webhook_entry
from rampart.core.errors import ValidationFailed


@webhook_entry("echo_webhook")
def handler(request: WebhookRequest) -> dict[str, Any]:
    if not isinstance(request.json, dict):
        raise ValidationFailed("send a JSON object", field="/")
    return {"echo": request.json, "path": request.path, "method": request.method}
