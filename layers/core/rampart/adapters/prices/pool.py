"""The price port on the corridor's own pools and a USD FX table: the pool's ``getAmountOut``
(what a swap of that size gives now, after the pool's fee) and its reserves (the spot price the
impact is measured against); the FX table prices what no pool holds (ETH for the network fee,
the rails' fiat for the anchor's fixed fee).

The FX table is configuration (``RAMPART_FX_USD``: ``ETH=2500,BRL=0.18,EUR=1.08``, USD per
unit). A real price source plugs in as another implementation of ``rampart.ramps.ports.Prices``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from rampart.ramps.ports import SwapPrice

DEFAULT_FX_USD = "ETH=2500,BRL=0.18,EUR=1.08"


def parse_fx(text: str) -> dict[str, Decimal]:
    """``NAME=price`` pairs (USD per unit, positive decimals); ValueError names a bad one."""
    table: dict[str, Decimal] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        name, _, value = item.strip().partition("=")
        try:
            price = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"FX table: {item!r} is not NAME=decimal") from None
        if not price.is_finite() or price <= 0 or not name:
            raise ValueError(f"FX table: {item!r} is not NAME=positive decimal")
        table[name.strip().upper()] = price
    return table


class PoolPrices:
    def __init__(self, chains: Callable[[str], Any], fx_usd: Mapping[str, Decimal]) -> None:
        self._chains = chains
        self._fx = dict(fx_usd)

    def swap(self, network: str, asset_in: str, amount_in: int, asset_out: str) -> SwapPrice:
        chain = self._chains(network)
        out = chain.quote_swap(asset_in, amount_in)
        reserves = chain.pool_reserves()
        spot = amount_in * reserves[asset_out] // reserves[asset_in] if reserves[asset_in] else 0
        return SwapPrice(amount_out=int(out), spot_out=int(spot))

    def usd(self) -> Mapping[str, Decimal]:
        return dict(self._fx)
