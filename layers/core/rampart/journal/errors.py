"""The journal's refusals, classified for the worker's retry policy (rampart.core.errors): a
conflicting request is a bug (Permanent), a live claim of another worker is worth waiting for
(Busy: retried for as long as a lease), an outcome nobody knows pauses the ramp for reconciliation."""

from __future__ import annotations

from rampart.core.errors import Busy, Permanent, ReconciliationRequired


class JournalConflict(Permanent):
    """The key was claimed for another request (its hash differs): the same step must always ask
    for the same thing."""


class OperationBusy(Busy):
    """Another worker holds a live claim on the key (its lease has not run out): retry later."""


class OutcomeUnknown(ReconciliationRequired):
    """The operation was marked ``unknown``: an operator reconciles it before anything goes on."""
