"""Fixture Step Functions task (never deployed): ``{"n": x}`` → ``{"n": 2x}``. ``{"fail": kind}``
raises the typed error of that kind (``Transient``, ``ReconciliationRequired``, ``Permanent``),
which the state machine's Retry/Catch match by name; a missing ``n`` is a business-rule refusal
(mapped to ``Permanent`` by the entry stack)."""

from __future__ import annotations

from typing import Any

from rampart.core.entry import worker_entry
from rampart.core.errors import Permanent, ReconciliationRequired, TaskError, Transient, ValidationFailed

ERRORS: dict[str, type[TaskError]] = {
    "Transient": Transient,
    "ReconciliationRequired": ReconciliationRequired,
    "Permanent": Permanent,
}


@worker_entry("double_worker")
def handler(payload: dict[str, Any]) -> dict[str, Any]:
    failure = payload.get("fail")
    if isinstance(failure, str) and failure in ERRORS:
        raise ERRORS[failure](f"asked to fail with {failure}")
    n = payload.get("n")
    if type(n) is not int:
        raise ValidationFailed("n must be an integer", field="/n")
    return {"n": 2 * n}
