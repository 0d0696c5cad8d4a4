"""Schedule: no running ramp is lost or silent — a payment whose webhook never came is looked up
at the rail and completes its wait; ramps whose execution is gone, ended or silent are paused (the
silent one's execution stopped first) — and every mirrored account is reconciled with its chain.
Metrics (alarms from the manifest's ``Function.alarms``): ``PaymentsFound``, ``RampsPaused`` (paused by this
run), ``PausedRamps`` (every paused ramp: an operator has work), ``RampWatchStopFailed`` (a silent
execution that could not be stopped) and ``ReconciliationDifferences``."""

from __future__ import annotations

from typing import Any

from rampart.core.entry import count, scheduled_entry
from rampart.wiring import ramps as wiring


@scheduled_entry("ramp_watch")
def handler(event: dict[str, Any]) -> dict[str, Any]:
    found = wiring.watch()
    count("PaymentsFound", len(found["payments_found"]))
    count("RampsPaused", len(found["paused"]))
    count("PausedRamps", found["paused_total"])
    count("RampWatchStopFailed", len(found["stop_failed"]))
    if found["differences"] is not None:
        count("ReconciliationDifferences", found["differences"])
    return found
