"""Errors of applying a provider's event to the rail state."""

from __future__ import annotations

from rampart.core.errors import DomainError


class RailConflict(DomainError):
    """An event contradicts what an earlier one established (another amount for the same payment,
    a failed mint already reported completed): never applied, parked for an operator."""

    slug = "reference-conflict"
    status = 409
    title = "The event contradicts the rail state"
