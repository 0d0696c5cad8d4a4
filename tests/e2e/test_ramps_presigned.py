"""Pre-signed transactions bound to their blueprints field by field (API.md "Ramps"): every field of
the EVM closed list tampered with answers 422 ``blueprint-mismatch`` naming
``/presigned_txs/{i}/tx_data/{name}``; an item that matches no blueprint names ``/presigned_txs/{i}``;
bytes that are no signed transaction name ``/presigned_txs/{i}/tx_data``; every difference of a
request is listed, and a refused request stores nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount

from tests.e2e.ramps import Ramps, Registered, field_names, fresh_key, item, problem, sign, sign_all

pytestmark = pytest.mark.xdist_group("ramps")

# A signer whose key is not the ramp's (the same for the whole module: any key but the ramp's will do).
STRANGER = fresh_key()

Tamper = Callable[[dict[str, Any]], tuple[dict[str, Any], LocalAccount | None]]


def _changed(name: str, value: Callable[[Any], Any]) -> Tamper:
    """The blueprint with ``name`` changed, signed by the right key."""
    return lambda tx: ({**tx, name: value(tx[name])}, None)


def _legacy(tx: dict[str, Any]) -> dict[str, Any]:
    """The same call as a type-0 transaction (a gas price instead of the EIP-1559 caps)."""
    return {k: tx[k] for k in ("to", "data", "value", "gas", "nonce", "chainId")} | {"gasPrice": tx["maxFeePerGas"]}


# API.md's closed list for EVM, each tampered the way a confused or hostile client would.
TAMPERED: dict[str, tuple[str, Tamper]] = {
    "signer": ("signer", lambda tx: (tx, STRANGER)),
    "chainId": ("chainId", _changed("chainId", lambda v: v + 1)),
    "nonce": ("nonce", _changed("nonce", lambda v: v + 1)),
    "to": ("to", _changed("to", lambda v: STRANGER.address)),
    "data": ("data", _changed("data", lambda v: v[:-2] + ("00" if v[-2:] != "00" else "01"))),
    "value": ("value", _changed("value", lambda v: v + 1)),
    "gas": ("gas", _changed("gas", lambda v: v + 1)),
    "maxFeePerGas": ("maxFeePerGas", _changed("maxFeePerGas", lambda v: v + 1)),
    "maxPriorityFeePerGas": ("maxPriorityFeePerGas", _changed("maxPriorityFeePerGas", lambda v: v + 1)),
    "type-0": ("type", lambda tx: (_legacy(tx), None)),
    "type-1": ("type", lambda tx: (_legacy(tx) | {"type": 1, "accessList": []}, None)),
    "type-2-access-list": (
        "type",
        lambda tx: ({**tx, "accessList": [{"address": STRANGER.address, "storageKeys": []}]}, None),
    ),
}


@pytest.fixture(scope="module")
def dave(twin_url: str) -> Ramps:
    return Ramps(twin_url)


@pytest.fixture(scope="module")
def on_ramp(dave: Ramps) -> Registered:
    """A registered on-ramp no test of this module ever submits a valid request for."""
    return dave.register("on")


@pytest.fixture(scope="module")
def off_ramp(dave: Ramps) -> Registered:
    return dave.register("off")


def _tampered(registered: Registered, index: int, case: str) -> dict[str, Any]:
    tx = registered.ramp["unsigned_txs"][index]
    _, tamper = TAMPERED[case]
    tx_data, key = tamper(dict(tx["tx_data"]))
    by_address = registered.keys.by_address()
    return item(tx, sign(tx_data, key or by_address[tx["signer"].lower()]))


def _signed_count(dave: Ramps, registered: Registered) -> int:
    return int(dave.get(registered.id)["signed"])


@pytest.mark.parametrize("case", list(TAMPERED))
def test_every_field_of_the_closed_list(dave: Ramps, on_ramp: Registered, case: str) -> None:
    """A correct item first, the tampered one second: the pointer names index 1 and the field;
    the correct item is not stored either."""
    valid = sign_all(on_ramp.ramp, on_ramp.keys, on_ramp.ramp["unsigned_txs"][:1])
    reply = dave.submit(on_ramp.id, [*valid, _tampered(on_ramp, 1, case)])
    problem(reply, 422, "blueprint-mismatch", f"/presigned_txs/1/tx_data/{TAMPERED[case][0]}")
    assert _signed_count(dave, on_ramp) == 0


@pytest.mark.parametrize("case", ["signer", "nonce", "value", "data"])
def test_the_users_transfer_is_bound_too(dave: Ramps, off_ramp: Registered, case: str) -> None:
    receive = next(i for i, tx in enumerate(off_ramp.ramp["unsigned_txs"]) if tx["phase"] == "receive")
    problem(
        dave.submit(off_ramp.id, [_tampered(off_ramp, receive, case)]),
        422,
        "blueprint-mismatch",
        f"/presigned_txs/0/tx_data/{case}",
    )
    assert _signed_count(dave, off_ramp) == 0


def test_every_difference_is_listed_in_one_reply(dave: Ramps, on_ramp: Registered) -> None:
    cases = list(TAMPERED)
    count = len(on_ramp.ramp["unsigned_txs"])
    items = [_tampered(on_ramp, i % count, case) for i, case in enumerate(cases)]
    reply = dave.submit(on_ramp.id, items)
    problem(
        reply,
        422,
        "blueprint-mismatch",
        *(f"/presigned_txs/{i}/tx_data/{TAMPERED[case][0]}" for i, case in enumerate(cases)),
    )
    assert _signed_count(dave, on_ramp) == 0


def test_items_that_match_no_blueprint(dave: Ramps, on_ramp: Registered) -> None:
    tx = on_ramp.ramp["unsigned_txs"][0]
    good = sign(tx["tx_data"], on_ramp.keys.ephemeral)
    unmatched = [
        {**item(tx, good), "phase": "mint"},  # a phase with no blueprint of this signer
        {**item(tx, good), "phase": "nonsense"},
        {**item(tx, good), "nonce": 99},
        {**item(tx, good), "phase": "deliver", "nonce": 1},  # deliver is nonce 5: both must match
        {**item(tx, sign(tx["tx_data"], STRANGER)), "signer": STRANGER.address},  # not a registered signer
    ]
    reply = dave.submit(on_ramp.id, [item(tx, good), *unmatched])
    problem(reply, 422, "blueprint-mismatch", *(f"/presigned_txs/{i}" for i in range(1, len(unmatched) + 1)))
    assert _signed_count(dave, on_ramp) == 0


@pytest.mark.parametrize(
    "raw",
    [
        "0xzz",
        "0xdeadbeef",
        "deadbeef",  # no 0x
        "0x",
        "not a transaction",
        {"payload": "0x00", "signature": "0x00"},  # another chain's shape
    ],
    ids=["bad-hex", "short", "no-prefix", "empty", "text", "object"],
)
def test_garbage_is_no_signed_transaction(dave: Ramps, on_ramp: Registered, raw: Any) -> None:
    tx = on_ramp.ramp["unsigned_txs"][0]
    valid = item(tx, sign(tx["tx_data"], on_ramp.keys.ephemeral))
    reply = dave.submit(on_ramp.id, [valid, item(tx, raw)])
    problem(reply, 422, "blueprint-mismatch", "/presigned_txs/1/tx_data")
    assert _signed_count(dave, on_ramp) == 0


def test_truncated_signed_transaction(dave: Ramps, on_ramp: Registered) -> None:
    tx = on_ramp.ramp["unsigned_txs"][2]
    raw = sign(tx["tx_data"], on_ramp.keys.ephemeral)
    problem(dave.submit(on_ramp.id, [item(tx, raw[:-4])]), 422, "blueprint-mismatch", "/presigned_txs/0/tx_data")
    assert _signed_count(dave, on_ramp) == 0


def test_signer_matches_case_insensitively_and_items_replace(dave: Ramps) -> None:
    registered = dave.register("on")
    txs = registered.ramp["unsigned_txs"]
    items = sign_all(registered.ramp, registered.keys)
    lowered = {**items[0], "signer": items[0]["signer"].lower()}
    reply = dave.submit(registered.id, [lowered, items[1]])
    assert reply.status == 200, reply
    assert reply.body["signed"] == 2
    # The same key again, then a refusal: neither changes the count.
    again = dave.submit(registered.id, [items[0]])
    assert again.status == 200, again
    assert again.body["signed"] == 2
    refused = dave.submit(registered.id, [items[2], _tampered(registered, 3, "gas")])
    assert field_names(refused) == ["/presigned_txs/1/tx_data/gas"]
    assert _signed_count(dave, registered) == 2
    assert len(txs) == 6
