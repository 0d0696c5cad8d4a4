from __future__ import annotations

from collections.abc import Iterator

import pytest

from rampart.ledger import Ledger


@pytest.fixture(autouse=True)
def ledger_invariants(ledger: Ledger) -> Iterator[None]:
    """After every integration test: double entry per currency (posted and pending), every
    balance the fold of its entries and open holds, every hash chain intact, no wallet overdrawn."""
    yield
    report = ledger.verify()
    assert report.ok, report.problems
