"""The rails (PIX now, SEPA later) as the backend knows them: the events providers report by
webhook (:mod:`rampart.rails.events`) and the state they build (payments by charge reference,
mints and payouts by idempotency key)."""

from rampart.rails.errors import RailConflict
from rampart.rails.events import MalformedEvent, RailEvent, UnknownEventType, parse_event
from rampart.rails.models import Operation, Payment
from rampart.rails.service import RailService

__all__ = [
    "MalformedEvent",
    "Operation",
    "Payment",
    "RailConflict",
    "RailEvent",
    "RailService",
    "UnknownEventType",
    "parse_event",
]
