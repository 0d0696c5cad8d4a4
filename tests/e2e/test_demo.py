"""``make demo``'s code against the test twin: both corridors complete and reconcile, and what it
prints walks through every phase of each corridor."""

from __future__ import annotations

import pytest

from infra.local.demo import run_demo

pytestmark = [pytest.mark.xdist_group("ramps"), pytest.mark.slow]


def test_the_demo_completes_both_corridors(twin_url: str) -> None:
    lines: list[str] = []
    assert run_demo(twin_url, lines.append), "\n".join(lines)
    text = "\n".join(lines)
    for phase in ("payment", "mint", "deliver", "receive", "handoff", "payout", "complete"):
        assert f"] {phase}" in text or f"{phase}\n" in text, phase
    assert "completed: the wallet received" in text
    assert "completed: PIX paid out" in text
    assert "0 differences" in text
