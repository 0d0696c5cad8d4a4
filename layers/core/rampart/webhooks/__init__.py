"""Webhooks in: providers' signed deliveries verified, deduplicated, recorded in an inbox and
queued; queued events applied once (by an applier the wiring supplies: the rail state for PIX)."""

from rampart.webhooks.errors import InvalidSignature, MalformedDelivery, QueueUnavailable, UnknownProvider
from rampart.webhooks.models import Applied, InboxEvent, Receipt, Recorded
from rampart.webhooks.providers import PROVIDERS, Provider
from rampart.webhooks.service import WebhookService

__all__ = [
    "PROVIDERS",
    "Applied",
    "InboxEvent",
    "InvalidSignature",
    "MalformedDelivery",
    "Provider",
    "QueueUnavailable",
    "Receipt",
    "Recorded",
    "UnknownProvider",
    "WebhookService",
]
