"""Validators for what a client names as a ramp's destination, payer or signing account (API.md,
"Ramps": "Destinations and payer", "Signing accounts").

Pure Python on purpose (stdlib only, no ``eth_utils``, ``base58`` or chain SDK): the service
validates a registration before it touches any adapter, and this module stays importable from the
core layer and from the world alike (:mod:`infra.world.brcode` re-exports :func:`tax_id`).

Every validator takes the raw JSON value (``object``: a client may send a number, a list, null)
and returns the normalized value, or ``None`` when it is not acceptable; the service maps ``None``
to a 422 naming the field. None of them raises on any input: a non-``str`` is ``None``, and the
length is bounded before any other work so a hostile megabyte costs nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Final, Literal

PixKeyKind = Literal["cpf", "cnpj", "email", "phone", "random"]

# Bounds checked before any parsing: generous for the legitimate forms (a punctuated CNPJ is 18
# characters, a spaced IBAN 42, an SS58 address 47–49) and small enough that nothing is costly.
_MAX_TAX_ID_INPUT: Final = 64
_MAX_PIX_KEY_INPUT: Final = 128
_MAX_IBAN_INPUT: Final = 64
_MAX_ADDRESS_INPUT: Final = 64
_MAX_NAME_INPUT: Final = 1024

# ---------------------------------------------------------------------------------------------
# CPF / CNPJ


# The punctuation a tax id may carry (dots, dashes, slashes, ASCII whitespace). re.ASCII keeps
# ``\s`` to ASCII: a non-breaking space is not silently dropped.
_TAX_ID_PUNCTUATION: Final = re.compile(r"[.\-/\s]", re.ASCII)
_DIGITS: Final = re.compile(r"[0-9]+", re.ASCII)


def _cpf_ok(digits: str) -> bool:
    """The CPF rule (Receita Federal): 11 digits whose last two are mod-11 check digits over the
    first 9 (weights 10…2) and first 10 (weights 11…2); a repeated digit (000…, 111…) passes the
    arithmetic but is no CPF, so it is refused."""
    if len(digits) != 11 or len(set(digits)) == 1:
        return False
    for size in (9, 10):
        total = sum(int(d) * w for d, w in zip(digits[:size], range(size + 1, 1, -1), strict=True))
        if (total * 10 % 11) % 10 != int(digits[size]):
            return False
    return True


def _cnpj_ok(digits: str) -> bool:
    """The CNPJ rule (Receita Federal): 14 digits whose last two are mod-11 check digits over the
    first 12 (weights 5…2, 9…2) and first 13 (weights 6…2, 9…2), a remainder below 2 giving 0; a
    repeated digit is refused as for a CPF."""
    if len(digits) != 14 or len(set(digits)) == 1:
        return False
    weights = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]
    for size, w in ((12, weights), (13, [6, *weights])):
        rest = sum(int(d) * k for d, k in zip(digits[:size], w, strict=True)) % 11
        if (0 if rest < 2 else 11 - rest) != int(digits[size]):
            return False
    return True


def _tax_id_digits(value: str) -> str | None:
    """The ASCII digits of ``value`` once the tax-id punctuation is dropped, or None if anything
    else is left (``str.isdigit`` would let "²" or Arabic-Indic digits through)."""
    digits = _TAX_ID_PUNCTUATION.sub("", value)
    return digits if _DIGITS.fullmatch(digits) else None


def tax_id(value: object) -> str | None:
    """A CPF (11 digits) or CNPJ (14 digits) with valid check digits → its digits; else None.

    Dots, dashes, slashes and ASCII whitespace are ignored wherever they stand ("529.982.247-25",
    "11.222.333/0001-81", bare digits); any other character, a wrong length, a wrong check digit or
    a repeated-digit number (000.000.000-00) is refused. This is the one copy of the rule: the
    world's PIX simulator imports it from here.
    """
    if not isinstance(value, str) or len(value) > _MAX_TAX_ID_INPUT:
        return None
    digits = _tax_id_digits(value)
    if digits is None:
        return None
    return digits if _cpf_ok(digits) or _cnpj_ok(digits) else None


# ---------------------------------------------------------------------------------------------
# PIX keys

_EMAIL_MAX: Final = 77  # the BCB's DICT limit for an e-mail key
# RFC 5322 dot-atom for the local part (ASCII only: the DICT does not take internationalized
# addresses) and RFC 1035 labels for the domain, at least two, the last one alphabetic.
_EMAIL_LOCAL: Final = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*", re.ASCII)
_DOMAIN_LABEL: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", re.ASCII)
_TLD: Final = re.compile(r"[A-Za-z]{2,63}", re.ASCII)
_PHONE_PUNCTUATION: Final = re.compile(r"[\s\-()]", re.ASCII)
_BR_PHONE: Final = re.compile(r"\+55([1-9][0-9])([0-9]{8,9})", re.ASCII)
_UUID: Final = re.compile(
    r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|[0-9A-Fa-f]{32}", re.ASCII
)


def _email(value: str) -> str | None:
    """An e-mail key: at most 77 characters, one ``@``, a dot-atom local part of 1–64 characters
    and a domain of DNS labels with an alphabetic TLD; the domain lower-cased (case-insensitive
    by RFC 5321), the local part kept as written (case-sensitive by the same RFC)."""
    if len(value) > _EMAIL_MAX or value.count("@") != 1:
        return None
    local, domain = value.split("@")
    if not 1 <= len(local) <= 64 or not _EMAIL_LOCAL.fullmatch(local):
        return None
    labels = domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        return None
    if not _TLD.fullmatch(labels[-1]):
        return None
    return f"{local}@{domain.lower()}"


def _phone(value: str) -> str | None:
    """A phone key in the DICT's form ``+55`` + DDD (11–99) + an 8- or 9-digit number, spaces,
    dashes and parentheses ignored ("+55 (11) 99999-9999" → "+5511999999999"). The ``+55`` is
    required: a bare digit string is read as a CPF/CNPJ only, so a mistyped CPF is refused rather
    than turned into a stranger's phone key."""
    compact = _PHONE_PUNCTUATION.sub("", value)
    match = _BR_PHONE.fullmatch(compact)
    if match is None or int(match.group(1)) < 11:
        return None
    return compact


def _random_key(value: str) -> str | None:
    """A random key (EVP): a UUID of 32 hex digits, any case, with hyphens in all four 8-4-4-4-12
    places or in none → lower-case and hyphenated, the form the DICT stores."""
    if not _UUID.fullmatch(value):
        return None
    hexes = value.replace("-", "").lower()
    return f"{hexes[:8]}-{hexes[8:12]}-{hexes[12:16]}-{hexes[16:20]}-{hexes[20:]}"


def pix_key(value: object) -> tuple[str, str] | None:
    """A PIX key → ``(kind, normalized)``, kind one of ``cpf``, ``cnpj``, ``email``, ``phone``,
    ``random``; else None. Surrounding whitespace is ignored.

    The kinds cannot be confused: an e-mail has an ``@``, a phone starts with ``+55``, a random
    key is a UUID (its hyphens or hex letters set it apart, and 32 digits are no tax id), and what
    is left must be a CPF or CNPJ with valid check digits (punctuation allowed → digits), so an
    11-digit string that is a valid CPF is a CPF. See :func:`_email`, :func:`_phone`,
    :func:`_random_key` and :func:`tax_id` for each rule.
    """
    if not isinstance(value, str) or len(value) > _MAX_PIX_KEY_INPUT:
        return None
    text = value.strip()
    if not text:
        return None
    if "@" in text:
        email = _email(text)
        return ("email", email) if email is not None else None
    if text.startswith("+"):
        phone = _phone(text)
        return ("phone", phone) if phone is not None else None
    random_key = _random_key(text)
    if random_key is not None:
        return ("random", random_key)
    digits = _tax_id_digits(text)
    if digits is not None and _cpf_ok(digits):
        return ("cpf", digits)
    if digits is not None and _cnpj_ok(digits):
        return ("cnpj", digits)
    return None


# ---------------------------------------------------------------------------------------------
# IBAN

# ISO 13616 lengths from SWIFT's IBAN registry, for the SEPA countries; any other country gets
# the generic rule (15–34 characters and the checksum).
IBAN_LENGTHS: Final[dict[str, int]] = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
    "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GI": 23, "GR": 27, "HR": 21, "HU": 28,
    "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31,
    "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
    "VA": 22,
}  # fmt: skip
_IBAN: Final = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}", re.ASCII)


def iban(value: object) -> str | None:
    """An IBAN (ISO 13616) → compact and upper-case ("DE89 3704 …" → "DE8937040044…"); else None.

    Spaces are ignored and letters upper-cased; then: a country code, two check digits, 15–34
    alphanumerics in all, the registry's exact length for a country in :data:`IBAN_LENGTHS`, and
    the ISO 7064 MOD 97-10 checksum (the number with its first four characters moved to the end
    and letters as 10–35 is 1 mod 97). Check digits 00, 01 and 99 are refused: a real IBAN never
    has them, and 00/01 would pass the arithmetic in place of 97/98.
    """
    if not isinstance(value, str) or len(value) > _MAX_IBAN_INPUT or not value.isascii():
        return None
    compact = value.replace(" ", "").upper()
    if not _IBAN.fullmatch(compact):
        return None
    expected = IBAN_LENGTHS.get(compact[:2])
    if expected is not None and len(compact) != expected:
        return None
    if compact[2:4] in ("00", "01", "99"):
        return None
    rearranged = compact[4:] + compact[:4]
    number = int("".join(str(int(ch, 36)) for ch in rearranged))
    return compact if number % 97 == 1 else None


# ---------------------------------------------------------------------------------------------
# Stellar

_STRKEY_ACCOUNT_VERSION: Final = 6 << 3  # "G": an ed25519 public key (SEP-23)
_STRKEY_ACCOUNT_LENGTH: Final = 56


def _crc16_xmodem(data: bytes) -> int:
    """CRC16-XModem (polynomial 0x1021, initial 0), the StrKey checksum."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def stellar_account(value: object) -> str | None:
    """A Stellar account id → itself; else None.

    The StrKey rule (SEP-23) for an ed25519 public key: 56 characters of upper-case RFC 4648
    base32 (no padding) decoding to 35 bytes = version byte ``6 << 3`` ("G") + 32-byte key +
    CRC16-XModem of the first 33 bytes, little-endian. Muxed (``M…``), seeds (``S…``) and
    lower case are refused; the address is returned exactly as given, since blueprints echo it.
    """
    if not isinstance(value, str) or len(value) != _STRKEY_ACCOUNT_LENGTH or not value.isascii():
        return None
    try:
        raw = base64.b32decode(value)  # upper case only; 56 characters need no padding
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 35 or raw[0] != _STRKEY_ACCOUNT_VERSION:
        return None
    return value if _crc16_xmodem(raw[:33]) == int.from_bytes(raw[33:], "little") else None


# ---------------------------------------------------------------------------------------------
# Substrate SS58

_BASE58_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX: Final = {ch: i for i, ch in enumerate(_BASE58_ALPHABET)}
_SS58_PREFIX: Final = b"SS58PRE"
_SS58_RESERVED: Final = frozenset({46, 47})  # reserved in the SS58 registry; Substrate refuses them


def _b58decode(text: str) -> bytes | None:
    """Bitcoin-alphabet base58 → bytes (each leading "1" a zero byte); None on a foreign char."""
    number = 0
    for ch in text:
        digit = _BASE58_INDEX.get(ch)
        if digit is None:
            return None
        number = number * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\x00" * zeros + body


def _ss58_prefix(raw: bytes) -> tuple[int, int] | None:
    """(prefix, its length in bytes) from the first bytes of a decoded SS58 address.

    First byte 0–63: the simple form, the byte is the prefix. 64–127: the full form over two bytes
    (the prefix's bits 2–7 in the first byte's low 6 bits, bits 0–1 in the second byte's top 2,
    bits 8–13 in its low 6). 128–255: not SS58. A prefix below 64 written in the full form is
    refused: each prefix has one encoding.
    """
    if not raw:
        return None
    first = raw[0]
    if first < 64:
        return first, 1
    if first >= 128 or len(raw) < 2:
        return None
    second = raw[1]
    prefix = ((first & 0b0011_1111) << 2) | (second >> 6) | ((second & 0b0011_1111) << 8)
    return (prefix, 2) if prefix >= 64 else None


def ss58_address(value: object) -> str | None:
    """A Substrate SS58 address of a 32-byte public key, any network prefix → itself; else None.

    The SS58 rule: base58 decoding to prefix (1 byte for 0–63, 2 bytes for 64–16383) + 32-byte
    key + 2 checksum bytes, the checksum being the first 2 bytes of
    blake2b-512(b"SS58PRE" + prefix bytes + key). Prefixes 46 and 47 (reserved), account
    indices and 33-byte ECDSA keys are refused; the address is returned exactly as given.
    """
    if not isinstance(value, str) or not 1 <= len(value) <= _MAX_ADDRESS_INPUT:
        return None
    raw = _b58decode(value)
    if raw is None:
        return None
    parsed = _ss58_prefix(raw)
    if parsed is None:
        return None
    prefix, prefix_length = parsed
    if prefix in _SS58_RESERVED or len(raw) != prefix_length + 32 + 2:
        return None
    checksum = hashlib.blake2b(_SS58_PREFIX + raw[:-2], digest_size=64).digest()[:2]
    return value if checksum == raw[-2:] else None


# ---------------------------------------------------------------------------------------------
# Names

_NAME_MAX: Final = 140


def person_name(value: object) -> str | None:
    """A person's or company's name → trimmed; else None.

    1–140 characters once surrounding whitespace is trimmed, every one printable
    (``str.isprintable``: no control characters, no bidi overrides or other format characters, no
    lone surrogates, no line breaks; inner ASCII spaces are fine). Letters of any script are
    kept as written.
    """
    if not isinstance(value, str) or len(value) > _MAX_NAME_INPUT:
        return None
    name = value.strip()
    if not 1 <= len(name) <= _NAME_MAX or not name.isprintable():
        return None
    return name
