"""Scripts fire exactly as told: ``fail_next`` N → exactly N failures then success, typed for the
adapters (``unavailable`` transient, ``reject``/``revert`` final); ``hang_next`` takes effect without
a reply; ``duplicate_webhooks``; ``never_confirm``; validation of the script itself."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import requests

from rampart.adapters.rails.pix import PixRail
from rampart.ramps.rails import MintRequest, RailRejected, RailTimeout, RailUnavailable
from tests.world.conftest import Http, Receiver, new_address, new_ramp_id
from tests.world.test_pix_operations import paid


def rpc(http: Http, method: str, params: list[object] | None = None) -> requests.Response:
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params or []}
    return requests.post(f"{http.url}/rpc/base", json=body, timeout=30)


@pytest.mark.parametrize("count", [1, 3])
def test_fail_next_unavailable_fails_exactly_n_calls_then_succeeds(http: Http, count: int) -> None:
    rail = PixRail(http.url, api_key=http.key)
    http.script("pix", fail_next=count, failure="unavailable")
    for _ in range(count):
        with pytest.raises(RailUnavailable) as failed:
            rail.get_charge("chg_x")
        assert failed.value.transient
        assert failed.value.status == 503
    assert rail.get_charge("chg_x") is None  # the next call goes through (a 404: no such charge)
    assert http.sim("GET", "/providers/pix/script").json()["script"]["fail_next"] == 0


def test_fail_next_reject_is_final_and_records_nothing(http: Http) -> None:
    rail = PixRail(http.url, api_key=http.key)
    ramp, payment = paid(http, "5.00")
    request = MintRequest(key=f"{ramp}:mint", address=new_address(), amount=Decimal("5"), payment_id=payment)
    http.script("pix", fail_next=2, failure="reject")
    for _ in range(2):
        with pytest.raises(RailRejected) as refused:
            rail.request_mint(request)
        assert refused.value.code == "rejected"
        assert not refused.value.transient
    assert rail.get_mint(request.key) is None
    assert rail.request_mint(request).status == "completed"


def test_base_scripts_unavailable_counts_every_call_revert_only_submissions(http: Http) -> None:
    http.script("base", fail_next=2, failure="unavailable")
    assert [rpc(http, "eth_chainId").status_code for _ in range(3)] == [503, 503, 200]
    http.script("base", fail_next=1, failure="revert")
    assert "result" in rpc(http, "eth_chainId").json()  # a read is not a submission: not counted
    reverted = rpc(http, "eth_sendRawTransaction", ["0x00"]).json()
    assert reverted["error"]["code"] == 3
    assert "reverted" in reverted["error"]["message"]
    after = rpc(http, "eth_sendRawTransaction", ["0x00"]).json()
    assert "reverted (scripted)" not in str(after)  # the script is spent: the chain answers itself


def test_hang_next_takes_effect_but_never_replies(http: Http, receiver: Receiver) -> None:
    rail = PixRail(http.url, api_key=http.key, timeout=1.0)
    ramp, payment = paid(http, "7.00")
    address = new_address()
    request = MintRequest(key=f"{ramp}:mint", address=address, amount=Decimal("7"), payment_id=payment)
    http.script("pix", hang_next=1)
    with pytest.raises(RailTimeout) as hung:
        rail.request_mint(request)
    assert hung.value.transient
    found = rail.get_mint(request.key)  # it took effect: the lookup by key finds it
    assert found is not None
    assert found.status == "completed"
    assert rail.request_mint(request) == found  # and a retry does not act again
    assert http.balance(address, "BRLA") == Decimal("7")
    receiver.wait_for("mint.completed", key=request.key)


def test_duplicate_webhooks_sends_each_twice_with_the_same_id(http: Http, receiver: Receiver) -> None:
    http.script("pix", duplicate_webhooks=1)
    ramp = new_ramp_id()
    http.charge(ramp)
    http.sim("POST", "/pix/payments", {"ramp_id": ramp})
    both = receiver.wait_for("charge.paid", count=2, reference=ramp)
    assert both[0] == both[1]
    ids = [d["headers"]["webhook-id"] for d in receiver.deliveries if ramp in d["body"]]
    assert ids == [both[0]["id"], both[0]["id"]]
    other = new_ramp_id()  # the count is spent: the next one is sent once
    http.charge(other)
    http.sim("POST", "/pix/payments", {"ramp_id": other})
    receiver.wait_for("charge.paid", reference=other)
    http.sim("POST", "/pix/payments", {"ramp_id": other, "amount": "1.00"})
    receiver.wait_for("refund.completed", reference=other)
    assert len(receiver.of("charge.paid", reference=other, outcome="accepted")) == 1


def test_never_confirm_leaves_the_mint_pending_with_no_webhook(http: Http, receiver: Receiver) -> None:
    rail = PixRail(http.url, api_key=http.key)
    http.script("pix", never_confirm=True)
    ramp, payment = paid(http, "3.00")
    address = new_address()
    mint = rail.request_mint(MintRequest(key=f"{ramp}:mint", address=address, amount=Decimal("3"), payment_id=payment))
    assert mint.status == "pending"
    assert mint.tx_hash is None
    assert http.balance(address, "BRLA") == Decimal("0")
    later = new_ramp_id()  # a later event arrives: the mint sent none before it
    http.charge(later)
    http.sim("POST", "/pix/payments", {"ramp_id": later})
    receiver.wait_for("charge.paid", reference=later)
    assert receiver.of("mint.completed", key=mint.key) == []
    assert receiver.of("mint.failed", key=mint.key) == []
    assert rail.get_mint(mint.key) == mint


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"fail_next": -1}, "/fail_next"),
        ({"fail_next": 1, "failure": "explode"}, "/failure"),
        ({"fail_next": 1, "failure": "revert"}, "/failure"),  # revert is a chain's failure
        ({"delay_seconds": "soon"}, "/delay_seconds"),
        ({"never_confirm": "yes"}, "/never_confirm"),
        ({"surprise": 1}, "/surprise"),
    ],
)
def test_a_malformed_script_is_refused_naming_the_field(http: Http, body: dict[str, object], field: str) -> None:
    reply = http.sim("POST", "/providers/pix/script", body)
    assert reply.status_code == 422
    assert reply.json()["errors"][0]["field"] == field


def test_scripts_for_providers_this_world_does_not_simulate_are_404(http: Http) -> None:
    assert http.sim("POST", "/providers/nope/script", {"fail_next": 1}).status_code == 404


def test_an_unreachable_provider_is_transient(http: Http) -> None:
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(RailUnavailable) as failed:
        PixRail(f"http://127.0.0.1:{port}", api_key="k", timeout=2).get_charge("chg")
    assert failed.value.transient
    assert not isinstance(failed.value, RailTimeout)


# -- match: a script that hits only the calls it names ------------------------------------------------


def _raw_tx(key: Any, nonce: int, to: str, data: str = "0x") -> str:
    """A signed EIP-1559 transaction of ``key`` (the world need not accept it: the gate sees it first)."""
    from eth_account import Account
    from eth_utils.address import to_checksum_address

    tx = {
        "to": to_checksum_address(to),
        "data": data,
        "value": 0,
        "gas": 100_000,
        "maxFeePerGas": 2_000_000_000,
        "maxPriorityFeePerGas": 1_000_000,
        "nonce": nonce,
        "chainId": 31337,
        "type": 2,
    }
    return "0x" + bytes(Account.sign_transaction(tx, key.key).raw_transaction).hex()


def _scripted(reply: requests.Response) -> bool:
    """Whether the script (not the chain) answered an ``eth_sendRawTransaction``."""
    return reply.status_code == 503 or "(scripted)" in reply.text


def test_a_base_match_fails_only_the_submissions_it_names(http: Http) -> None:
    from eth_account import Account

    mine, other = Account.create(), Account.create()
    target = new_address()
    http.script("base", fail_next=2, failure="unavailable", match={"from": "0x" + mine.address[2:].upper(), "nonce": 1})
    assert rpc(http, "eth_chainId").status_code == 200  # a read is no submission: untouched, nothing used up
    assert not _scripted(rpc(http, "eth_sendRawTransaction", [_raw_tx(other, 1, target)]))  # another sender
    assert not _scripted(rpc(http, "eth_sendRawTransaction", [_raw_tx(mine, 0, target)]))  # another nonce
    assert http.sim("GET", "/providers/base/script").json()["script"]["fail_next"] == 2
    for _ in range(2):
        assert rpc(http, "eth_sendRawTransaction", [_raw_tx(mine, 1, target)]).status_code == 503
    assert not _scripted(rpc(http, "eth_sendRawTransaction", [_raw_tx(mine, 1, target)]))  # spent


def test_a_base_match_by_recipient_reverts_only_that_transfer(http: Http) -> None:
    from eth_account import Account

    sender = Account.create()
    token, wanted, another = new_address(), new_address(), new_address()

    def transfer(to: str) -> str:
        return "0xa9059cbb" + to[2:].lower().rjust(64, "0") + hex(5)[2:].rjust(64, "0")

    http.script("base", fail_next=1, failure="revert", match={"recipient": wanted, "to": token})
    assert not _scripted(rpc(http, "eth_sendRawTransaction", [_raw_tx(sender, 0, token, transfer(another))]))
    assert not _scripted(rpc(http, "eth_sendRawTransaction", [_raw_tx(sender, 0, new_address(), transfer(wanted))]))
    reverted = rpc(http, "eth_sendRawTransaction", [_raw_tx(sender, 0, token, transfer(wanted))]).json()
    assert reverted["error"]["code"] == 3
    assert "reverted (scripted)" in reverted["error"]["message"]


def test_a_pix_match_fails_only_that_operation_of_that_reference(http: Http) -> None:
    ramp, other = new_ramp_id(), new_ramp_id()
    http.script("pix", fail_next=2, match={"operation": "payout", "reference": ramp})
    assert http.pix("GET", f"/payouts/{other}:payout:pix").status_code == 404  # another ramp
    assert http.pix("GET", f"/mints/{ramp}:mint:brla").status_code == 404  # another operation
    http.charge(ramp)  # a charge of that ramp: another operation too
    assert [http.pix("GET", f"/payouts/{ramp}:payout:pix").status_code for _ in range(3)] == [503, 503, 404]
    http.script("pix", fail_next=1, failure="reject", match={"operation": "charge", "reference": other})
    assert http.pix("GET", f"/charges?reference={ramp}").status_code == 200
    created = http.pix(
        "POST",
        "/charges",
        {"reference": other, "amount": "1.00", "payer_tax_id": "52998224725", "expires_at": "2099-01-01T00:00:00Z"},
    )
    assert created.status_code == 422
    assert created.json()["error"]["code"] == "rejected"
    assert http.pix("GET", f"/charges?reference={other}").json()["items"] == []  # refused: nothing recorded


def test_never_confirm_with_a_match_holds_only_that_ramps_mint(http: Http) -> None:
    rail = PixRail(http.url, api_key=http.key)
    held, free = paid(http, "3.00"), paid(http, "4.00")
    http.script("pix", never_confirm=True, match={"operation": "mint", "reference": held[0]})
    address = new_address()
    done = rail.request_mint(
        MintRequest(key=f"{free[0]}:mint:brla", address=address, amount=Decimal("4"), payment_id=free[1])
    )
    assert done.status == "completed"
    pending = rail.request_mint(
        MintRequest(key=f"{held[0]}:mint:brla", address=new_address(), amount=Decimal("3"), payment_id=held[1])
    )
    assert pending.status == "pending"


def test_drop_webhooks_never_sends_them(http: Http, receiver: Receiver) -> None:
    dropped, sent = new_ramp_id(), new_ramp_id()
    http.script("pix", drop_webhooks=True, match={"operation": "charge", "reference": dropped})
    for ramp in (dropped, sent):
        http.charge(ramp)
        assert http.sim("POST", "/pix/payments", {"ramp_id": ramp}).status_code == 200
    receiver.wait_for("charge.paid", reference=sent)  # the later one arrived: the earlier was never sent
    assert receiver.of("charge.paid", reference=dropped) == []
    assert {"type": "charge.paid", "operation": "charge", "reference": dropped} in http.sim("GET", "/webhooks").json()[
        "dropped"
    ]
    assert http.sim("GET", "/providers/pix/script").json()["script"]["drop_webhooks"] is True
    http.script("pix", drop_webhooks=1)  # N: the next one only
    first, second = new_ramp_id(), new_ramp_id()
    for ramp in (first, second):
        http.charge(ramp)
        http.sim("POST", "/pix/payments", {"ramp_id": ramp})
    receiver.wait_for("charge.paid", reference=second)
    assert receiver.of("charge.paid", reference=first) == []
    assert http.sim("GET", "/providers/pix/script").json()["script"]["drop_webhooks"] == 0


@pytest.mark.parametrize(
    ("provider", "body", "field"),
    [
        ("base", {"match": 5}, "/match"),
        ("base", {"match": {}}, "/match"),
        ("base", {"match": {"nonce": -1}}, "/match/nonce"),
        ("base", {"match": {"nonce": True}}, "/match/nonce"),
        ("base", {"match": {"from": "0x12"}}, "/match/from"),
        ("base", {"match": {"recipient": 7}}, "/match/recipient"),
        ("base", {"match": {"operation": "mint"}}, "/match/operation"),  # a pix field
        ("pix", {"match": {"operation": "burn"}}, "/match/operation"),
        ("pix", {"match": {"reference": ""}}, "/match/reference"),
        ("pix", {"match": {"nonce": 1}}, "/match/nonce"),  # a base field
        ("pix", {"drop_webhooks": "all"}, "/drop_webhooks"),
        ("pix", {"drop_webhooks": -2}, "/drop_webhooks"),
    ],
)
def test_a_malformed_match_or_drop_is_refused_naming_the_field(
    http: Http, provider: str, body: dict[str, object], field: str
) -> None:
    reply = http.sim("POST", f"/providers/{provider}/script", body)
    assert reply.status_code == 422
    assert reply.json()["errors"][0]["field"] == field
    assert http.sim("GET", f"/providers/{provider}/script").json()["script"]["match"] is None  # nothing was set
