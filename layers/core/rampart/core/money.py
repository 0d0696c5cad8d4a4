"""Money: assets, their ledger scales, and exact conversion between decimal strings and base units.

Amounts live as decimal strings in JSON, ``Decimal`` in Python and integer base units in
PostgreSQL. Nothing here ever touches a float.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final

from rampart.core.errors import InvalidAmount, UnknownAsset

# One ledger scale per asset: the largest number of decimals of any chain it lives on.
ASSET_SCALES: Final[dict[str, int]] = {
    "USD": 2,
    "EUR": 2,
    "BRL": 2,
    "ARS": 2,
    "USDC": 7,
    "USDT": 7,
    "EURC": 7,
    "XLM": 7,
    "DOT": 10,
    "PEN": 12,
    "BRLA": 18,
    "ETH": 18,
}

# NUMERIC(78,0) holds any uint256; amounts beyond uint256 are refused outright.
MAX_UNITS: Final[int] = 2**256 - 1

_AMOUNT_RE: Final = re.compile(r"^[0-9]+(\.[0-9]+)?$")


def scale_of(currency: str) -> int:
    """The ledger scale of ``currency``; raises :class:`UnknownAsset` for anything else."""
    try:
        return ASSET_SCALES[currency]
    except (KeyError, TypeError):
        raise UnknownAsset(f"unknown currency {currency!r}") from None


def to_units(amount: str | Decimal, currency: str, *, allow_zero: bool = False) -> int:
    """Convert a decimal amount of ``currency`` to integer base units, exactly.

    Accepts a plain decimal string (``^[0-9]+(\\.[0-9]+)?$``) or a finite ``Decimal``.
    Rejects floats, ints, bools, NaN/Infinity, exponents, signs, more decimals than the
    asset's scale, zero (unless ``allow_zero``) and anything above uint256.
    """
    scale = scale_of(currency)
    if isinstance(amount, str):
        if not _AMOUNT_RE.match(amount):
            raise InvalidAmount('amount must be a decimal string like "10.50" (digits, one optional point)')
        whole, _, frac = amount.partition(".")
    elif isinstance(amount, Decimal):
        if not amount.is_finite():
            raise InvalidAmount("amount must be finite")
        if amount.is_signed() and amount != 0:
            raise InvalidAmount("amount must be greater than zero")
        _sign, digits, exponent = amount.as_tuple()
        assert isinstance(exponent, int)
        text = "".join(map(str, digits))
        if exponent >= 0:
            whole, frac = text + "0" * exponent, ""
        else:
            text = text.rjust(-exponent + 1, "0")
            whole, frac = text[:exponent], text[exponent:]
    else:
        raise InvalidAmount(f"amount must be a decimal string, not {type(amount).__name__}")
    frac = frac.rstrip("0")
    if len(frac) > scale:
        raise InvalidAmount(f"{currency} allows at most {scale} decimal places")
    units = int(whole + frac.ljust(scale, "0")) if (whole or frac) else 0
    if units == 0 and not allow_zero:
        raise InvalidAmount("amount must be greater than zero")
    if units > MAX_UNITS:
        raise InvalidAmount("amount is too large")
    return units


def to_decimal(units: int, currency: str) -> Decimal:
    """Base units back to an exact ``Decimal`` carrying exactly the asset's scale."""
    # Parsing the exact string never rounds (Decimal arithmetic would, at 28 digits).
    return Decimal(format_units(units, currency))


def format_units(units: int, currency: str) -> str:
    """Base units as the API's decimal string with exactly the asset's scale (``"10.50"``)."""
    scale = scale_of(currency)
    units = int(units)
    sign = "-" if units < 0 else ""
    digits = str(abs(units)).rjust(scale + 1, "0")
    if scale == 0:
        return sign + digits
    return f"{sign}{digits[:-scale]}.{digits[-scale:]}"
