"""Schedule: unstarted ramps past their start deadline become ``expired``; unused quotes expired
for a day are deleted."""

from __future__ import annotations

from typing import Any

from rampart.core.entry import scheduled_entry
from rampart.wiring import ramps as wiring


@scheduled_entry("ramp_sweep")
def handler(event: dict[str, Any]) -> dict[str, Any]:
    return wiring.service().expire()
