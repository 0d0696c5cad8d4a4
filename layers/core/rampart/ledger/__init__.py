"""The double-entry ledger: accounts, transfers, holds, batches, entries and their audit chain."""

from rampart.ledger.models import Account, Balance, Entry, Page, Transfer, TransferRequest, VerifyReport
from rampart.ledger.service import Ledger, TransferInput

__all__ = [
    "Account",
    "Balance",
    "Entry",
    "Ledger",
    "Page",
    "Transfer",
    "TransferInput",
    "TransferRequest",
    "VerifyReport",
]
