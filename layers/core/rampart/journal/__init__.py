"""The financial-operations journal (ARCHITECTURE.md, "Journal, then act"): every external side
effect of a ramp is claimed here before it happens, and settled here — with its ledger mirror, in
one transaction — once its outcome is known."""

from rampart.journal.errors import JournalConflict, OperationBusy, OutcomeUnknown
from rampart.journal.models import Claim, Operation, OperationStatus, operation_key, request_hash

__all__ = [
    "Claim",
    "JournalConflict",
    "Operation",
    "OperationBusy",
    "OperationStatus",
    "OutcomeUnknown",
    "operation_key",
    "request_hash",
]
