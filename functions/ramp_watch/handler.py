"""Schedule: no running ramp is lost or silent — those whose execution is gone, ended or silent
are paused (the silent one's execution stopped first) — and every mirrored account is reconciled
with its chain. Metrics (alarms in infra/stacks/observability.py): ``RampsPaused`` (paused by this
run), ``PausedRamps`` (every paused ramp: an operator has work), ``RampWatchStopFailed`` (a silent
execution that could not be stopped) and ``ReconciliationDifferences``."""

from __future__ import annotations

from typing import Any

from rampart.core.entry import count, scheduled_entry
from rampart.wiring import ramps as wiring


@scheduled_entry("ramp_watch")
def handler(event: dict[str, Any]) -> dict[str, Any]:
    found = wiring.watch()
    count("RampsPaused", len(found["paused"]))
    count("PausedRamps", found["paused_total"])
    count("RampWatchStopFailed", len(found["stop_failed"]))
    if found["differences"] is not None:
        count("ReconciliationDifferences", found["differences"])
    return found
