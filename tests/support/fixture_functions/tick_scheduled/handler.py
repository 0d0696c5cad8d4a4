"""Fixture schedule (never deployed): counts its ticks; an event with ``"fail": true`` fails
(raised, so the asynchronous invocation's DLQ gets the event)."""

from __future__ import annotations

from typing import Any

from rampart.core.entry import scheduled_entry
from rampart.core.errors import Permanent

TICKS: list[str] = []


@scheduled_entry("tick_scheduled")
def handler(event: dict[str, Any]) -> dict[str, int]:
    if event.get("fail") is True:
        raise Permanent("asked to fail")
    TICKS.append(str(event.get("id", "")))
    return {"ticks": len(TICKS)}
