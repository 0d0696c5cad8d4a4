"""The ramp destination, payer and address validators (rampart.ramps.destinations): known valid and
invalid CPFs, CNPJs, PIX keys, IBANs, Stellar and SS58 addresses, names; and that hostile input
(wrong types, huge strings, foreign digits) is None, never an exception."""

from __future__ import annotations

import base64
import hashlib

import pytest

from rampart.ramps.destinations import (
    IBAN_LENGTHS,
    iban,
    person_name,
    pix_key,
    ss58_address,
    stellar_account,
    tax_id,
)

NOT_STRINGS: list[object] = [None, 52998224725, 5.0, True, b"52998224725", ["52998224725"], {"v": "x"}]
HUGE = "1" * 1_000_000
VALIDATORS = [tax_id, pix_key, iban, stellar_account, ss58_address, person_name]

# --- CPF / CNPJ -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "digits"),
    [
        ("529.982.247-25", "52998224725"),
        ("52998224725", "52998224725"),
        ("111.444.777-35", "11144477735"),
        (" 111 444 777 35 ", "11144477735"),
        ("11.222.333/0001-81", "11222333000181"),
        ("11222333000181", "11222333000181"),
        ("11.222.333-0001/81", "11222333000181"),  # punctuation is ignored wherever it stands
    ],
)
def test_valid_tax_ids_are_their_digits(value: str, digits: str) -> None:
    assert tax_id(value) == digits


@pytest.mark.parametrize(
    "value",
    [
        "529.982.247-24",  # last check digit wrong
        "529.982.247-15",  # first check digit wrong
        "11.222.333/0001-80",
        "11.222.333/0001-91",
        "000.000.000-00",  # repeated digits pass the arithmetic but are no CPF
        "111.111.111-11",
        "99999999999",
        "00.000.000/0000-00",
        "11111111111111",
        "5299822472",  # 10 digits
        "529982247250",  # 12 digits
        "",
        "...-/",
        "529.982.247-2a",
        "529,982,247-25",  # commas are not tax-id punctuation
        "529.982.247-25\u00a0",  # a non-breaking space is not ignored
        "５２９９８２２４７２５",  # fullwidth digits
        "٥٢٩٩٨٢٢٤٧٢٥",  # Arabic-Indic digits: str.isdigit() would say yes
        "52998224725²",
    ],
)
def test_invalid_tax_ids_are_none(value: str) -> None:
    assert tax_id(value) is None


# --- PIX keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("529.982.247-25", ("cpf", "52998224725")),
        ("11144477735", ("cpf", "11144477735")),
        ("11.222.333/0001-81", ("cnpj", "11222333000181")),
        ("11222333000181", ("cnpj", "11222333000181")),
        ("user@example.com", ("email", "user@example.com")),
        ("Ana.Souza+pix@Example.COM.br", ("email", "Ana.Souza+pix@example.com.br")),  # domain only lower-cased
        ("  user@example.com ", ("email", "user@example.com")),
        ("+5511999999999", ("phone", "+5511999999999")),
        ("+55 (11) 99999-9999", ("phone", "+5511999999999")),
        ("+55 21 3333-4444", ("phone", "+552133334444")),  # a landline: 10 digits
        ("+55 (99) 98888-7777", ("phone", "+5599988887777")),
        ("123e4567-e89b-12d3-a456-426614174000", ("random", "123e4567-e89b-12d3-a456-426614174000")),
        ("123E4567-E89B-12D3-A456-426614174000", ("random", "123e4567-e89b-12d3-a456-426614174000")),
        ("123E4567E89B12D3A456426614174000", ("random", "123e4567-e89b-12d3-a456-426614174000")),
        ("12345678-1234-1234-1234-123456789012", ("random", "12345678-1234-1234-1234-123456789012")),
    ],
)
def test_pix_keys_of_each_kind(value: str, expected: tuple[str, str]) -> None:
    assert pix_key(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "garbage",
        "529.982.247-24",  # a CPF with a wrong check digit: not a phone either
        "11999999999",  # 11 digits, not a valid CPF: a phone needs its +55
        "11.222.333/0001-80",
        "111.111.111-11",
        "user@",
        "@example.com",
        "user@example",  # one label
        "user@@example.com",
        "a@b@example.com",
        "user@exa_mple.com",
        "user@-example.com",
        "user@example-.com",
        "user@example..com",
        "user@example.c0m",
        "user.@example.com",
        ".user@example.com",
        "us..er@example.com",
        "us er@example.com",
        "usér@example.com",
        "user@exämple.com",
        "a" * 65 + "@example.com",  # local part over 64
        "a" * 60 + "@example-domain.com",  # 79 characters: over the DICT's 77
        "+5511999999",  # 9 digits after +55
        "+55119999999999",  # 12 digits
        "+5501999999999",  # DDD below 11
        "+5510999999999",
        "+1 415 555 0100",
        "+55 11 99999.9999",  # dots are no phone punctuation
        "+55 11 9999x-9999",
        "+",
        "123e4567-e89b-12d3-a456-42661417400",  # a hex digit short
        "123e4567-e89b12d3-a456-426614174000",  # hyphens in some places only
        "g23e4567-e89b-12d3-a456-426614174000",
        "{123e4567-e89b-12d3-a456-426614174000}",
        "urn:uuid:123e4567-e89b-12d3-a456-426614174000",
    ],
)
def test_garbage_pix_keys_are_none(value: str) -> None:
    assert pix_key(value) is None


def test_email_keys_stop_at_77_characters() -> None:
    value = "a" * 50 + "@" + "d" * 22 + ".com"
    assert len(value) == 77
    assert pix_key(value) == ("email", value)
    longer = "a" * 50 + "@" + "d" * 23 + ".com"
    assert pix_key(longer) is None


# --- IBAN -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "compact"),
    [
        ("DE89 3704 0044 0532 0130 00", "DE89370400440532013000"),
        ("GB82 WEST 1234 5698 7654 32", "GB82WEST12345698765432"),
        ("gb82 west 1234 5698 7654 32", "GB82WEST12345698765432"),
        ("FR14 2004 1010 0505 0001 3M02 606", "FR1420041010050500013M02606"),
        ("ES91 2100 0418 4502 0005 1332", "ES9121000418450200051332"),
        ("IT60 X054 2811 1010 0000 0123 456", "IT60X0542811101000000123456"),
        ("NL91ABNA0417164300", "NL91ABNA0417164300"),
        ("BE68 5390 0754 7034", "BE68539007547034"),
        ("PT50 0002 0123 1234 5678 9015 4", "PT50000201231234567890154"),
        ("AT61 1904 3002 3457 3201", "AT611904300234573201"),
        ("IE29 AIBK 9311 5212 3456 78", "IE29AIBK93115212345678"),
        ("LU28 0019 4006 4475 0000", "LU280019400644750000"),
        ("FI21 1234 5600 0007 85", "FI2112345600000785"),
        ("NO93 8601 1117 947", "NO9386011117947"),  # the shortest: 15
        ("MT84 MALT 0110 0001 2345 MTLC AST0 01S", "MT84MALT011000012345MTLCAST001S"),
        ("BR15 0000 0000 0000 1093 2840 814P2", "BR1500000000000010932840814P2"),  # not in the table: generic rule
    ],
)
def test_valid_ibans_are_compact_and_upper_case(value: str, compact: str) -> None:
    assert iban(value) == compact


@pytest.mark.parametrize(
    "value",
    [
        "DE89 3704 0044 0532 0130 01",  # one digit changed
        "DE88 3704 0044 0532 0130 00",  # a check digit changed
        "GB82 WEST 1234 5698 7654 33",
        "DE89 3704 0044 0532 0130 0",  # wrong length for DE (21)
        "DE89 3704 0044 0532 0130 000",  # 23
        "DE",
        "",
        "89DE 3704 0044 0532 0130 00",
        "DE8937040044053201300!",
        "DE89-3704-0044-0532-0130-00",  # only spaces are ignored
        "XX00 1234 5678 9012",  # check digits 00 are never issued
        "XX12 3456 7890",  # under 15
        "XX12" + "3" * 31,  # over 34
        "DE89 3704 0044 0532 0130 0\u0660",  # an Arabic-Indic zero
        "ＤＥ89 3704 0044 0532 0130 00",  # fullwidth letters
    ],
)
def test_invalid_ibans_are_none(value: str) -> None:
    assert iban(value) is None


def _mod97(compact: str) -> int:
    return int("".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4])) % 97


def test_check_digits_00_and_01_are_refused_though_the_arithmetic_passes() -> None:
    # 00 and 01 are congruent to 97 and 98 mod 97: for an account whose real check digits are 97
    # (or 98), 00 (or 01) passes mod 97 too, yet no IBAN is ever issued with them.
    found = set()
    for n in range(10_000):
        body = f"{n:016d}"
        for cc in (97, 98):
            real, fake = f"XX{cc}{body}", f"XX{cc - 97:02d}{body}"
            if _mod97(real) == 1:
                assert iban(real) == real
                assert _mod97(fake) == 1
                assert iban(fake) is None
                found.add(cc)
        if found == {97, 98}:
            break
    assert found == {97, 98}
    assert iban("XX99" + "0" * 16) is None


def test_the_iban_table_covers_the_brief_countries() -> None:
    expected = {"DE": 22, "FR": 27, "ES": 24, "IT": 27, "NL": 18, "BE": 16, "PT": 25, "AT": 20, "IE": 22, "LU": 20}
    expected["FI"] = 18
    assert {k: IBAN_LENGTHS[k] for k in expected} == expected


# --- Stellar ----------------------------------------------------------------------------------

STELLAR = "GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN7"


def _crc16_xmodem(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _strkey(version: int, payload: bytes) -> str:
    body = bytes([version]) + payload
    return base64.b32encode(body + _crc16_xmodem(body).to_bytes(2, "little")).decode().rstrip("=")


def test_valid_stellar_accounts_are_themselves() -> None:
    assert stellar_account(STELLAR) == STELLAR
    assert stellar_account("GAB2CB576PHBBPQ5ODORRZ2LYCMWPZGWGCN2KDK7DXOIMZASKUY3QZ6Q") is not None
    built = _strkey(6 << 3, bytes(range(32)))
    assert built.startswith("G")
    assert stellar_account(built) == built


@pytest.mark.parametrize(
    "value",
    [
        STELLAR[:-1] + "6",  # the checksum's last character changed
        STELLAR[:10] + ("B" if STELLAR[10] != "B" else "C") + STELLAR[11:],
        STELLAR.lower(),
        STELLAR[:-1],
        STELLAR + "A",
        " " + STELLAR[1:],
        "SAAACAQDAQCQMBYIBEFAWDANBYHRAEISCMKBKFQXDAMRUGY4DUPB6NKI",  # a secret seed
        _strkey(18 << 3, bytes(32)),  # a seed built with a valid checksum
        _strkey(6 << 3, bytes(32))[:-1] + "1",  # "1" is not base32
        "G" + "=" * 55,
        "",
    ],
)
def test_invalid_stellar_accounts_are_none(value: str) -> None:
    assert stellar_account(value) is None


# --- SS58 -------------------------------------------------------------------------------------

ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"  # Alice, prefix 42
ALICE_KEY = bytes.fromhex("d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d")
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, digit = divmod(number, 58)
        out = B58[digit] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def _ss58(prefix_bytes: bytes, key: bytes = ALICE_KEY) -> str:
    body = prefix_bytes + key
    return _b58encode(body + hashlib.blake2b(b"SS58PRE" + body, digest_size=64).digest()[:2])


def _full_prefix(prefix: int) -> bytes:
    return bytes([((prefix & 0b1111_1100) >> 2) | 0b0100_0000, (prefix >> 8) | ((prefix & 0b11) << 6)])


@pytest.mark.parametrize(
    "value",
    [
        ALICE,
        "15oF4uVJwmo4TdGW7VfQxNLavjCXviqxT9S1MgbjMNHr6Sp5",  # Alice on Polkadot (0)
        "HNZata7iMYWmk5RvZRTiAsSDhV8366zq2YGb3tLH5Upf74F",  # Alice on Kusama (2)
        "6ftBYTotU4mmCuvUqJvk6qEP7uCzzz771pTMoxcbHFb9rcPv",  # Alice on Pendulum (56)
        "vji5kpxBaPKwct6PAdHiJUPCU1hqBEAPaLMF59sXAjn4NeEaJ",  # prefix 1000: the full form
        "yNa8JpqfFB3q8A29rCwSgxvdU94ufJw2yKKxDgznS5m1PoFvn",  # prefix 16383, the last
    ],
)
def test_valid_ss58_addresses_are_themselves(value: str) -> None:
    assert ss58_address(value) == value


def test_our_test_encoder_agrees_with_the_known_addresses() -> None:
    assert _ss58(bytes([42])) == ALICE
    assert _ss58(_full_prefix(1000)) == "vji5kpxBaPKwct6PAdHiJUPCU1hqBEAPaLMF59sXAjn4NeEaJ"
    assert ss58_address(_ss58(_full_prefix(64))) is not None
    assert ss58_address(_ss58(bytes([0]), bytes(32))) is not None  # leading zero bytes: leading "1"s


@pytest.mark.parametrize(
    "value",
    [
        ALICE[:-1] + ("Z" if ALICE[-1] != "Z" else "Y"),  # one character changed
        ALICE[:20] + ("a" if ALICE[20] != "a" else "b") + ALICE[21:],
        ALICE[:-1],
        ALICE + "1",
        "0" + ALICE[1:],  # "0" is not base58
        "I" + ALICE[1:],
        "",
        _ss58(bytes([46])),  # reserved prefixes
        _ss58(bytes([47])),
        _ss58(_full_prefix(42)),  # a prefix below 64 in the two-byte form: not canonical
        _ss58(bytes([200])),  # a first byte of 128 or more is no prefix
        _ss58(bytes([42]), ALICE_KEY[:31]),  # a 31-byte key
        _ss58(bytes([42]), ALICE_KEY + b"\x02"),  # a 33-byte key (ECDSA)
        _ss58(bytes([42]), b"\x01\x02\x03\x04"),  # an account index
    ],
)
def test_invalid_ss58_addresses_are_none(value: str) -> None:
    assert ss58_address(value) is None


# --- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Ana Souza", "Ana Souza"),
        ("  Ana Souza\t", "Ana Souza"),
        ("João da Conceição", "João da Conceição"),
        ("O'Brien-Müller", "O'Brien-Müller"),
        ("李小龍", "李小龍"),
        ("A", "A"),
        ("x" * 140, "x" * 140),
        ("BRLA DIGITAL LTDA.", "BRLA DIGITAL LTDA."),
    ],
)
def test_valid_names_are_trimmed(value: str, expected: str) -> None:
    assert person_name(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "x" * 141,
        "Ana\nSouza",
        "Ana\x00Souza",
        "Ana\x1bSouza",
        "Ana\u202eazuoS",  # a right-to-left override
        "Ana\ud800",  # a lone surrogate
        "Ana\u00a0Souza",  # non-breaking space inside
    ],
)
def test_invalid_names_are_none(value: str) -> None:
    assert person_name(value) is None


# --- hostile input ----------------------------------------------------------------------------


@pytest.mark.parametrize("validator", VALIDATORS)
@pytest.mark.parametrize("value", NOT_STRINGS)
def test_non_strings_are_none(validator: object, value: object) -> None:
    assert callable(validator)
    assert validator(value) is None


@pytest.mark.parametrize("validator", VALIDATORS)
@pytest.mark.parametrize(
    "value",
    [HUGE, " " * 1_000_000 + "Ana", "@" * 1_000_000, "\x00" * 10_000, "+55" + "9" * 100_000, "\ud800" * 1000],
)
def test_hostile_strings_are_none_not_an_exception(validator: object, value: str) -> None:
    assert callable(validator)
    assert validator(value) is None
