"""The webhook path: a provider's delivery verified, deduplicated, recorded and queued (only then
acknowledged); queued events applied once; what was recorded but not applied queued again.

The order of the checks is the contract (API.md): an unknown provider is refused before any
signature is looked at (404); then the Standard Webhooks headers (401); only a verified body is
parsed. A verified body is recorded as long as it is a JSON object with a ``type``: its data are
parsed when applied, so a malformed event is kept (raw) and reaches the queue's DLQ, alarmed,
rather than being refused to a provider that would retry it forever."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from rampart.core import jsonbody
from rampart.core.errors import Permanent
from rampart.webhooks.errors import MalformedDelivery, QueueUnavailable, UnknownInboxEvent
from rampart.webhooks.models import (
    DEDUP_HORIZON,
    MAX_REQUEUES,
    REQUEUE_BATCH,
    REQUEUE_GRACE,
    STALE_AFTER,
    Applied,
    InboxEvent,
    Receipt,
)
from rampart.webhooks.ports import Applier, EventQueue, InboxStore, Verifier
from rampart.webhooks.providers import PROVIDERS, Provider, provider_from_path

log = logging.getLogger("rampart.webhooks")
MAX_TYPE = 64


def event_type(body: bytes) -> str:
    """The ``type`` of a verified body; :class:`MalformedDelivery` when it has none."""
    try:
        payload = jsonbody.loads(body)
    except jsonbody.MalformedBody as exc:
        raise MalformedDelivery(f"the body is refused: {exc.message}", field="/") from None
    if not isinstance(payload, dict):
        raise MalformedDelivery("the body must be a JSON object", field="/")
    value = payload.get("type")
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_TYPE:
        raise MalformedDelivery(f"type must be a string of 1 to {MAX_TYPE} characters", field="/type")
    return value


class WebhookService:
    def __init__(
        self,
        store: InboxStore,
        queue: EventQueue,
        verifier: Callable[[Provider], Verifier],
        *,
        providers: dict[str, Provider] = PROVIDERS,
        path_prefix: str = "/webhooks/providers",
    ) -> None:
        self.store, self.queue, self.verifier = store, queue, verifier
        self.providers, self.path_prefix = providers, path_prefix

    def receive(self, path: str, headers: Mapping[str, str], body: bytes) -> Receipt:
        """One delivery. Raises UnknownProvider (404), InvalidSignature (401), MalformedDelivery
        (422). A receipt with ``queued=False`` means recorded but not queued: the caller answers
        5xx so the provider retries (the retry is a duplicate that queues it again)."""
        provider = provider_from_path(path, self.path_prefix, self.providers)
        webhook_id = self.verifier(provider).verify(headers, body)
        kind = event_type(body)
        recorded = self.store.record(provider.name, webhook_id, kind, body)
        # Queued by whoever holds the claim: this delivery when new, or a duplicate of one whose
        # queueing failed; any other duplicate was queued (or applied) already.
        queued = self._queue(recorded.event) if recorded.claimed else True
        return Receipt(provider.name, webhook_id, recorded.event.id, duplicate=not recorded.new, queued=queued)

    def _queue(self, event: InboxEvent) -> bool:
        try:
            self.queue.send(event.message())
        except QueueUnavailable:
            log.warning("queueing failed: left for the requeue schedule", extra={"inbox_id": event.id})
            self.store.release(event.id)
            return False
        return True

    def apply_message(self, body: Any, applier: Applier) -> Applied:
        """A queue message (``{"inbox_id": …}``) applied once; Permanent for one that names nothing."""
        inbox_id = body.get("inbox_id") if isinstance(body, dict) else None
        if type(inbox_id) is not int or inbox_id < 1:
            raise Permanent('a message is {"inbox_id": <positive integer>, …}')
        try:
            return self.store.apply(inbox_id, applier)
        except UnknownInboxEvent as exc:
            raise Permanent(exc.detail) from None

    def requeue(self) -> int:
        """Queue again every event recorded but not applied that is due (see the models); how many."""
        due = self.store.claim_due(
            grace=REQUEUE_GRACE, stale=STALE_AFTER, max_requeues=MAX_REQUEUES, limit=REQUEUE_BATCH
        )
        return sum(1 for event in due if self._queue(event))

    def prune(self) -> int:
        return self.store.prune(DEDUP_HORIZON)
