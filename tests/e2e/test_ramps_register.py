"""Registering a ramp over HTTP (API.md "Ramps", docs/ramps.md "Registration"): the quote's state
(expired, consumed, another's, unknown), destinations, payers and signing accounts refused with
the field that is wrong, ephemerals that are not fresh or are in use, a refusal that leaves the
quote usable, and concurrent registrations sharing a quote or an ephemeral (one wins)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.e2e.ramps import PAYER, PIX_DESTINATION, Keys, Ramps, age_quote, fresh_key, problem
from tests.support.events import Reply

pytestmark = pytest.mark.xdist_group("ramps")


def _bad_checksum(address: str) -> str:
    """``address`` (EIP-55) with the case of its first letter flipped: a checksum that fails."""
    index = next(i for i, c in enumerate(address) if i > 1 and c.isalpha())
    return address[:index] + address[index].swapcase() + address[index + 1 :]


def _checksummed_with_letters() -> str:
    """An EIP-55 address with two letters at least, so flipping one leaves its case mixed."""
    while True:
        address = fresh_key().address
        if sum(c.isalpha() for c in address[2:]) >= 2:
            return address


@pytest.fixture(scope="module")
def erin(twin_url: str) -> Ramps:
    return Ramps(twin_url)


@pytest.fixture(scope="module")
def quotes(erin: Ramps) -> dict[str, dict[str, Any]]:
    """One quote per corridor for the malformed registrations (refused before anything is written,
    so none of them consumes it; the last test registers both correctly)."""
    return {"on": erin.quote("on"), "off": erin.quote("off")}


def _eph(address: str) -> dict[str, str]:
    return {"network": "base", "address": address, "role": "ephemeral"}


def _user(address: str) -> dict[str, str]:
    return {"network": "base", "address": address, "role": "user"}


# (kind, case id, how the body changes given the ramp's fresh keys, the fields named in order).
Change = Callable[[dict[str, Any], Keys], None]
ADDRESS = _checksummed_with_letters()
MALFORMED: list[tuple[str, str, Change, list[str]]] = [
    ("on", "short-address", lambda b, k: b.update(destination={"address": "0x1234"}), ["/destination/address"]),
    (
        "on",
        "not-hex",
        lambda b, k: b.update(destination={"address": "0x" + "g" * 40}),
        ["/destination/address"],
    ),
    (
        "on",
        "bad-checksum",
        lambda b, k: b.update(destination={"address": _bad_checksum(ADDRESS)}),
        ["/destination/address"],
    ),
    ("on", "no-address", lambda b, k: b.update(destination={}), ["/destination/address"]),
    (
        "on",
        "pix-destination",
        lambda b, k: b.update(destination=dict(PIX_DESTINATION)),
        ["/destination/pix_key", "/destination/tax_id", "/destination/name", "/destination/address"],
    ),
    (
        "on",
        "destination-extra",
        lambda b, k: b.update(destination={"address": ADDRESS, "memo": "hi"}),
        ["/destination/memo"],
    ),
    ("on", "no-payer", lambda b, k: b.pop("payer"), ["/payer"]),
    (
        "on",
        "payer-bad-tax-id",
        lambda b, k: b.update(payer={**PAYER, "tax_id": "529.982.247-24"}),
        ["/payer/tax_id"],
    ),
    ("on", "payer-no-name", lambda b, k: b.update(payer={"tax_id": PAYER["tax_id"]}), ["/payer/name"]),
    ("on", "payer-blank-name", lambda b, k: b.update(payer={**PAYER, "name": "   "}), ["/payer/name"]),
    ("on", "payer-control-name", lambda b, k: b.update(payer={**PAYER, "name": "Maria\u202e"}), ["/payer/name"]),
    ("on", "payer-extra", lambda b, k: b.update(payer={**PAYER, "email": "m@example.com"}), ["/payer/email"]),
    ("on", "extra-field", lambda b, k: b.update(memo="hi"), ["/memo"]),
    ("on", "no-ephemeral", lambda b, k: b.update(signing_accounts=[]), ["/signing_accounts"]),
    (
        "on",
        "two-ephemerals",
        lambda b, k: b.update(signing_accounts=[_eph(k.ephemeral.address), _eph(fresh_key().address)]),
        ["/signing_accounts/1"],
    ),
    (
        "on",
        "user-on-an-on-ramp",
        lambda b, k: b.update(signing_accounts=[_eph(k.ephemeral.address), _user(fresh_key().address)]),
        ["/signing_accounts/1"],
    ),
    (
        "on",
        "ephemeral-on-stellar",
        lambda b, k: b.update(signing_accounts=[{**_eph(k.ephemeral.address), "network": "stellar"}]),
        ["/signing_accounts/0"],
    ),
    (
        "on",
        "ephemeral-bad-address",
        lambda b, k: b.update(signing_accounts=[_eph(_bad_checksum(ADDRESS))]),
        ["/signing_accounts/0/address"],
    ),
    (
        "on",
        "several-at-once",
        lambda b, k: b.update(destination={"address": "0x12"}, payer={"tax_id": "1", "name": ""}),
        ["/destination/address", "/payer/tax_id", "/payer/name"],
    ),
    (
        "off",
        "bad-pix-destination",
        lambda b, k: b.update(destination={"pix_key": "not a key", "tax_id": "111.111.111-11", "name": "\u0007"}),
        ["/destination/pix_key", "/destination/tax_id", "/destination/name"],
    ),
    (
        "off",
        "bad-cnpj",
        lambda b, k: b.update(destination={**PIX_DESTINATION, "tax_id": "11.222.333/0001-80"}),
        ["/destination/tax_id"],
    ),
    (
        "off",
        "bad-phone-key",
        lambda b, k: b.update(destination={**PIX_DESTINATION, "pix_key": "+1 555 0100"}),
        ["/destination/pix_key"],
    ),
    (
        "off",
        "address-destination",
        lambda b, k: b.update(destination={"address": ADDRESS}),
        ["/destination/address", "/destination/pix_key", "/destination/tax_id", "/destination/name"],
    ),
    ("off", "payer-on-off-ramp", lambda b, k: b.update(payer=dict(PAYER)), ["/payer"]),
    (
        "off",
        "no-user",
        lambda b, k: b.update(signing_accounts=[_eph(k.ephemeral.address)]),
        ["/signing_accounts"],
    ),
    (
        "off",
        "no-ephemeral",
        lambda b, k: b.update(signing_accounts=[_user(k.user.address)] if k.user else []),
        ["/signing_accounts"],
    ),
    (
        "off",
        "same-address-twice",
        lambda b, k: b.update(signing_accounts=[_eph(k.ephemeral.address), _user(k.ephemeral.address)]),
        ["/signing_accounts/1/address"],
    ),
    (
        "off",
        "two-users",
        lambda b, k: b.update(signing_accounts=[*k.signing_accounts(), _user(fresh_key().address)]),
        ["/signing_accounts/2"],
    ),
]


@pytest.mark.parametrize(
    ("kind", "change", "fields"), [(m[0], m[2], m[3]) for m in MALFORMED], ids=[f"{m[0]}-{m[1]}" for m in MALFORMED]
)
def test_malformed_registration(
    erin: Ramps, quotes: dict[str, dict[str, Any]], kind: str, change: Change, fields: list[str]
) -> None:
    keys = erin.keys(kind, fund_user=False)
    body = erin.body(kind, quotes[kind]["id"], keys)
    change(body, keys)
    problem(erin.register_reply(body), 422, "validation-error", *fields)


def test_quote_states(erin: Ramps, twin_url: str, twin_database_url: str) -> None:
    # Unknown: never issued, malformed, another user's.
    problem(erin.register_reply(erin.body("on", "qt_" + "0" * 32, Keys())), 422, "unknown-quote", "/quote_id")
    problem(erin.register_reply(erin.body("on", "not-a-quote", Keys())), 422, "unknown-quote", "/quote_id")
    frank = Ramps(twin_url)
    theirs = frank.quote("on")
    problem(erin.register_reply(erin.body("on", theirs["id"], Keys())), 422, "unknown-quote", "/quote_id")
    # Expired.
    old = erin.quote("off")
    age_quote(twin_database_url, old["id"])
    problem(erin.register_reply(erin.body("off", old["id"], erin.keys("off"))), 409, "quote-expired")
    # Consumed: a second registration of one quote, even with other keys; a retry of the first
    # (its Idempotency-Key, its body) answers the first ramp again.
    used = erin.quote("on")
    body = erin.body("on", used["id"], Keys())
    first = erin.client.post("/v1/ramps", body, key="register-" + used["id"])
    assert first.status == 201, first
    retry = erin.client.post("/v1/ramps", body, key="register-" + used["id"])
    assert (retry.status, retry.body["id"], retry.headers.get("idempotent-replayed")) == (201, first.body["id"], "true")
    problem(erin.register_reply(erin.body("on", used["id"], Keys())), 409, "quote-consumed")
    # The other user's quote was not touched by the refusal: its owner registers it.
    assert frank.register_reply(frank.body("on", theirs["id"], Keys())).status == 201


def test_ephemeral_not_fresh(erin: Ramps) -> None:
    quote = erin.quote("on")
    with_eth = Keys()
    erin.faucet(with_eth.ephemeral.address, "ETH", "0.01")
    body = erin.body("on", quote["id"], with_eth)
    problem(erin.register_reply(body), 422, "ephemeral-not-fresh", "/signing_accounts/0/address")
    # A token the corridor moves, and the ephemeral listed second: the pointer follows it.
    off = erin.quote("off")
    with_token = erin.keys("off")
    erin.faucet(with_token.ephemeral.address, "BRLA", "1")
    body = erin.body("off", off["id"], with_token, accounts=with_token.signing_accounts()[::-1])
    problem(erin.register_reply(body), 422, "ephemeral-not-fresh", "/signing_accounts/1/address")
    # A refused registration leaves the quote usable: the same quote with fresh keys → 201.
    assert erin.register_reply(erin.body("on", quote["id"], Keys())).status == 201
    assert erin.register_reply(erin.body("off", off["id"], erin.keys("off"))).status == 201


def test_ephemeral_in_use_until_its_ramp_is_cancelled(erin: Ramps, twin_url: str) -> None:
    first = erin.register("on")
    keys = Keys(ephemeral=first.keys.ephemeral)
    quote = erin.quote("on")
    body = erin.body("on", quote["id"], keys)
    problem(erin.register_reply(body), 409, "ephemeral-in-use", "/signing_accounts/0/address")
    # Another user, another corridor, the address in lower case: still the same key.
    grace = Ramps(twin_url)
    lowered = grace.keys("off")
    theirs = grace.body(
        "off",
        grace.quote("off")["id"],
        lowered,
        accounts=[_eph(keys.ephemeral.address.lower()), _user(lowered.user.address if lowered.user else "")],
    )
    problem(grace.register_reply(theirs), 409, "ephemeral-in-use", "/signing_accounts/0/address")
    # Cancelled, the first ramp releases it; the quote the refusal left unconsumed registers now.
    assert erin.cancel(first.id).status == 200
    again = erin.register_reply(body)
    assert again.status == 201, again
    assert again.body["signing_accounts"][0]["address"] == keys.ephemeral.address


def test_blueprints_echo_the_signer_as_registered(erin: Ramps) -> None:
    keys = erin.keys("off")
    assert keys.user is not None
    accounts = [_eph(keys.ephemeral.address.lower()), _user(keys.user.address)]
    reply = erin.register_reply(erin.body("off", erin.quote("off")["id"], keys, accounts=accounts))
    assert reply.status == 201, reply
    signers = {tx["signer"] for tx in reply.body["unsigned_txs"]}
    assert signers == {keys.ephemeral.address.lower(), keys.user.address}


def test_refused_registrations_left_the_quotes_usable(erin: Ramps, quotes: dict[str, dict[str, Any]]) -> None:
    """Every malformed registration above used these quotes; none consumed them."""
    for kind, quote in quotes.items():
        reply = erin.register_reply(erin.body(kind, quote["id"], erin.keys(kind)))
        assert reply.status == 201, reply
        assert reply.body["quote_id"] == quote["id"]


@pytest.mark.slow
def test_concurrent_registrations(erin: Ramps) -> None:
    """N clients at once: one quote with N fresh ephemerals → one 201, the rest quote-consumed;
    N quotes with one ephemeral → one 201, the rest ephemeral-in-use (and their quotes unconsumed);
    N starts of one ramp → all 202, one execution."""
    n = 6
    quote = erin.quote("on")
    bodies = [erin.body("on", quote["id"], Keys()) for _ in range(n)]
    with ThreadPoolExecutor(n) as pool:
        replies: list[Reply] = list(pool.map(erin.register_reply, bodies))
    assert sorted(r.status for r in replies) == [201] + [409] * (n - 1), replies
    for reply in replies:
        if reply.status == 409:
            problem(reply, 409, "quote-consumed")

    shared = Keys()
    own = [erin.quote("on") for _ in range(n)]
    bodies = [erin.body("on", q["id"], shared) for q in own]
    with ThreadPoolExecutor(n) as pool:
        replies = list(pool.map(erin.register_reply, bodies))
    assert sorted(r.status for r in replies) == [201] + [409] * (n - 1), replies
    for reply in replies:
        if reply.status == 409:
            problem(reply, 409, "ephemeral-in-use")
    # Every losing quote is still unconsumed: each registers with a fresh key.
    losers = [q for q, r in zip(own, replies, strict=True) if r.status == 409]
    for q in losers:
        reply = erin.register_reply(erin.body("on", q["id"], Keys()))
        assert reply.status == 201, reply

    # N starts of one ramp at once (distinct keys): every one 202 running, one execution.
    signed = erin.signed("off")
    with ThreadPoolExecutor(n) as pool:
        starts = list(pool.map(erin.start, [signed.id] * n))
    assert [(r.status, r.body) for r in starts] == [(202, {"id": signed.id, "phase": "fund", "status": "running"})] * n
    assert [(e["name"], e["status"]) for e in erin.executions(signed.id)] == [(signed.id, "RUNNING")]
