"""PIX payloads: the BR code of a charge (EMV QR "copia e cola" per the BCB's manual, with its
CRC16-CCITT). ``tax_id`` (the check digits of a CPF / CNPJ) is the backend's own validator,
re-exported so the world and the backend apply one rule."""

from __future__ import annotations

import re

from rampart.ramps.destinations import tax_id

__all__ = ["br_code", "crc16", "parse_br_code", "tax_id"]


def crc16(data: str) -> str:
    """CRC16-CCITT (polynomial 0x1021, initial 0xFFFF) as 4 upper-case hex digits."""
    crc = 0xFFFF
    for byte in data.encode():
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return f"{crc:04X}"


def _field(tag: str, value: str) -> str:
    if len(value) > 99:
        raise ValueError(f"EMV field {tag} is longer than 99 characters")
    return f"{tag}{len(value):02d}{value}"


def br_code(*, charge_id: str, amount: str, merchant: str = "BRLA DIGITAL", city: str = "SAO PAULO") -> str:
    """A dynamic BR code for ``amount`` (BRL, a decimal string with 2 places) paying ``charge_id``."""
    account = _field("00", "br.gov.bcb.pix") + _field("25", f"pix.world.rampart.local/qr/v2/{charge_id}")
    txid = re.sub(r"[^A-Za-z0-9]", "", charge_id)[:25]
    payload = (
        _field("00", "01")
        + _field("01", "12")
        + _field("26", account)
        + _field("52", "0000")
        + _field("53", "986")
        + _field("54", amount)
        + _field("58", "BR")
        + _field("59", merchant[:25])
        + _field("60", city[:15])
        + _field("62", _field("05", txid))
        + "6304"
    )
    return payload + crc16(payload)


def parse_br_code(code: str) -> dict[str, str]:
    """The top-level fields of a BR code (tag → value), its CRC checked (``ValueError`` if wrong)."""
    if len(code) < 8 or code[-8:-4] != "6304" or crc16(code[:-4]) != code[-4:].upper():
        raise ValueError("not a BR code (bad CRC)")
    fields: dict[str, str] = {}
    at = 0
    while at < len(code) - 8:
        tag, size = code[at : at + 2], int(code[at + 2 : at + 4])
        fields[tag] = code[at + 4 : at + 4 + size]
        at += 4 + size
    return fields
