"""A ramp's phase, as a Step Functions task. Ramps II: the execution's first phase waits on a
task token, which the ramp keeps (``{ramp_id, phase, task_token}`` in, nothing out); Ramps III
gives each phase its work."""

from __future__ import annotations

from typing import Any

from rampart.core.entry import worker_entry
from rampart.core.errors import Permanent
from rampart.wiring import ramps as wiring


@worker_entry("ramp_worker")
def handler(payload: dict[str, Any]) -> dict[str, Any]:
    ramp_id, phase, token = payload.get("ramp_id"), payload.get("phase"), payload.get("task_token")
    if not isinstance(ramp_id, str) or not isinstance(phase, str):
        raise Permanent("a ramp task needs ramp_id and phase")
    if not isinstance(token, str):
        raise Permanent(f"phase {phase} of ramp {ramp_id}: no task token to wait on")
    ramp = wiring.service().park(ramp_id, phase, token)
    return {"ramp_id": ramp.id, "phase": phase, "waiting": True}
