"""JWT access tokens: signing, verification, key rings and their rotation."""

from __future__ import annotations

import base64
import json
import secrets
import time

import jwt
import pytest

from rampart.auth import AccessTokens, CachedKeys, InvalidToken, KeyRing, StaticKeys
from rampart.auth.tokens import ACCESS_TOKEN_SECONDS, AUDIENCE, ISSUER, decode_secret


def ring(current: str = "k1", **keys: bytes) -> KeyRing:
    return KeyRing(current=current, keys=keys or {current: secrets.token_bytes(32)})


def tokens_for(key_ring: KeyRing, **kw: object) -> AccessTokens:
    return AccessTokens(StaticKeys(key_ring), **kw)  # type: ignore[arg-type]


def claims(**over: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "usr_1",
        "role": "user",
        "iat": now,
        "nbf": now,
        "exp": now + 60,
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def test_round_trip_carries_identity_kid_and_15_minutes() -> None:
    keys = ring()
    service = tokens_for(keys)
    token = service.issue("usr_42", "business")
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256"
    assert header["kid"] == "k1"
    payload = jwt.decode(token, keys.keys["k1"], algorithms=["HS256"], audience=AUDIENCE)
    assert payload["exp"] - payload["iat"] == ACCESS_TOKEN_SECONDS == 900
    identity = service.verify(token)
    assert (identity.id, identity.role, identity.kind) == ("usr_42", "business", "user")


def test_expired_token_is_refused() -> None:
    keys = ring()
    old = tokens_for(keys, clock=lambda: time.time() - ACCESS_TOKEN_SECONDS - 1).issue("usr_1", "user")
    with pytest.raises(InvalidToken, match="ExpiredSignature"):
        tokens_for(keys).verify(old)


def test_token_from_the_future_is_refused() -> None:
    keys = ring()
    future = tokens_for(keys, clock=lambda: time.time() + 3600).issue("usr_1", "user")
    with pytest.raises(InvalidToken):
        tokens_for(keys).verify(future)


def test_forged_signature_is_refused() -> None:
    keys = ring()
    forged = jwt.encode(claims(), secrets.token_bytes(32), algorithm="HS256", headers={"kid": "k1"})
    with pytest.raises(InvalidToken, match="InvalidSignature"):
        tokens_for(keys).verify(forged)


def test_tampered_payload_is_refused() -> None:
    keys = ring()
    token = tokens_for(keys).issue("usr_1", "user")
    head, _, sig = token.split(".")
    payload = base64.urlsafe_b64encode(json.dumps(claims(role="admin")).encode()).decode().rstrip("=")
    with pytest.raises(InvalidToken):
        tokens_for(keys).verify(f"{head}.{payload}.{sig}")


def test_unknown_kid_is_refused() -> None:
    keys = ring()
    other = jwt.encode(claims(), keys.keys["k1"], algorithm="HS256", headers={"kid": "k9"})
    with pytest.raises(InvalidToken, match="unknown kid"):
        tokens_for(keys).verify(other)


def test_missing_kid_is_refused() -> None:
    keys = ring()
    token = jwt.encode(claims(), keys.keys["k1"], algorithm="HS256")
    with pytest.raises(InvalidToken):
        tokens_for(keys).verify(token)


@pytest.mark.filterwarnings("ignore::jwt.InsecureKeyLengthWarning")
@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_other_hmac_algorithms_are_refused_even_with_the_right_key(algorithm: str) -> None:
    keys = ring()
    token = jwt.encode(claims(), keys.keys["k1"], algorithm=algorithm, headers={"kid": "k1"})
    with pytest.raises(InvalidToken):
        tokens_for(keys).verify(token)


def test_alg_none_is_refused() -> None:
    keys = ring()
    unsigned = jwt.encode(claims(), None, algorithm="none", headers={"kid": "k1"})  # type: ignore[arg-type]
    with pytest.raises(InvalidToken):
        tokens_for(keys).verify(unsigned)

    # Hand-made: {"alg": "none"} with an empty signature, and with the HS256 signature kept.
    def b64(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    genuine = tokens_for(keys).issue("usr_1", "admin")
    for alg in ("none", "None", "NONE"):
        body = b64(claims(role="admin"))
        with pytest.raises(InvalidToken):
            tokens_for(keys).verify(f"{b64({'alg': alg, 'kid': 'k1', 'typ': 'JWT'})}.{body}.")
        with pytest.raises(InvalidToken):
            tokens_for(keys).verify(f"{b64({'alg': alg, 'kid': 'k1'})}.{body}.{genuine.split('.')[2]}")


def test_rs256_header_is_refused() -> None:
    keys = ring()
    token = tokens_for(keys).issue("usr_1", "user")
    head = base64.urlsafe_b64encode(json.dumps({"alg": "RS256", "kid": "k1"}).encode()).decode().rstrip("=")
    with pytest.raises(InvalidToken):
        tokens_for(keys).verify(".".join([head, *token.split(".")[1:]]))


@pytest.mark.parametrize(
    "override",
    [
        {"iss": "someone-else"},
        {"aud": "another-api"},
        {"role": "root"},
        {"role": None},
        {"sub": None},
        {"sub": ""},
        {"exp": None},
        {"iat": None},
    ],
)
def test_wrong_or_missing_claims_are_refused(override: dict[str, object]) -> None:
    keys = ring()
    token = jwt.encode(claims(**override), keys.keys["k1"], algorithm="HS256", headers={"kid": "k1"})
    with pytest.raises(InvalidToken):
        tokens_for(keys).verify(token)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x", "x" * 5000])
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(InvalidToken):
        tokens_for(ring()).verify(garbage)


def test_rotation_old_tokens_verify_new_tokens_use_new_kid_old_key_can_be_dropped() -> None:
    old_key, new_key = secrets.token_bytes(32), secrets.token_bytes(32)
    before = tokens_for(KeyRing("2025-01", {"2025-01": old_key}))
    old_token = before.issue("usr_1", "user")

    during = tokens_for(KeyRing("2025-02", {"2025-01": old_key, "2025-02": new_key}))
    assert during.verify(old_token).id == "usr_1"
    new_token = during.issue("usr_2", "lender")
    assert jwt.get_unverified_header(new_token)["kid"] == "2025-02"
    assert during.verify(new_token).role == "lender"

    after = tokens_for(KeyRing("2025-02", {"2025-02": new_key}))
    assert after.verify(new_token).id == "usr_2"
    with pytest.raises(InvalidToken):
        after.verify(old_token)


def test_cached_keys_reload_early_for_an_unknown_kid_but_not_too_often() -> None:
    now = [0.0]
    key1, key2 = secrets.token_hex(32), secrets.token_hex(32)
    secret = {"current": "a", "keys": {"a": key1}}
    loads: list[int] = []

    def load() -> str:
        loads.append(1)
        return json.dumps(secret)

    source = CachedKeys(load, max_age=300, min_reload=30, clock=lambda: now[0])
    service = AccessTokens(source)
    service.verify(service.issue("usr_1", "user"))
    assert len(loads) == 1
    # A newer container rotated: its tokens name kid "b", which we do not know yet.
    secret = {"current": "b", "keys": {"a": key1, "b": key2}}
    newer = tokens_for(KeyRing.from_json(json.dumps(secret))).issue("usr_1", "user")
    now[0] = 10.0  # too soon after the last load: no reload, refused
    with pytest.raises(InvalidToken):
        service.verify(newer)
    assert len(loads) == 1
    now[0] = 31.0  # past min_reload: the unknown kid reloads the ring, the token verifies
    assert service.verify(newer).id == "usr_1"
    assert len(loads) == 2
    now[0] = 200.0  # cached
    service.verify(newer)
    assert len(loads) == 2
    now[0] = 400.0  # past max_age
    service.verify(newer)
    assert len(loads) == 3


def test_key_ring_from_json_accepts_hex_and_base64_forms() -> None:
    raw = secrets.token_bytes(32)
    text = json.dumps(
        {
            "current": "hex",
            "keys": {
                "hex": raw.hex(),
                "b64": base64.b64encode(raw).decode(),
                "b64url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
                "explicit": "base64:" + base64.b64encode(raw).decode(),
                "explicit-hex": "hex:" + raw.hex(),
            },
        }
    )
    parsed = KeyRing.from_json(text)
    assert set(parsed.keys.values()) == {raw}
    assert raw.hex() not in repr(parsed)


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        json.dumps({"keys": {"a": "00" * 32}}),
        json.dumps({"current": "a", "keys": {}}),
        json.dumps({"current": "b", "keys": {"a": "00" * 32}}),
        json.dumps({"current": "a", "keys": {"a": "00" * 16}}),  # 16 bytes: too short for HS256
        json.dumps({"current": "a", "keys": {"a": "!!not base64!!"}}),
        json.dumps({"current": "a b", "keys": {"a b": "00" * 32}}),
        json.dumps({"current": "a", "keys": {"a": 42}}),
    ],
)
def test_key_ring_rejects_bad_secrets(text: str) -> None:
    with pytest.raises(ValueError):
        KeyRing.from_json(text)


def test_decode_secret_prefers_hex_when_it_reads_as_hex() -> None:
    assert decode_secret("00ff") == b"\x00\xff"
    assert decode_secret("base64:AP8=") == b"\x00\xff"


def test_flat_key_ring_shape_generated_by_the_cloud_secret() -> None:
    # Secrets Manager can only generate top-level keys: {"active_kid": kid, kid: secret}.
    generated = "A1b2C3d4" * 8  # 64 alphanumerics, as the CDK secret's generator makes them
    ring = KeyRing.from_json(json.dumps({"active_kid": "k1", "k1": generated, "k0": secrets.token_hex(32)}))
    assert ring.current == "k1"
    assert sorted(ring.keys) == ["k0", "k1"]
    tokens = AccessTokens(StaticKeys(ring))
    assert tokens.verify(tokens.issue("usr_1", "user")).id == "usr_1"
