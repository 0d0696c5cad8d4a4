"""A ramp's phase, as a Step Functions task: ``{ramp_id, phase, task_token?, error?, resume_at?}``
in (the payment wait and the pause pass their task token; the ``failed`` task and the pause the
caught error), the phase's work done once through the journal (rampart.ramps.execution)."""

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
    resume_at = payload.get("resume_at")
    return wiring.executor().run(
        ramp_id,
        phase,
        task_token=token if isinstance(token, str) else None,
        error=payload.get("error"),
        resume_at=resume_at if isinstance(resume_at, str) else None,
    )
