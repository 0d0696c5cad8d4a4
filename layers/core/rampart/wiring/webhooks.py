"""Per-container wiring of the webhook path.

Settings (:mod:`rampart.core.settings`, validated at cold start from the manifest's ``uses``):
- ``provider_events_queue_url``: the queue recorded events are sent to (webhook and requeue);
- each provider's secret ARN (``pix_webhook_secret_arn``), read from Secrets Manager through the
  container's cache (5 minutes: a rotated secret is picked up within that), parsed once per value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rampart.core.settings import ConfigurationError, settings
from rampart.rails import RailService, parse_event
from rampart.webhooks import Applied, InboxEvent, Provider, WebhookService
from rampart.webhooks.ports import Verifier
from rampart.wiring import forget, per_database

if TYPE_CHECKING:
    from rampart.adapters.postgres.rail_store import PostgresRailReader

_verifiers: dict[str, tuple[str, Verifier]] = {}


def verifier(provider: Provider) -> Verifier:
    """The provider's verifier, on its current secret value."""
    from rampart.adapters.aws.secrets import get_secret
    from rampart.adapters.webhooks.standard import StandardWebhooksVerifier, WebhookSecretError

    arn = getattr(settings(), provider.setting, None)
    if not arn:
        raise ConfigurationError(f"{provider.name}: no ARN for its webhook secret (setting {provider.setting})")
    value = get_secret(arn)
    cached = _verifiers.get(provider.name)
    if cached is not None and cached[0] == value:
        return cached[1]
    try:
        built = StandardWebhooksVerifier.from_secret(value)
    except WebhookSecretError as exc:
        raise ConfigurationError(f"{provider.name}: its webhook secret is unusable: {exc}") from None
    _verifiers[provider.name] = (value, built)
    return built


def _queue() -> Any:
    from rampart.adapters.webhooks.queue import SqsEventQueue

    url = settings().provider_events_queue_url
    if not url:
        raise ConfigurationError("set RAMPART_PROVIDER_EVENTS_QUEUE_URL: recorded events are queued there")
    return SqsEventQueue(url)


class _DeferredQueue:
    """The queue, built on first send (the consumer never sends)."""

    def __init__(self) -> None:
        self._built: Any = None

    def send(self, message: dict[str, Any]) -> None:
        if self._built is None:
            self._built = _queue()
        self._built.send(message)


def service() -> WebhookService:
    """The container's webhook service, on the process-wide database (rebuilt once that was reset)."""
    from rampart.adapters.postgres.webhook_store import PostgresWebhookStore

    return per_database(
        "webhooks", lambda database: WebhookService(PostgresWebhookStore(database), _DeferredQueue(), verifier)
    )


def apply_to_rails(
    event: InboxEvent, transaction: Any, paid: list[str] | None = None, refunded: list[str] | None = None
) -> str:
    """The applier of rail providers' events: parsed strictly, applied to the rail state on the
    inbox's transaction. The references of payments it records are added to ``paid``, those of
    refunds it records to ``refunded``."""
    from rampart.adapters.postgres.rail_store import PostgresRailState
    from rampart.core import jsonbody
    from rampart.rails.events import ChargePaid, RefundCompleted

    parsed = parse_event(jsonbody.loads(event.body))
    if paid is not None and isinstance(parsed, ChargePaid):
        paid.append(parsed.reference)
    if refunded is not None and isinstance(parsed, RefundCompleted):
        refunded.append(parsed.reference)
    return RailService(PostgresRailState(transaction)).apply(event.provider, parsed)


def apply_message(body: Any) -> Applied:
    """Apply one queued event; once it committed, a payment it recorded completes the payment
    wait of its ramp (the ramp's execution looks for it itself when its wait starts later), and a
    refund it recorded completes the ramp's refund."""
    from rampart.wiring import ramps

    paid: list[str] = []
    refunded: list[str] = []
    applied = service().apply_message(
        body, lambda event, transaction: apply_to_rails(event, transaction, paid, refunded)
    )
    for reference in paid:
        ramps.resume_payment_wait(reference)
    for reference in refunded:
        refund_completed(reference)
    return applied


def refund_completed(reference: str) -> bool:
    """After the rail reported a refund for ``reference`` (a ramp id): the ramp's refund shown
    ``pending`` becomes ``completed``. False when there is no such ramp or nothing to change."""
    from rampart.adapters.postgres.db import get_database
    from rampart.adapters.postgres.ramp_store import PostgresRampStore
    from rampart.ramps.execution import refund_completed as completed

    store = PostgresRampStore(get_database())
    ramp = store.ramp(reference)
    shown = completed(ramp) if ramp is not None else None
    if ramp is None or shown is None:
        return False
    store.set_refund(ramp.id, shown)
    return True


def rails() -> PostgresRailReader:
    from rampart.adapters.postgres.db import get_database
    from rampart.adapters.postgres.rail_store import PostgresRailReader

    return PostgresRailReader(get_database())


def reset() -> None:
    """Forget every singleton (tests, twin restarts)."""
    forget("webhooks")
    _verifiers.clear()
