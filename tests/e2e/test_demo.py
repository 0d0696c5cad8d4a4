"""``make demo``'s code against the test twin: both corridors complete and reconcile, and what it
prints walks through every phase of each corridor."""

from __future__ import annotations

import re

import pytest

from infra.local.demo import run_demo

pytestmark = [pytest.mark.xdist_group("ramps"), pytest.mark.slow]


def test_the_demo_completes_both_corridors(twin_url: str) -> None:
    lines: list[str] = []
    assert run_demo(twin_url, lines.append), "\n".join(lines)
    text = "\n".join(lines)
    shown = re.findall(r"\] \d+/\d+ (\w+)$", text, flags=re.MULTILINE)  # the progress lines' phases
    on = ["initial", "payment", "fund", "approve", "mint", "swap", "fees", "deliver", "sweep", "complete"]
    off = ["initial", "fund", "approve", "receive", "fees", "swap", "handoff", "payout", "sweep", "complete"]
    assert shown == on + off
    assert "completed: the wallet received" in text
    assert "completed: PIX paid out" in text
    assert "0 differences" in text
