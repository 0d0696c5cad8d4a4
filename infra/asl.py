"""Writes ``statemachines/brl_on.asl.json`` and ``brl_off.asl.json`` from the corridors' phases
(``python -m infra.asl``; a test checks the committed files are what this writes). The files are
the flow a reader sees; this only keeps their repeated parts (Retry, Catch, the pause exits) one.

Every phase is a Task on the ``ramp_worker``. ``Transient`` retries with backoff, ``Busy`` (a journal
claim held by another attempt) for longer than a claim's lease — each with the stage's waits
(infra/manifest.py ``RAMP_RETRIES``: the files carry prod's, :func:`staged_text` renders another
stage's for the CDK app and the twin); a final error
(``Permanent``, a refused payment) goes to ``failed``; anything else — a ``ReconciliationRequired``,
a ``Transient`` past its retries — pauses: the phase's exit records where (``$.resume_at``) and
``paused`` waits on a task token until an operator resumes (back into that phase) or fails the
ramp. A recovery execution (no live execution to resume) enters at ``$.resume_at`` through
``entry``. The payment window's timeout expires the on-ramp."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infra.manifest import STATE_MACHINES, RetryPolicy
from rampart.ramps.models import SERVED

ROOT = Path(__file__).resolve().parents[1]
WORKER = "${RampWorker}"
RETRY = [
    {
        # A node or provider that did not answer, a transaction not mined yet; a worker killed at its
        # timeout (its claim is then Busy until the lease ends, below).
        "ErrorEquals": [
            "Transient",
            "Lambda.ServiceException",
            "Lambda.TooManyRequestsException",
            "Sandbox.Timedout",
        ],
    },
    {
        # Another attempt holds the operation's journal claim: retried for longer than a lease, so a
        # hung worker's claim is taken over.
        "ErrorEquals": ["Busy"],
    },
]
COMMITTED_STAGE = "prod"  # the committed files carry prod's retries; the CDK app and the twin stage them


def staged(definition: dict[str, Any], policies: Sequence[RetryPolicy]) -> dict[str, Any]:
    """``definition`` with every retrier whose first error a policy names set to that policy
    (infra/manifest.py ``RAMP_RETRIES``): the same flow, the stage's waits."""
    by_error = {policy.error: policy for policy in policies}
    staged_states: dict[str, Any] = {}
    for name, state in definition["States"].items():
        retries = state.get("Retry")
        if retries:
            state = {**state, "Retry": [_retrier(r, by_error.get(r["ErrorEquals"][0])) for r in retries]}
        staged_states[name] = state
    return {**definition, "States": staged_states}


def staged_text(text: str, policies: Sequence[RetryPolicy]) -> str:
    """A definition's text, staged (unchanged when there is no policy)."""
    if not policies:
        return text
    return json.dumps(staged(json.loads(text), policies), indent=2) + "\n"


def _retrier(retrier: dict[str, Any], policy: RetryPolicy | None) -> dict[str, Any]:
    if policy is None:
        return retrier
    return {
        **retrier,
        "IntervalSeconds": policy.interval_seconds,
        "MaxAttempts": policy.max_attempts,
        "BackoffRate": float(policy.backoff),  # not money: a JSON number of the definition
    }


FINAL = ["Permanent", "PaymentRefused", "States.Timeout"]


def _task(phase: str, payload: dict[str, Any], nxt: str) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": WORKER, "Payload": {"ramp_id.$": "$.ramp_id", "phase": phase, **payload}},
        "ResultPath": "$.last",
        "Retry": RETRY,
        "Catch": [
            {"ErrorEquals": FINAL, "ResultPath": "$.error", "Next": "failed"},
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": f"{phase}--paused"},
        ],
        "Next": nxt,
    }


def machine(phases: tuple[str, ...], comment: str) -> dict[str, Any]:
    steps = [p for p in phases if p != "initial"]
    states: dict[str, Any] = {
        "entry": {
            "Type": "Choice",
            "Comment": "A recovery execution enters where the ramp paused ($.resume_at); a first one at the start.",
            "Choices": [{"Variable": "$.resume_at", "IsPresent": True, "Next": "resume"}],
            "Default": steps[0],
        },
        "resume": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.resume_at", "StringEquals": p, "Next": p} for p in steps],
            "Default": "failed",
        },
    }
    for i, phase in enumerate(steps):
        nxt = steps[i + 1] if i + 1 < len(steps) else "done"
        if phase == "payment":
            task = _task(phase, {"task_token.$": "$$.Task.Token", "execution.$": "$$.Execution.Id"}, nxt)
            task["Resource"] = "arn:aws:states:::lambda:invoke.waitForTaskToken"
            task["TimeoutSecondsPath"] = "$.windows.payment_seconds"
            task["ResultPath"] = "$.payment"
            task["Comment"] = (
                "Waits for the PIX payment: the worker keeps the token and completes the wait itself when the payment "
                "came first; the webhook path completes it otherwise. The payment window's timeout expires the ramp."
            )
            states[phase] = task
        else:
            states[phase] = _task(phase, {}, nxt)
        states[f"{phase}--paused"] = {"Type": "Pass", "Result": phase, "ResultPath": "$.resume_at", "Next": "paused"}
    states["paused"] = {
        "Type": "Task",
        "Comment": "Waits for an operator: POST /v1/admin/ramps/{id}/resume (back into $.resume_at) or /fail.",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {
            "FunctionName": WORKER,
            "Payload": {
                "ramp_id.$": "$.ramp_id",
                "phase": "paused",
                "resume_at.$": "$.resume_at",
                "error.$": "$.error",
                "task_token.$": "$$.Task.Token",
                "execution.$": "$$.Execution.Id",
            },
        },
        "ResultPath": "$.decision",
        "Retry": RETRY,
        "Next": "decide",
    }
    states["decide"] = {
        "Type": "Choice",
        "Choices": [{"Variable": "$.decision.action", "StringEquals": "resume", "Next": "resume"}],
        "Default": "failed",
    }
    states["done"] = {"Type": "Succeed"}
    states["failed"] = {
        "Type": "Task",
        "Comment": "Records the error on the ramp (its message only), gives back what the user paid, ends the ramp.",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {
            "FunctionName": WORKER,
            "Payload": {"ramp_id.$": "$.ramp_id", "phase": "failed", "error.$": "$.error"},
        },
        "ResultPath": "$.last",
        "Retry": RETRY,
        "Next": "Failed",
    }
    states["Failed"] = {"Type": "Fail", "Error": "RampFailed", "Cause": "the ramp failed: its errors are on the ramp"}
    return {"Comment": comment, "StartAt": "entry", "States": states}


COMMENTS = {
    "brl_on": "BRL on-ramp: PIX in, USDC out on base (docs/ramps.md).",
    "brl_off": "BRL off-ramp: USDC in on base, PIX out (docs/ramps.md).",
}


def rendered() -> dict[Path, str]:
    machines = {m.name: m for m in STATE_MACHINES}
    return {
        ROOT / "statemachines" / f"{c.state_machine}.asl.json": json.dumps(
            staged(
                machine(c.phases, COMMENTS[c.state_machine]),
                machines[c.state_machine].retry_policies(COMMITTED_STAGE),
            ),
            indent=2,
        )
        + "\n"
        for c in SERVED
    }


def main() -> int:
    for path, text in rendered().items():
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
