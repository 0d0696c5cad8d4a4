"""Money: assets, their ledger scales, and exact conversion between decimal strings and base units.

Amounts live as decimal strings in JSON, ``Decimal`` in Python and integer base units in
PostgreSQL. Nothing here ever touches a float.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final

from rampart.core.errors import InvalidAmount, LimitExceeded, UnknownAsset

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

_MAX_DIGITS: Final[int] = len(str(MAX_UNITS))  # 78

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
    asset's scale (trailing zeros count: ``"1.000"`` is not a USD amount), zero (unless
    ``allow_zero``), and anything above :data:`MAX_UNITS` (:class:`LimitExceeded`).

    A ``Decimal`` is the program's own value, not a client's text: its trailing zeros beyond
    the scale are representation (``Decimal("1.000") * 1``), not stated precision, and are dropped
    exactly (``normalize`` would round at 28 digits, so the digits are trimmed by hand).
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
        _sign, digits, given_exponent = amount.as_tuple()
        assert isinstance(given_exponent, int)
        exponent: int = given_exponent
        text = "".join(map(str, digits)).lstrip("0") or "0"
        if text == "0":
            exponent = min(exponent, 0)  # 0E+1000000 is zero: never build its digits
        elif exponent > _MAX_DIGITS:  # beyond any uint256 whatever the digits: never build the string
            raise LimitExceeded("amount is beyond what the ledger holds (2^256 - 1 base units)")
        if exponent >= 0:
            whole, frac = text + "0" * exponent, ""
        else:
            text = text.rjust(-exponent + 1, "0")
            whole, frac = text[:exponent], text[exponent:].rstrip("0")
    else:
        raise InvalidAmount(f"amount must be a decimal string, not {type(amount).__name__}")
    if len(frac) > scale:
        raise InvalidAmount(f"{currency} allows at most {scale} decimal places")
    whole = whole.lstrip("0")
    if len(whole) + scale > _MAX_DIGITS:  # decided on the length first: int() of a huge string is costly
        raise LimitExceeded("amount is beyond what the ledger holds (2^256 - 1 base units)")
    units = int(whole + frac.ljust(scale, "0")) if (whole or frac) else 0
    if units == 0 and not allow_zero:
        raise InvalidAmount("amount must be greater than zero")
    if units > MAX_UNITS:
        raise LimitExceeded("amount is beyond what the ledger holds (2^256 - 1 base units)")
    return units


def to_decimal(units: int, currency: str) -> Decimal:
    """Base units back to an exact ``Decimal`` carrying exactly the asset's scale."""
    # Parsing the exact string never rounds (Decimal arithmetic would, at 28 digits).
    return Decimal(format_units(units, currency))


def format_amount(amount: Decimal, currency: str) -> str:
    """An exact amount as the API's decimal string with exactly the asset's scale (``10.5`` →
    ``"10.50"``); one with more decimals than the scale is refused, never rounded."""
    return format_units(to_units(amount, currency, allow_zero=True), currency)


def format_units(units: int, currency: str) -> str:
    """Base units as the API's decimal string with exactly the asset's scale (``"10.50"``)."""
    scale = scale_of(currency)
    units = int(units)
    sign = "-" if units < 0 else ""
    digits = str(abs(units)).rjust(scale + 1, "0")
    if scale == 0:
        return sign + digits
    return f"{sign}{digits[:-scale]}.{digits[-scale:]}"
