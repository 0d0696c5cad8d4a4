"""Standard Webhooks verification (rampart.adapters.webhooks.standard): valid, forged, stale,
future-dated, rotated secrets, several signatures, malformed headers; and agreement with the
``standardwebhooks`` package both ways."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from rampart.adapters.webhooks.standard import (
    StandardWebhooksVerifier,
    WebhookSecretError,
    new_secret,
    parse_secrets,
    sign,
)
from rampart.webhooks.errors import InvalidSignature

NOW = 1_750_000_000
OLD, NEW = new_secret(), new_secret()
BODY = json.dumps({"id": "evt_1", "type": "charge.paid", "data": {"amount": "10.50"}}).encode()


def verifier(value: str, now: int = NOW) -> StandardWebhooksVerifier:
    return StandardWebhooksVerifier.from_secret(value, clock=lambda: float(now))


def reason(value: str, headers: dict[str, str], body: bytes = BODY, now: int = NOW) -> str:
    with pytest.raises(InvalidSignature) as refused:
        verifier(value, now).verify(headers, body)
    assert refused.value.status == 401
    assert refused.value.slug == "unauthorized"
    return refused.value.reason


def test_a_valid_delivery_verifies_and_names_its_id() -> None:
    headers = sign(OLD, "evt_1", BODY, timestamp=NOW)
    assert verifier(OLD).verify(headers, BODY) == "evt_1"


def test_header_names_are_case_insensitive() -> None:
    headers = {k.upper(): v for k, v in sign(OLD, "evt_1", BODY, timestamp=NOW).items()}
    assert verifier(OLD).verify(headers, BODY) == "evt_1"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: ({**h, "webhook-id": "evt_2"}, b),  # another id
        lambda h, b: ({**h, "webhook-timestamp": str(NOW + 1)}, b),  # another time
        lambda h, b: (h, b.replace(b"10.50", b"99.50")),  # another body
        lambda h, b: (h, b + b" "),  # one more byte
    ],
    ids=["id", "timestamp", "body", "trailing-byte"],
)
def test_anything_changed_after_signing_is_forged(tamper: object) -> None:
    headers, body = tamper(sign(OLD, "evt_1", BODY, timestamp=NOW), BODY)  # type: ignore[operator]
    assert reason(OLD, headers, body) == "signature"


def test_a_signature_by_another_secret_is_forged() -> None:
    assert reason(OLD, sign(new_secret(), "evt_1", BODY, timestamp=NOW)) == "signature"


@pytest.mark.parametrize(("offset", "expected"), [(-301, "stale"), (301, "future")])
def test_timestamps_beyond_five_minutes_either_way_are_refused(offset: int, expected: str) -> None:
    headers = sign(OLD, "evt_1", BODY, timestamp=NOW + offset)
    assert reason(OLD, headers) == expected


@pytest.mark.parametrize("offset", [-300, 300, 0])
def test_timestamps_within_five_minutes_pass(offset: int) -> None:
    headers = sign(OLD, "evt_1", BODY, timestamp=NOW + offset)
    assert verifier(OLD).verify(headers, BODY) == "evt_1"


def test_a_replayed_delivery_still_verifies_within_the_tolerance() -> None:
    """Replays are the inbox's to refuse (dedup by id): the signature of a replay is valid."""
    headers = sign(OLD, "evt_1", BODY, timestamp=NOW)
    assert verifier(OLD, NOW + 60).verify(headers, BODY) == "evt_1"
    assert reason(OLD, headers, now=NOW + 301) == "stale"


def test_rotation_both_secrets_pass_while_both_are_listed_and_a_removed_one_fails() -> None:
    by_old = sign(OLD, "evt_1", BODY, timestamp=NOW)
    by_new = sign(NEW, "evt_1", BODY, timestamp=NOW)
    assert reason(OLD, by_new) == "signature"  # before rotation: only the old one
    rotating = f"{NEW} {OLD}"  # newest first
    assert verifier(rotating).verify(by_old, BODY) == "evt_1"
    assert verifier(rotating).verify(by_new, BODY) == "evt_1"
    assert verifier(NEW).verify(by_new, BODY) == "evt_1"  # the old one removed
    assert reason(NEW, by_old) == "signature"


def test_several_signatures_in_the_header_any_valid_one_passes() -> None:
    good = sign(NEW, "evt_1", BODY, timestamp=NOW)["webhook-signature"]
    bogus = "v1," + base64.b64encode(b"x" * 32).decode()
    header = f"v2,whatever {bogus} not-a-signature v1,!!! {good}"
    headers = {**sign(NEW, "evt_1", BODY, timestamp=NOW), "webhook-signature": header}
    assert verifier(NEW).verify(headers, BODY) == "evt_1"
    assert reason(NEW, {**headers, "webhook-signature": f"{bogus} v2,{good.removeprefix('v1,')}"}) == "signature"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"webhook-id": ""}, "missing"),
        ({"webhook-timestamp": ""}, "missing"),
        ({"webhook-signature": "  "}, "missing"),
        ({"webhook-timestamp": "1e9"}, "malformed"),
        ({"webhook-timestamp": "-5"}, "malformed"),
        ({"webhook-timestamp": "nan"}, "malformed"),
        ({"webhook-id": "evt 1"}, "malformed"),
        ({"webhook-id": "e" * 257}, "malformed"),
        ({"webhook-signature": "v1"}, "signature"),
        ({"webhook-signature": "garbage,,,"}, "signature"),
    ],
)
def test_missing_or_malformed_headers_are_refused_never_crash(change: dict[str, str], expected: str) -> None:
    headers = {**sign(OLD, "evt_1", BODY, timestamp=NOW), **change}
    assert reason(OLD, headers) == expected


def test_a_body_that_is_not_utf8_is_verified_as_bytes() -> None:
    import hashlib
    import hmac

    body = b"\xff\xfe{}"
    key = parse_secrets(OLD)[0]
    mac = hmac.new(key, f"evt_1.{NOW}.".encode() + body, hashlib.sha256).digest()
    headers = {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(NOW),
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }
    assert verifier(OLD).verify(headers, body) == "evt_1"
    assert reason(OLD, headers, b"\xff\xfe{ }") == "signature"


def test_the_package_and_this_verifier_agree_both_ways() -> None:
    import time

    now = int(time.time())
    package = Webhook(NEW)
    signature = package.sign("msg_1", datetime.fromtimestamp(now, tz=UTC), BODY.decode())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": signature}
    assert StandardWebhooksVerifier.from_secret(NEW).verify(headers, BODY) == "msg_1"
    ours = sign(NEW, "msg_2", BODY)
    assert package.verify(BODY, ours) == json.loads(BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(OLD).verify(BODY, ours)


@pytest.mark.parametrize(
    "value",
    ["", "   ", "whsec_!!!!", "whsec_" + base64.b64encode(b"short").decode(), " ".join([new_secret()] * 9)],
    ids=["empty", "blank", "not-base64", "too-short", "too-many"],
)
def test_an_unusable_secret_value_is_a_configuration_error(value: str) -> None:
    with pytest.raises(WebhookSecretError):
        parse_secrets(value)


def test_a_secret_without_its_prefix_is_accepted() -> None:
    bare = NEW.removeprefix("whsec_")
    assert parse_secrets(bare) == parse_secrets(NEW)
