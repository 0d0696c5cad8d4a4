from __future__ import annotations

from decimal import Decimal

import pytest

from rampart.core.errors import InvalidAmount, LimitExceeded, UnknownAsset
from rampart.core.money import ASSET_SCALES, MAX_UNITS, format_units, scale_of, to_decimal, to_units


@pytest.mark.parametrize(
    ("currency", "scale"),
    [
        ("USD", 2),
        ("EUR", 2),
        ("BRL", 2),
        ("ARS", 2),
        ("USDC", 7),
        ("USDT", 7),
        ("EURC", 7),
        ("XLM", 7),
        ("DOT", 10),
        ("PEN", 12),
        ("BRLA", 18),
        ("ETH", 18),
    ],
)
def test_every_asset_has_the_architecture_scale(currency: str, scale: int) -> None:
    assert scale_of(currency) == scale


def test_no_other_assets() -> None:
    assert len(ASSET_SCALES) == 12


@pytest.mark.parametrize(
    ("text", "currency", "units"),
    [
        ("10.50", "USD", 1050),
        ("10.5", "USD", 1050),
        ("10", "USD", 1000),
        ("0.01", "USD", 1),
        ("007.10", "BRL", 710),
        ("1.0000000", "USDC", 10_000_000),
        ("0.0000001", "XLM", 1),
        ("1.000000000000000001", "ETH", 1_000_000_000_000_000_001),
        ("115792089237316195423570985008687907853269984665640564039457.584007913129639935", "ETH", MAX_UNITS),
    ],
)
def test_strings_convert_exactly(text: str, currency: str, units: int) -> None:
    assert to_units(text, currency) == units


@pytest.mark.parametrize(
    "bad",
    [
        "",
        " 1",
        "1 ",
        "-1",
        "+1",
        "1e3",
        "1E3",
        "1.",
        ".5",
        "NaN",
        "nan",
        "Infinity",
        "inf",
        "0x10",
        "1,5",
        "1_000",
        "١٢٣",
        "0",
        "0.00",
        "0.000",
        "10.501",
        "0.001",
        "10.500",  # trailing zeros beyond the scale are refused too (API.md)
        "1.000",
    ],
)
def test_bad_strings_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidAmount):
        to_units(bad, "USD")


@pytest.mark.parametrize("bad", [1.5, 1, True, None, [1], {"a": 1}])
def test_non_strings_are_rejected(bad: object) -> None:
    with pytest.raises(InvalidAmount):
        to_units(bad, "USD")  # type: ignore[arg-type]


def test_more_than_uint256_is_rejected() -> None:
    with pytest.raises(LimitExceeded) as info:
        to_units(str(MAX_UNITS + 1), "USD")
    assert (info.value.slug, info.value.status, info.value.field) == ("limit-exceeded", 422, "/amount")


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("115792089237316195423570985008687907853269984665640564039457.584007913129639936", "ETH"),
        ("9" * 77, "USD"),
        ("9" * 5000, "USD"),
        ("1" + "0" * 76, "USD"),
        ("0" * 200 + "1" + "0" * 76, "USD"),
    ],
)
def test_beyond_the_ledger_limit_is_limit_exceeded(text: str, currency: str) -> None:
    with pytest.raises(LimitExceeded):
        to_units(text, currency)


def test_leading_zeros_do_not_count_against_the_limit() -> None:
    assert to_units("0" * 300 + "1", "USD") == 100


@pytest.mark.parametrize(
    ("text", "currency"), [("1.000000000", "USDC"), ("1.0000000000000000000", "ETH"), ("0.000", "USD")]
)
def test_trailing_zeros_beyond_the_scale_are_refused(text: str, currency: str) -> None:
    with pytest.raises(InvalidAmount, match="decimal places"):
        to_units(text, currency)


@pytest.mark.parametrize(
    ("value", "units"),
    [(Decimal("1.000000000"), 10_000_000), (Decimal("10.5000") * 1, 105_000_000), (Decimal("0E+100000"), None)],
)
def test_decimals_with_zero_exponent_digits_still_convert(value: Decimal, units: int | None) -> None:
    """A Decimal is the program's own value: trailing zeros of its exponent are representation."""
    if units is None:
        with pytest.raises(InvalidAmount, match="greater than zero"):
            to_units(value, "USDC")
    else:
        assert to_units(value, "USDC") == units


@pytest.mark.parametrize("value", [Decimal("1E+1000000"), Decimal(MAX_UNITS + 1), Decimal("1E+78")])
def test_huge_decimals_are_limit_exceeded(value: Decimal) -> None:
    with pytest.raises(LimitExceeded):
        to_units(value, "USD")


def test_zero_allowed_only_when_asked() -> None:
    assert to_units("0", "USD", allow_zero=True) == 0


@pytest.mark.parametrize(
    ("value", "units"),
    [(Decimal("10.50"), 1050), (Decimal("1E+2"), 10000), (Decimal("0.10"), 10), (Decimal("-0"), None)],
)
def test_decimals_convert_exactly(value: Decimal, units: int | None) -> None:
    if units is None:
        with pytest.raises(InvalidAmount):
            to_units(value, "USD")
    else:
        assert to_units(value, "USD") == units


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity"), Decimal("-1"), Decimal("0.001"), Decimal("sNaN")])
def test_bad_decimals_are_rejected(bad: Decimal) -> None:
    with pytest.raises(InvalidAmount):
        to_units(bad, "USD")


def test_unknown_currency_names_the_field() -> None:
    with pytest.raises(UnknownAsset) as info:
        to_units("1", "DOGE")
    assert info.value.field == "/currency"
    assert info.value.status == 422


@pytest.mark.parametrize(
    ("units", "currency", "text"),
    [
        (1050, "BRL", "10.50"),
        (0, "USD", "0.00"),
        (1, "ETH", "0.000000000000000001"),
        (-1050, "USD", "-10.50"),
        (10_000_000, "USDC", "1.0000000"),
        (5, "DOT", "0.0000000005"),
    ],
)
def test_format_has_exactly_the_scale(units: int, currency: str, text: str) -> None:
    assert format_units(units, currency) == text


@pytest.mark.parametrize("currency", sorted(ASSET_SCALES))
def test_round_trip_is_exact(currency: str) -> None:
    for units in (1, 7, 10 ** scale_of(currency), 123456789123456789, MAX_UNITS):
        assert to_units(format_units(units, currency), currency) == units
        assert to_decimal(units, currency) == Decimal(format_units(units, currency))
