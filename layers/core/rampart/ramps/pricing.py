"""Quote arithmetic: fees, the swap and the output, with the rounding of each step named
(ARCHITECTURE.md, "Money": outputs round down to the destination's decimals, fees round up — in
the user's disfavour by less than one unit, never silently). Pure: the pool's answer and the FX
table come in as arguments.

For a corridor with input ``I`` (in the input currency, at most the source's decimals):

1. fees, each rounded **up** to the input's source decimals:
   - ``network`` = the gas the platform funds the ephemeral with (``gas_wei``), at the FX table's
     ETH price, in the input currency;
   - ``anchor`` = the rail's fixed fee (in its fiat, converted) + ``anchor_bps`` of ``I``;
   - ``platform`` = ``platform_bps`` of ``I``; ``partner`` = the partner's ``markup_bps`` of ``I``;
2. ``swap_in`` = ``I`` − total, in the swap's input token (1:1: BRL↔BRLA, USDC↔USDC);
3. the pool's ``getAmountOut(swap_in)`` → ``output_amount``, rounded **down** to the
   destination's decimals (a PIX payout in cents; USDC's 6 on base);
4. ``min_out`` = the output in the swap's output token less ``max_slippage_bps``, rounded
   **down** (the swap reverts below it; a shortfall above it is subsidised);
5. ``rate`` = ``output_amount`` ÷ ``swap_in``, rounded **down** to 8 decimals.

A price impact (the pool's output against the spot price of its reserves) beyond the corridor's
``max_price_impact_bps``, or no output at all, is :class:`InsufficientLiquidity`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext
from typing import Any

from rampart.core.money import scale_of
from rampart.ramps.errors import InsufficientLiquidity
from rampart.ramps.models import NETWORK_DECIMALS, Corridor, FeeBreakdown
from rampart.ramps.ports import SwapPrice

RATE_PLACES = 8
WEI = 18
# The token a fiat is carried as on the chain (1:1), and back.
TOKEN_OF = {"BRL": "BRLA", "EUR": "EURC"}
FIAT_OF = {token: fiat for fiat, token in TOKEN_OF.items()}


@dataclass(frozen=True)
class Priced:
    fees: FeeBreakdown
    output_amount: Decimal
    rate: Decimal
    snapshot: dict[str, Any]


def round_up(amount: Decimal, places: int) -> Decimal:
    """Rounded up (towards +∞) to ``places`` decimals: a fee."""
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_CEILING)


def round_down(amount: Decimal, places: int) -> Decimal:
    """Rounded down (towards −∞) to ``places`` decimals: an output, a rate."""
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_FLOOR)


def at_scale(amount: Decimal, currency: str) -> Decimal:
    """Exactly ``amount`` written with the currency's ledger scale (never rounds: the value
    already has at most that many decimals)."""
    return amount.quantize(Decimal(1).scaleb(-scale_of(currency)))


def to_chain(amount: Decimal, decimals: int) -> int:
    """An exact amount as chain base units (it carries at most ``decimals`` decimals)."""
    units = amount.scaleb(decimals)
    assert units == units.to_integral_value(), (amount, decimals)
    return int(units)


def from_chain(units: int, decimals: int) -> Decimal:
    return Decimal(units).scaleb(-decimals)


def usd_value(prices: Mapping[str, Decimal], asset: str) -> Decimal:
    """The FX table's USD price of ``asset``; a stablecoin is its fiat (USDC = USD, BRLA = BRL)."""
    name = FIAT_OF.get(asset, asset)
    if name in ("USD", "USDC"):
        return Decimal(1)
    return prices[name]


def price(
    corridor: Corridor,
    input_amount: Decimal,
    *,
    markup_bps: int,
    swap: Any,  # Callable[[str, int], SwapPrice]: (asset in, chain units in) → the pool's answer
    prices: Mapping[str, Decimal],
    gas_wei: int,
) -> Priced:
    places = corridor.input_decimals
    currency = corridor.input_currency
    asset_in, asset_out = corridor.swap
    chain_decimals = NETWORK_DECIMALS[corridor.chain]
    with localcontext() as ctx:
        ctx.prec = 100
        in_usd = usd_value(prices, currency)
        network = round_up(from_chain(gas_wei, WEI) * usd_value(prices, "ETH") / in_usd, places)
        rail_fiat = next(iter(NETWORK_DECIMALS[corridor.rail]))
        anchor = round_up(
            corridor.fees.anchor_fixed * usd_value(prices, rail_fiat) / in_usd
            + input_amount * corridor.fees.anchor_bps / 10_000,
            places,
        )
        platform = round_up(input_amount * corridor.fees.platform_bps / 10_000, places)
        partner = round_up(input_amount * markup_bps / 10_000, places)
        fees = FeeBreakdown(
            network=at_scale(network, currency),
            anchor=at_scale(anchor, currency),
            platform=at_scale(platform, currency),
            partner=at_scale(partner, currency),
            currency=currency,
        )
        net = input_amount - fees.total
        if net <= 0:
            raise InsufficientLiquidity(f"the fees ({fees.total} {currency}) take the whole amount")
        swap_in = to_chain(net, chain_decimals[asset_in])
        quoted: SwapPrice = swap(asset_in, swap_in)
        out_decimals = chain_decimals[asset_out]
        if quoted.amount_out <= 0 or quoted.spot_out <= 0:
            raise InsufficientLiquidity("the pool gives nothing for this amount")
        impact_bps = (Decimal(quoted.spot_out - quoted.amount_out) * 10_000) / quoted.spot_out
        if impact_bps > corridor.max_price_impact_bps:
            raise InsufficientLiquidity(
                f"the pool cannot fill {input_amount} {currency}: the price would move "
                f"{round_up(impact_bps / 100, 2)}% (at most {Decimal(corridor.max_price_impact_bps) / 100}%)"
            )
        output = round_down(from_chain(quoted.amount_out, out_decimals), corridor.output_decimals)
        if output <= 0:
            raise InsufficientLiquidity("the output rounds to nothing")
        output_units = to_chain(output, out_decimals)
        min_out = output_units * (10_000 - corridor.max_slippage_bps) // 10_000
        rate = round_down(output / net, RATE_PLACES)
    snapshot = {
        "corridor": corridor.key,
        "swap": {
            "asset_in": asset_in,
            "amount_in": str(swap_in),
            "asset_out": asset_out,
            "expected_out": str(quoted.amount_out),
            "spot_out": str(quoted.spot_out),
            "output": str(output_units),
            "min_out": str(min_out),
        },
        "fee_units": {  # the fees in the chain units of the token they are paid in (swap input)
            "total": str(to_chain(fees.total, chain_decimals[asset_in])),
            "asset": asset_in,
        },
        "gas_wei": str(gas_wei),
        "fx_usd": {name: str(value) for name, value in sorted(prices.items())},
        "fee_schedule": {
            "anchor_fixed": str(corridor.fees.anchor_fixed),
            "anchor_bps": corridor.fees.anchor_bps,
            "platform_bps": corridor.fees.platform_bps,
            "partner_bps": markup_bps,
            "max_slippage_bps": corridor.max_slippage_bps,
        },
    }
    return Priced(fees=fees, output_amount=at_scale(output, corridor.output_currency), rate=rate, snapshot=snapshot)
