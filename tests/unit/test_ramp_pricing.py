"""The quote arithmetic (rampart.ramps.pricing.price) with a fake pool: each fee rounded up to the
source's decimals and their exact sum, the output rounded down to the destination's, ``min_out``,
``rate``, the snapshot the blueprints are built from, and every way to ``insufficient-liquidity``
(a price impact beyond the corridor's, a pool that gives nothing, fees that take the whole
input, an output that rounds to nothing) — which the e2e suite cannot reach without draining the
twin's shared pool. Expected values are worked out by hand in the comments."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rampart.ramps.errors import InsufficientLiquidity
from rampart.ramps.models import corridor
from rampart.ramps.ports import SwapPrice
from rampart.ramps.pricing import price

FX = {"ETH": Decimal("2500"), "BRL": Decimal("0.18"), "EUR": Decimal("1.08")}
ON, OFF = corridor("brl_on"), corridor("brl_off")
GWEI = 10**9


@dataclass
class FakePool:
    """Answers every swap with ``out`` (or ``out_of(amount_in)``) and ``spot``; records the calls."""

    out: int = 0
    spot: int = 0
    calls: list[tuple[str, int]] = field(default_factory=list)
    ratio: tuple[int, int] | None = None  # a pool with a fixed price: out = in × a / b, spot 1% better

    def __call__(self, asset_in: str, amount_in: int) -> SwapPrice:
        self.calls.append((asset_in, amount_in))
        if self.ratio is not None:
            a, b = self.ratio
            return SwapPrice(amount_out=amount_in * a // b, spot_out=amount_in * a * 101 // (b * 100))
        return SwapPrice(amount_out=self.out, spot_out=self.spot)


def test_on_ramp_fees_output_rate_and_snapshot() -> None:
    pool = FakePool(out=865_432, spot=870_000)  # 0.865432 USDC; impact 52.5 bps
    priced = price(ON, Decimal("10.01"), markup_bps=100, swap=pool, prices=FX, gas_wei=330_000 * GWEI)
    fees = priced.fees
    # network: 0.00033 ETH × 2500 USD / 0.18 = 4.58333… BRL → 4.59 (up to cents)
    # anchor: 0.50 BRL; platform: 25 bps of 10.01 = 0.025025 → 0.03; partner: 1% = 0.1001 → 0.11
    assert (fees.network, fees.anchor, fees.platform, fees.partner) == (
        Decimal("4.59"),
        Decimal("0.50"),
        Decimal("0.03"),
        Decimal("0.11"),
    )
    assert fees.total == Decimal("5.23") == fees.network + fees.anchor + fees.platform + fees.partner
    assert fees.currency == "BRL"
    # swap_in = 10.01 − 5.23 = 4.78 BRL as BRLA (18 decimals)
    assert pool.calls == [("BRLA", 478 * 10**16)]
    assert priced.output_amount == Decimal("0.8654320")  # USDC at its ledger scale (7)
    assert str(priced.output_amount) == "0.8654320"
    assert priced.rate == Decimal("0.18105271")  # 0.865432 / 4.78 = 0.181052719… → down
    swap = priced.snapshot["swap"]
    assert (swap["asset_in"], swap["asset_out"]) == ("BRLA", "USDC")
    assert swap["amount_in"] == str(478 * 10**16)
    assert (swap["expected_out"], swap["spot_out"], swap["output"]) == ("865432", "870000", "865432")
    assert swap["min_out"] == "856777"  # 865432 × 0.99 = 856777.68 → down
    assert priced.snapshot["fee_units"] == {"total": str(523 * 10**16), "asset": "BRLA"}
    assert priced.snapshot["gas_wei"] == str(330_000 * GWEI)
    assert priced.snapshot["fee_schedule"]["partner_bps"] == 100


def test_off_ramp_fees_output_rate() -> None:
    out = 9_098_765_432_109_876_543  # 9.098765… BRLA
    pool = FakePool(out=out, spot=9_200_000_000_000_000_000)
    priced = price(OFF, Decimal("2.000001"), markup_bps=0, swap=pool, prices=FX, gas_wei=100_000 * GWEI)
    fees = priced.fees
    # network: 0.0001 ETH × 2500 = 0.25 USDC; anchor: 0.50 BRL × 0.18 = 0.09 USDC;
    # platform: 0.0050000025 → 0.005001 (up to USDC's 6 decimals on base); partner: 0
    assert (fees.network, fees.anchor, fees.platform, fees.partner) == (
        Decimal("0.25"),
        Decimal("0.09"),
        Decimal("0.005001"),
        Decimal(0),
    )
    assert fees.total == Decimal("0.345001")
    assert str(fees.platform) == "0.0050010"  # USDC's ledger scale (7)
    assert pool.calls == [("USDC", 1_655_000)]  # 2.000001 − 0.345001 = 1.655 USDC
    assert priced.output_amount == Decimal("9.09")  # BRL cents, down
    assert str(priced.output_amount) == "9.09"
    assert priced.rate == Decimal("5.49244712")  # 9.09 / 1.655 = 5.492447129… → down
    assert priced.snapshot["swap"]["output"] == str(909 * 10**16)
    assert priced.snapshot["swap"]["min_out"] == str(8_999_100_000_000_000_000)


def test_output_rounds_down_even_a_hair_below_a_cent() -> None:
    pool = FakePool(out=9_099_999_999_999_999_999, spot=9_100_000_000_000_000_000)
    priced = price(OFF, Decimal("2"), markup_bps=0, swap=pool, prices=FX, gas_wei=100_000 * GWEI)
    assert priced.output_amount == Decimal("9.09")


def test_impact_threshold_is_inclusive() -> None:
    at_limit = FakePool(out=970_000, spot=1_000_000)  # exactly 300 bps
    priced = price(ON, Decimal("100.00"), markup_bps=0, swap=at_limit, prices=FX, gas_wei=GWEI)
    assert priced.output_amount == Decimal("0.97")
    beyond = FakePool(out=969_999, spot=1_000_000)  # 300.01 bps
    with pytest.raises(InsufficientLiquidity) as raised:
        price(ON, Decimal("100.00"), markup_bps=0, swap=beyond, prices=FX, gas_wei=GWEI)
    assert raised.value.slug == "insufficient-liquidity"
    assert raised.value.status == 422
    assert raised.value.field == "/input_amount"
    assert "3" in raised.value.detail


@pytest.mark.parametrize(("out", "spot"), [(0, 1_000_000), (0, 0), (5, 0)])
def test_a_pool_that_gives_nothing(out: int, spot: int) -> None:
    with pytest.raises(InsufficientLiquidity):
        price(ON, Decimal("100.00"), markup_bps=0, swap=FakePool(out=out, spot=spot), prices=FX, gas_wei=GWEI)


def test_fees_that_take_the_whole_input_never_reach_the_pool() -> None:
    pool = FakePool(out=1, spot=1)
    # 0.001 ETH = 2.50 USD = 13.888… BRL of network fee alone, for 10.00 BRL in.
    with pytest.raises(InsufficientLiquidity) as raised:
        price(ON, Decimal("10.00"), markup_bps=0, swap=pool, prices=FX, gas_wei=10**15)
    assert "fees" in raised.value.detail
    assert pool.calls == []
    # Exactly the input: 10.00 = 0.50 anchor + 0.03 platform + 9.47 network (+ 0 partner)
    # 9.47 BRL = 1.7046 USD = 0.00068184 ETH = 681_840 gwei
    with pytest.raises(InsufficientLiquidity):
        price(ON, Decimal("10.00"), markup_bps=0, swap=pool, prices=FX, gas_wei=681_840 * GWEI)
    assert pool.calls == []


def test_an_output_that_rounds_to_nothing() -> None:
    pool = FakePool(out=5 * 10**15, spot=5 * 10**15)  # 0.005 BRL → 0.00
    with pytest.raises(InsufficientLiquidity):
        price(OFF, Decimal("2"), markup_bps=0, swap=pool, prices=FX, gas_wei=GWEI)


@settings(max_examples=200, deadline=None)
@given(
    cents=st.integers(min_value=1000, max_value=5_000_000),
    markup=st.integers(min_value=0, max_value=500),
    gas_gwei=st.integers(min_value=0, max_value=500_000),
)
def test_on_ramp_properties(cents: int, markup: int, gas_gwei: int) -> None:
    """For any input in the corridor's limits: the parts sum to the total; each part is the exact
    fraction rounded up by less than a cent; the output is the pool's, rounded down by less than
    USDC's unit; min_out ≤ output; rate × swap_in ≤ output."""
    amount = Decimal(cents).scaleb(-2)
    pool = FakePool(ratio=(18, 100 * 10**12))  # 1 BRLA (18) → 0.18 USDC (6)
    priced = price(ON, amount, markup_bps=markup, swap=pool, prices=FX, gas_wei=gas_gwei * GWEI)
    fees = priced.fees
    assert fees.total == fees.network + fees.anchor + fees.platform + fees.partner
    cent = Decimal("0.01")
    exact = {
        "platform": amount * ON.fees.platform_bps / 10_000,
        "partner": amount * markup / 10_000,
        "network": Decimal(gas_gwei * GWEI).scaleb(-18) * FX["ETH"] / FX["BRL"],
    }
    for name, value in exact.items():
        charged = getattr(fees, name)
        assert charged == charged.quantize(cent, rounding=ROUND_CEILING), name  # at most cents
        assert value <= charged < value + cent, (name, value, charged)
    (asset_in, swap_in), *_ = pool.calls
    assert asset_in == "BRLA"
    assert Decimal(swap_in).scaleb(-18) == amount - fees.total
    from_pool = Decimal(swap_in * 18 // (100 * 10**12)).scaleb(-6)
    assert priced.output_amount <= from_pool < priced.output_amount + Decimal("0.000001")
    output_units = int(priced.snapshot["swap"]["output"])
    assert int(priced.snapshot["swap"]["min_out"]) <= output_units
    assert priced.rate * (amount - fees.total) <= priced.output_amount
