"""Corridors and quotes over HTTP (API.md "Ramps", docs/ramps.md "Quotes"): the fee parts and their
exact sum, each asset printed at its ledger scale, fees rounded up and the output rounded down to
what the world's pool gives, the partner's markup, the corridors' limits, decimals, unsupported
corridors, and the public read. (``insufficient-liquidity`` cannot be reached inside the limits
without draining the session's shared pool: tests/unit/test_ramp_pricing.py covers it.)"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import pytest

from tests.e2e.api import Client
from tests.e2e.ramps import CORRIDORS, Ramps, pool_out, problem

pytestmark = pytest.mark.xdist_group("ramps")

FEE_PARTS = ("network", "anchor", "platform", "partner")
LEDGER_SCALE = {"BRL": 2, "USDC": 7}  # ARCHITECTURE.md, "Money"
SOURCE_DECIMALS = {"on": 2, "off": 6}  # BRL cents on PIX; USDC's 6 on base
OUTPUT_DECIMALS = {"on": 6, "off": 2}  # USDC's 6 on base; BRL cents on PIX
SWAP = {"on": ("BRLA", "USDC"), "off": ("USDC", "BRLA")}  # 1:1 with the fiat (docs/ramps.md)
ANCHOR_FIXED_BRL = Decimal("0.50")
FX_BRL_USD = Decimal("0.18")  # the twin's default FX table (RAMPART_FX_USD)
PLATFORM_BPS = 25


def _decimals(text: str) -> int:
    return len(text.partition(".")[2])


def _up(amount: Decimal, places: int) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_CEILING)


def _down(amount: Decimal, places: int) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_FLOOR)


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def check_quote(ramps: Ramps, kind: str, quote: dict[str, Any], markup_bps: int = 0) -> None:
    """Everything docs/ramps.md's arithmetic says of ``quote``, recomputed from its input and the
    world's pool (only the network fee depends on the fee estimate of the moment)."""
    currency_in, currency_out = quote["input_currency"], quote["output_currency"]
    given = Decimal(quote["input_amount"])
    places = SOURCE_DECIMALS[kind]
    fees = quote["fees"]
    # Every amount at its asset's ledger scale; fees in the input currency.
    assert _decimals(quote["input_amount"]) == LEDGER_SCALE[currency_in], quote
    assert _decimals(quote["output_amount"]) == LEDGER_SCALE[currency_out], quote
    assert fees["currency"] == currency_in
    for name in (*FEE_PARTS, "total"):
        assert _decimals(fees[name]) == LEDGER_SCALE[currency_in], (name, fees)
        assert Decimal(fees[name]) == _up(Decimal(fees[name]), places), (name, fees)  # no finer than the source
    parts = [Decimal(fees[name]) for name in FEE_PARTS]
    assert sum(parts, Decimal(0)) == Decimal(fees["total"])
    # Fees rounded up: the anchor's fixed 0.50 BRL (converted for USDC), 25 bps, the partner's markup.
    anchor = ANCHOR_FIXED_BRL if kind == "on" else ANCHOR_FIXED_BRL * FX_BRL_USD
    assert Decimal(fees["anchor"]) == _up(anchor, places)
    assert Decimal(fees["platform"]) == _up(given * PLATFORM_BPS / 10_000, places)
    assert Decimal(fees["partner"]) == _up(given * markup_bps / 10_000, places)
    assert Decimal(fees["network"]) > 0
    # The output: what the pool gives for input − fees, rounded down to the destination's decimals.
    net = given - Decimal(fees["total"])
    asset_in, asset_out = SWAP[kind]
    from_pool = Decimal(pool_out(ramps, asset_in, asset_out, net)).scaleb(-{"USDC": 6, "BRLA": 18}[asset_out])
    output = Decimal(quote["output_amount"])
    assert output == _down(from_pool, OUTPUT_DECIMALS[kind]), (quote, from_pool)
    assert output <= from_pool
    assert Decimal(quote["rate"]) == _down(output / net, 8)
    lifetime = _moment(quote["expires_at"]) - _moment(quote["created_at"])
    assert timedelta(0) < lifetime <= timedelta(minutes=10)


@pytest.fixture(scope="module")
def carol(twin_url: str) -> Ramps:
    return Ramps(twin_url)


@pytest.fixture(scope="module")
def partner(twin_url: str, carol: Ramps) -> Client:
    from tests.e2e.api import admin

    created = admin(twin_url).post("/v1/admin/partners", {"name": "Acme Wallet", "markup_bps": 100})
    assert created.status == 201, created
    return Client(twin_url, headers={"X-Api-Key": created.body["api_key"]})


def test_corridors_lists_the_served_ones(client: Client) -> None:
    reply = client.get("/v1/corridors")
    assert reply.status == 200, reply
    listed = {(c["ramp_type"], c["from"], c["to"]): c for c in reply.body["items"]}
    assert set(listed) == {("on", "pix", "base"), ("off", "base", "pix")}
    on, off = listed["on", "pix", "base"], listed["off", "base", "pix"]
    assert (on["input_currency"], on["output_currency"], on["min_amount"], on["max_amount"]) == (
        "BRL",
        "USDC",
        "10.00",
        "50000.00",
    )
    assert (off["input_currency"], off["output_currency"], off["min_amount"], off["max_amount"]) == (
        "USDC",
        "BRL",
        "2.0000000",
        "10000.0000000",
    )
    assert on["networks"] == off["networks"] == ["base"]
    assert on["phases"][0] == off["phases"][0] == "initial"
    assert on["phases"][-1] == off["phases"][-1] == "complete"
    assert on["phases"][1] == "payment"
    assert off["phases"][1] == "fund"


@pytest.mark.parametrize(
    ("kind", "amount"),
    [
        ("on", "100.00"),
        ("on", "10.01"),  # 25 bps = 0.025025 → 0.03 (up)
        ("on", "1234.5"),
        ("off", "20"),
        ("off", "2.000001"),  # 25 bps = 0.0050000025 → 0.005001 (up)
        ("off", "777.777777"),
    ],
)
def test_quote_arithmetic(carol: Ramps, kind: str, amount: str) -> None:
    quote = carol.quote(kind, amount)
    assert (quote["ramp_type"], quote["from"], quote["to"]) == (kind, CORRIDORS[kind]["from"], CORRIDORS[kind]["to"])
    assert Decimal(quote["input_amount"]) == Decimal(amount)
    assert quote["fees"]["partner"] == ("0.00" if kind == "on" else "0.0000000")
    check_quote(carol, kind, quote)


def test_rounding_direction_at_the_edges(carol: Ramps) -> None:
    on = carol.quote("on", "10.01")
    assert (on["fees"]["anchor"], on["fees"]["platform"]) == ("0.50", "0.03")
    off = carol.quote("off", "2.000001")
    assert (off["fees"]["anchor"], off["fees"]["platform"]) == ("0.0900000", "0.0050010")
    # USDC out of base has 6 decimals: its 7th (ledger scale) is always 0.
    assert on["output_amount"].endswith("0")


@pytest.mark.parametrize(("kind", "amount", "markup"), [("on", "10.01", "0.11"), ("off", "2.000001", "0.0200010")])
def test_partner_markup(carol: Ramps, partner: Client, kind: str, amount: str, markup: str) -> None:
    quote = carol.quote(kind, amount, client=partner)
    assert quote["fees"]["partner"] == markup  # 1% of the input, rounded up
    check_quote(carol, kind, quote, markup_bps=100)
    mine = carol.quote(kind, amount)
    assert Decimal(mine["fees"]["partner"]) == 0
    assert Decimal(mine["fees"]["platform"]) == Decimal(quote["fees"]["platform"])


@pytest.mark.parametrize(("kind", "amount"), [("on", "50000.00"), ("off", "10000")])
def test_the_maximum_is_served(carol: Ramps, kind: str, amount: str) -> None:
    quote = carol.quote(kind, amount)
    check_quote(carol, kind, quote)


@pytest.mark.parametrize(
    ("kind", "amount"), [("on", "9.99"), ("on", "50000.01"), ("off", "1.999999"), ("off", "10000.000001")]
)
def test_amount_out_of_range(carol: Ramps, client: Client, kind: str, amount: str) -> None:
    reply = carol.quote_reply(kind, amount)
    problem(reply, 422, "amount-out-of-range")
    corridor = next(c for c in client.get("/v1/corridors").body["items"] if c["ramp_type"] == kind)
    named = {Decimal(n) for n in re.findall(r"\d+(?:\.\d+)?", reply.body["detail"])}
    assert Decimal(corridor["min_amount"]) in named, reply.body
    assert Decimal(corridor["max_amount"]) in named, reply.body


@pytest.mark.parametrize(
    ("kind", "amount"),
    [
        ("on", "10.001"),  # BRL: cents
        ("off", "10.1234567"),  # USDC on base: 6 decimals (its ledger scale of 7 is not the source's)
        ("on", "0"),
        ("on", "-10.00"),
        ("on", "1e3"),
        ("on", 100),
    ],
)
def test_malformed_amount(carol: Ramps, kind: str, amount: Any) -> None:
    problem(carol.quote_reply(kind, amount), 422, "validation-error", "/input_amount")


@pytest.mark.parametrize(
    "changes",
    [
        {"from": "sepa", "input_currency": "EUR"},  # EUR on: declared, not served
        {"ramp_type": "off", "from": "base", "to": "sepa", "input_currency": "USDC", "output_currency": "EUR"},
        {"to": "solana"},  # an unknown network
        {"from": "base"},  # an on-ramp from a network
        {"ramp_type": "off"},  # pix → base is an on-ramp
        {"output_currency": "EURC"},
    ],
    ids=["eur-on", "eur-off", "unknown-network", "on-from-base", "off-from-pix", "other-output"],
)
def test_unsupported_corridor(carol: Ramps, changes: dict[str, str]) -> None:
    problem(carol.quote_reply("on", "100.00", changes=changes), 422, "unsupported-corridor")


def test_quote_is_public_to_read(carol: Ramps, client: Client) -> None:
    quote = carol.quote("off", "20")
    reply = client.get(f"/v1/quotes/{quote['id']}")
    assert reply.status == 200, reply
    assert reply.body == quote
    problem(client.get("/v1/quotes/qt_" + "0" * 32), 404, "not-found")
    problem(client.get("/v1/quotes/not-a-quote"), 404, "not-found")
    problem(client.post("/v1/quotes", {**CORRIDORS["on"], "input_amount": "100.00"}), 401, "unauthorized")
