"""The BRLA issuer's mints and the rail's payouts: one idempotency key acted on once, under concurrent
retries, and ``base`` balances changing exactly once; refusals that record nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from rampart.adapters.rails.pix import PixRail
from rampart.ramps.rails import MintRequest, PayoutRequest, RailRejected, RefundRequest
from tests.world.conftest import CNPJ, Http, Receiver, new_address, new_ramp_id

THREADS = 8


def paid(http: Http, amount: str = "100.00", paid_amount: str | None = None) -> tuple[str, str]:
    """A ramp whose charge was paid: (ramp id, payment id)."""
    ramp = new_ramp_id()
    http.charge(ramp, amount=amount)
    body = {"ramp_id": ramp, **({"amount": paid_amount} if paid_amount else {})}
    reply = http.sim("POST", "/pix/payments", body)
    assert reply.status_code == 200, reply.text
    return ramp, str(reply.json()["payment_id"])


def test_one_mint_key_is_acted_on_once_under_concurrent_retries(http: Http, receiver: Receiver) -> None:
    rail = PixRail(http.url, api_key=http.key)
    ramp, payment = paid(http, "100.00")
    address = new_address()
    request = MintRequest(key=f"{ramp}:mint:1", address=address, amount=Decimal("100"), payment_id=payment)
    with ThreadPoolExecutor(THREADS) as pool:
        mints = list(pool.map(lambda _: rail.request_mint(request), range(THREADS)))
    assert {m.mint_id for m in mints} == {mints[0].mint_id}
    assert {m.status for m in mints} == {"completed"}
    assert mints[0].tx_hash
    assert http.balance(address, "BRLA") == Decimal("100")
    assert rail.get_mint(request.key) == mints[0]
    assert rail.get_mint("nope") is None
    [event] = receiver.wait_for("mint.completed", key=request.key)
    assert event["data"] == {
        "key": request.key,
        "address": address,
        "amount": "100.000000000000000000",
        "currency": "BRLA",
        "tx_hash": mints[0].tx_hash,
    }
    # The payment is used: another key against it is refused, and nothing moves.
    with pytest.raises(RailRejected) as used:
        rail.request_mint(MintRequest(key=f"{ramp}:mint:2", address=address, amount=Decimal("1"), payment_id=payment))
    assert used.value.code == "payment-used"
    with pytest.raises(RailRejected) as reused:  # the same key with other terms
        rail.request_mint(MintRequest(key=request.key, address=address, amount=Decimal("99"), payment_id=payment))
    assert reused.value.code == "key-reused"
    assert reused.value.status == 409
    assert http.balance(address, "BRLA") == Decimal("100")


def test_a_mint_needs_an_accepted_unused_payment_of_at_least_its_value(http: Http) -> None:
    rail = PixRail(http.url, api_key=http.key)
    address = new_address()
    _, payment = paid(http, "10.00")
    _, refunding = paid(http, "10.00", paid_amount="9.99")
    cases = [
        (
            MintRequest(key=new_ramp_id(), address=address, amount=Decimal("10.01"), payment_id=payment),
            "amount-exceeds-payment",
        ),
        (
            MintRequest(key=new_ramp_id(), address=address, amount=Decimal("1"), payment_id=refunding),
            "payment-not-accepted",
        ),
        (
            MintRequest(key=new_ramp_id(), address=address, amount=Decimal("1"), payment_id="pay_nope"),
            "unknown-payment",
        ),
        (MintRequest(key=new_ramp_id(), address="0x1234", amount=Decimal("1"), payment_id=payment), "invalid-field"),
    ]
    for request, code in cases:
        with pytest.raises(RailRejected) as refused:
            rail.request_mint(request)
        assert refused.value.code == code
        assert not refused.value.transient
        assert rail.get_mint(request.key) is None  # a refusal records nothing
    assert http.balance(address, "BRLA") == Decimal("0")
    less = rail.request_mint(MintRequest(key=new_ramp_id(), address=address, amount=Decimal("9.5"), payment_id=payment))
    assert less.status == "completed"
    assert http.balance(address, "BRLA") == Decimal("9.5")


def test_one_payout_key_is_acted_on_once_under_concurrent_retries(http: Http, receiver: Receiver) -> None:
    rail = PixRail(http.url, api_key=http.key)
    provider = http.platform()["provider_brla"]
    assert http.sim("POST", "/base/faucet", {"address": provider, "asset": "BRLA", "amount": "250"}).status_code == 200
    before = http.balance(provider, "BRLA")
    ramp = new_ramp_id()
    destination = {"pix_key": "user@example.com", "tax_id": CNPJ, "name": "Ana Souza"}
    request = PayoutRequest(
        key=f"{ramp}:payout:1",
        amount=Decimal("200.00"),
        destination=destination,
        token_amount=Decimal("200.5"),
        reference=ramp,
    )
    with ThreadPoolExecutor(THREADS) as pool:
        payouts = list(pool.map(lambda _: rail.request_payout(request), range(THREADS)))
    assert {p.payout_id for p in payouts} == {payouts[0].payout_id}
    assert payouts[0].status == "completed"
    assert payouts[0].tx_hash
    assert http.balance(provider, "BRLA") == before - Decimal("200.5")
    assert rail.get_payout(request.key) == payouts[0]
    [event] = receiver.wait_for("payout.completed", key=request.key)
    assert event["data"] == {
        "key": request.key,
        "pix_key": "user@example.com",
        "amount": "200.00",
        "currency": "BRL",
        "burn_tx_hash": payouts[0].tx_hash,
    }
    items = http.sim("GET", "/pix/payouts", ramp_id=ramp).json()["items"]
    assert [(i["kind"], i["amount"], i["status"], i["pix_key"]) for i in items] == [
        ("payout", "200.00", "completed", "user@example.com")
    ]


def test_a_payout_beyond_the_providers_brla_is_refused_and_nothing_moves(http: Http) -> None:
    rail = PixRail(http.url, api_key=http.key)
    provider = http.platform()["provider_brla"]
    held = http.balance(provider, "BRLA")
    key = new_ramp_id()
    destination = {"pix_key": "+5511999999999", "tax_id": CNPJ, "name": "Ana"}
    with pytest.raises(RailRejected) as refused:
        rail.request_payout(PayoutRequest(key=key, amount=held + 1, destination=destination))
    assert refused.value.code == "insufficient-funds"
    assert rail.get_payout(key) is None
    assert http.balance(provider, "BRLA") == held
    with pytest.raises(RailRejected) as bad:
        rail.request_payout(PayoutRequest(key=key, amount=Decimal(1), destination={**destination, "tax_id": "1"}))
    assert bad.value.field == "tax_id"


def test_one_refund_key_returns_an_unminted_payment_once_under_concurrent_retries(
    http: Http, receiver: Receiver
) -> None:
    rail = PixRail(http.url, api_key=http.key)
    ramp, payment = paid(http, "42.10")
    request = RefundRequest(key=f"{ramp}:failed:refund", payment_id=payment)
    with ThreadPoolExecutor(THREADS) as pool:
        refunds = list(pool.map(lambda _: rail.request_refund(request), range(THREADS)))
    assert {r.refund_id for r in refunds} == {refunds[0].refund_id}
    refund = refunds[0]
    assert (refund.status, refund.amount, refund.currency, refund.payment_id) == (
        "completed",
        Decimal("42.10"),
        "BRL",
        payment,
    )
    assert refund.tx_hash is None
    assert refund.token_amount is None
    assert rail.get_refund(request.key) == refund
    assert rail.get_refund("nope") is None
    [event] = receiver.wait_for("refund.completed", refund_id=refund.refund_id)
    assert event["data"]["payment_id"] == payment
    assert (event["data"]["reference"], event["data"]["amount"], event["data"]["currency"]) == (ramp, "42.10", "BRL")
    items = http.sim("GET", "/pix/payouts", ramp_id=ramp).json()["items"]
    assert [(i["kind"], i["amount"], i["status"], i["key"]) for i in items] == [
        ("refund", "42.10", "completed", request.key)
    ]
    # The key with another payment → 409; the payment under another key → refused; it backs no mint.
    _, other = paid(http, "10.00")
    with pytest.raises(RailRejected) as reused:
        rail.request_refund(RefundRequest(key=request.key, payment_id=other))
    assert (reused.value.status, reused.value.code) == (409, "key-reused")
    with pytest.raises(RailRejected) as twice:
        rail.request_refund(RefundRequest(key=f"{ramp}:again", payment_id=payment))
    assert twice.value.code == "payment-refunded"
    with pytest.raises(RailRejected) as minted:
        rail.request_mint(MintRequest(key=f"{ramp}:mint", address=new_address(), amount=Decimal(1), payment_id=payment))
    assert minted.value.code == "payment-refunded"
    assert len(http.sim("GET", "/pix/payouts", ramp_id=ramp).json()["items"]) == 1


def test_a_refund_needs_an_accepted_payment_and_records_nothing_when_refused(http: Http) -> None:
    rail = PixRail(http.url, api_key=http.key)
    refunding_ramp, refunding = paid(http, "10.00", paid_amount="9.99")  # the rail refunds it itself
    cases = [(refunding, "payment-not-accepted"), ("pay_nope", "unknown-payment")]
    for payment, code in cases:
        key = new_ramp_id()
        with pytest.raises(RailRejected) as refused:
            rail.request_refund(RefundRequest(key=key, payment_id=payment))
        assert (refused.value.code, refused.value.transient) == (code, False)
        assert rail.get_refund(key) is None
    assert [i["kind"] for i in http.sim("GET", "/pix/payouts", ramp_id=refunding_ramp).json()["items"]] == ["refund"]


def test_a_minted_payment_is_refunded_only_once_its_brla_is_back_and_the_issuer_burns_it(
    http: Http, receiver: Receiver
) -> None:
    rail = PixRail(http.url, api_key=http.key)
    provider = http.platform()["provider_brla"]
    before = http.balance(provider, "BRLA")
    amount = (before + 100).quantize(Decimal("1"))  # more than the provider's account holds now
    ramp, payment = paid(http, f"{amount}.00")
    address = new_address()
    rail.request_mint(MintRequest(key=f"{ramp}:mint", address=address, amount=amount, payment_id=payment))
    request = RefundRequest(key=f"{ramp}:failed:refund", payment_id=payment)
    with pytest.raises(RailRejected) as early:  # the BRLA is still on the ephemeral
        rail.request_refund(request)
    assert early.value.code == "brla-not-returned"
    assert rail.get_refund(request.key) is None
    assert http.sim("GET", "/pix/payouts", ramp_id=ramp).json()["items"] == []
    # The BRLA comes back to the provider's account (here: credited by the faucet).
    assert http.sim("POST", "/base/faucet", {"address": provider, "asset": "BRLA", "amount": str(amount)}).ok
    refund = rail.request_refund(request)
    assert (refund.status, refund.amount, refund.token_amount) == ("completed", amount, amount)
    assert refund.tx_hash
    assert http.balance(provider, "BRLA") == before  # the returned BRLA burnt, nothing else
    assert rail.request_refund(request) == refund  # a repeat: the first result, nothing burnt again
    assert http.balance(provider, "BRLA") == before
    receiver.wait_for("refund.completed", refund_id=refund.refund_id)
    items = http.sim("GET", "/pix/payouts", ramp_id=ramp).json()["items"]
    assert [(i["kind"], Decimal(i["amount"])) for i in items] == [("refund", amount)]
