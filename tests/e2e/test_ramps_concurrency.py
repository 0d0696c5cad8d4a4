"""Eight ramps at once, both corridors, through the real state machines (issue 11): every one
completes, each destination gets exactly its quoted output, and the ledger mirror agrees with the
chain afterwards — the platform's own transactions (gas for every ephemeral from one gas funder,
sweeps by one operator) took their nonces one at a time."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.e2e.api import admin
from tests.e2e.ramps import Ramps

pytestmark = [pytest.mark.xdist_group("ramps"), pytest.mark.slow]


def test_eight_ramps_at_once_all_complete_and_reconcile(twin_url: str) -> None:
    kinds = ["on", "off"] * 4
    results: dict[int, Any] = {}
    prepared = [(kind, Ramps(twin_url)) for kind in kinds]  # a user each
    signed = [(kind, ramps, ramps.signed(kind)) for kind, ramps in prepared]
    barrier = threading.Barrier(len(signed))

    def run(index: int, kind: str, ramps: Ramps, registered: Any) -> None:
        try:
            barrier.wait()
            started = ramps.start(registered.id)
            assert started.status == 202, started
            if kind == "on":
                paid = ramps.anonymous.post("/_sim/pix/payments", {"ramp_id": registered.id})
                assert paid.status == 200, paid
            results[index] = ramps.settled(registered.id, timeout=180)
        except BaseException as error:  # reported below, with the others
            results[index] = error

    threads = [
        threading.Thread(target=run, args=(i, kind, ramps, registered))
        for i, (kind, ramps, registered) in enumerate(signed)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    failures = {i: r for i, r in results.items() if isinstance(r, BaseException)}
    assert not failures, failures
    statuses = [(results[i]["status"], results[i]["errors"]) for i in range(len(signed))]
    assert statuses == [("completed", [])] * len(signed)
    for (kind, ramps, registered), shown in zip(signed, (results[i] for i in range(len(signed))), strict=True):
        if kind == "on":
            got = ramps.balances(registered.ramp["destination"]["address"])["balances"]["USDC"]
            assert got == registered.ramp["output_amount"]
        else:
            payouts = ramps.anonymous.get(f"/_sim/pix/payouts?ramp_id={registered.id}").body["items"]
            assert [(p["kind"], p["amount"]) for p in payouts] == [("payout", registered.ramp["output_amount"])]
        assert [(e["status"]) for e in ramps.executions(registered.id)] == ["SUCCEEDED"]
        assert shown["phase"] == "complete"
    report = admin(twin_url).get("/v1/admin/reconciliation")
    assert report.status == 200, report
    assert report.body["differences"] == []
