"""The Ledger and Idempotency sections of API.md over real HTTP against the local twin."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from tests.e2e.api import Client, Reply, admin, fund, new_user


@pytest.fixture(scope="module")
def root(twin_url: str) -> Client:
    return admin(twin_url)


@pytest.fixture
def alice(twin_url: str) -> Client:
    return new_user(twin_url)


@pytest.fixture
def bob(twin_url: str) -> Client:
    return new_user(twin_url)


def open_account(client: Client, currency: str = "USD", name: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {"currency": currency}
    if name:
        body["name"] = name
    reply = client.post("/v1/accounts", body)
    assert reply.status == 201, reply
    return dict(reply.body)


def funded(client: Client, root: Client, amount: str = "100.00", currency: str = "USD") -> str:
    account = open_account(client, currency)
    fund(root, str(account["id"]), amount)
    return str(account["id"])


def transfer(client: Client, src: str, dst: str, amount: str, **extra: object) -> Reply:
    body = {"from_account_id": src, "to_account_id": dst, "amount": amount, "currency": "USD", **extra}
    return client.post("/v1/transfers", body, key=True)


def balance(client: Client, account_id: str) -> dict[str, str]:
    reply = client.get(f"/v1/accounts/{account_id}")
    assert reply.status == 200, reply
    return dict(reply.body["balance"])


# accounts ---------------------------------------------------------------------------------------


def test_open_and_read_accounts(alice: Client, bob: Client) -> None:
    account = open_account(alice, "BRL", "savings")
    assert account["currency"] == "BRL"
    assert account["name"] == "savings"
    assert account["balance"] == {
        "posted": "0.00",
        "pending_debits": "0.00",
        "pending_credits": "0.00",
        "available": "0.00",
    }
    assert str(account["created_at"]).endswith("Z")
    listed = alice.get("/v1/accounts")
    assert listed.status == 200
    assert [a["id"] for a in listed.body["items"]] == [account["id"]]
    assert listed.body["next_cursor"] is None
    assert alice.get(f"/v1/accounts/{account['id']}").body == account
    other = bob.get(f"/v1/accounts/{account['id']}")
    assert other.status == 404
    assert other.problem == "not-found"


def test_unknown_currency_is_422(alice: Client) -> None:
    reply = alice.post("/v1/accounts", {"currency": "DOGE"})
    assert reply.status == 422
    assert reply.problem == "validation-error"
    assert reply.fields == ["/currency"]


def test_admin_sees_any_account(alice: Client, root: Client) -> None:
    account = open_account(alice)
    assert root.get(f"/v1/accounts/{account['id']}").status == 200


# transfers ----------------------------------------------------------------------------------------


def test_deposit_transfer_entries(alice: Client, bob: Client, root: Client) -> None:
    src = funded(alice, root, "100.00")
    dst = str(open_account(bob)["id"])
    sent = transfer(alice, src, dst, "12.34", reference="invoice-1")
    assert sent.status == 201, sent
    assert sent.body["status"] == "posted"
    assert sent.body["amount"] == "12.34"
    assert sent.body["reference"] == "invoice-1"
    assert balance(alice, src)["posted"] == "87.66"
    assert balance(bob, dst)["posted"] == "12.34"
    entries = alice.get(f"/v1/accounts/{src}/entries")
    assert [(e["direction"], e["amount"], e["balance_after"]) for e in entries.body["items"]] == [
        ("debit", "12.34", "87.66"),
        ("credit", "100.00", "100.00"),
    ]
    assert alice.get(f"/v1/transfers/{sent.body['id']}").body == sent.body
    assert bob.get(f"/v1/transfers/{sent.body['id']}").status == 200  # the payee sees it too
    assert bob.get(f"/v1/transfers?account_id={dst}").body["items"][0]["id"] == sent.body["id"]


def test_reference_replay_and_conflict(alice: Client, bob: Client, root: Client) -> None:
    src, dst = funded(alice, root), str(open_account(bob)["id"])
    first = transfer(alice, src, dst, "1.00", reference="r-1")
    again = transfer(alice, src, dst, "1.00", reference="r-1")  # new Idempotency-Key, same reference
    assert (first.status, again.status) == (201, 200)
    assert again.body["id"] == first.body["id"]
    conflict = transfer(alice, src, dst, "2.00", reference="r-1")
    assert conflict.status == 409
    assert conflict.problem == "reference-conflict"
    assert balance(alice, src)["posted"] == "99.00"


@pytest.mark.parametrize(
    ("make", "status", "slug", "field"),
    [
        (lambda s, d, e, o: (s, d, "1000.00"), 422, "insufficient-funds", "/amount"),
        (lambda s, d, e, o: (s, s, "1.00"), 422, "same-account", "/to_account_id"),
        (lambda s, d, e, o: (s, e, "1.00"), 422, "currency-mismatch", "/currency"),
        (lambda s, d, e, o: (o, d, "1.00"), 422, "unknown-account", "/from_account_id"),
        (lambda s, d, e, o: (s, "999999999999", "1.00"), 422, "unknown-account", "/to_account_id"),
        (lambda s, d, e, o: ("abc", d, "1.00"), 422, "unknown-account", "/from_account_id"),
    ],
)
def test_transfer_refusals(
    alice: Client,
    bob: Client,
    root: Client,
    make: Callable[..., tuple[str, str, str]],
    status: int,
    slug: str,
    field: str,
) -> None:
    src, dst = funded(alice, root), str(open_account(bob)["id"])
    eur, others = str(open_account(bob, "EUR")["id"]), funded(bob, root)
    a, b, amount = make(src, dst, eur, others)
    reply = transfer(alice, a, b, amount)
    assert (reply.status, reply.problem) == (status, slug), reply
    assert field in reply.fields
    assert balance(alice, src)["posted"] == "100.00"


def test_hold_post_partial_and_void(alice: Client, bob: Client, root: Client) -> None:
    src, dst = funded(alice, root, "50.00"), str(open_account(bob)["id"])
    hold = transfer(alice, src, dst, "20.00", hold={"timeout_seconds": 600})
    assert hold.status == 201
    assert hold.body["status"] == "pending"
    assert hold.body["hold_amount"] == "20.00"
    assert hold.body["amount"] == "0.00"
    assert hold.body["expires_at"]
    assert balance(alice, src) == {
        "posted": "50.00",
        "pending_debits": "20.00",
        "pending_credits": "0.00",
        "available": "30.00",
    }
    other = bob.post(f"/v1/transfers/{hold.body['id']}/post", {}, key=True)
    assert other.status == 404
    assert other.problem == "not-found"
    over = alice.post(f"/v1/transfers/{hold.body['id']}/post", {"amount": "20.01"}, key=True)
    assert over.status == 422
    assert over.fields == ["/amount"]
    posted = alice.post(f"/v1/transfers/{hold.body['id']}/post", {"amount": "5.00"}, key=True)
    assert posted.status == 200
    assert posted.body["status"] == "posted"
    assert posted.body["amount"] == "5.00"
    assert balance(alice, src)["available"] == "45.00"
    assert balance(bob, dst)["posted"] == "5.00"
    twice = alice.post(f"/v1/transfers/{hold.body['id']}/void", key=True)
    assert twice.status == 409
    assert twice.problem == "hold-finalized"
    hold2 = transfer(alice, src, dst, "10.00", hold={"timeout_seconds": 600})
    voided = alice.post(f"/v1/transfers/{hold2.body['id']}/void", key=True)
    assert voided.status == 200
    assert voided.body["status"] == "voided"
    assert balance(alice, src)["available"] == "45.00"


def test_batch_all_or_nothing(alice: Client, bob: Client, root: Client) -> None:
    src, dst = funded(alice, root, "10.00"), str(open_account(bob)["id"])
    item = {"from_account_id": src, "to_account_id": dst, "currency": "USD"}
    ok = alice.post(
        "/v1/transfers/batch", {"transfers": [{**item, "amount": "1.00"}, {**item, "amount": "2.00"}]}, key=True
    )
    assert ok.status == 201
    assert [t["amount"] for t in ok.body["items"]] == ["1.00", "2.00"]
    bad = alice.post(
        "/v1/transfers/batch",
        {"transfers": [{**item, "amount": "1.00"}, {**item, "amount": "1.00"}, {**item, "amount": "9.00"}]},
        key=True,
    )
    assert bad.status == 422
    assert bad.problem == "insufficient-funds"
    assert bad.fields == ["/transfers/2/amount"]
    assert balance(alice, src)["posted"] == "7.00"
    too_many = alice.post("/v1/transfers/batch", {"transfers": [{**item, "amount": "0.01"}] * 101}, key=True)
    assert too_many.status == 422
    assert too_many.problem == "validation-error"


def test_lists_paginate_newest_first(alice: Client, bob: Client, root: Client) -> None:
    src, dst = funded(alice, root), str(open_account(bob)["id"])
    ids = [transfer(alice, src, dst, "1.00").body["id"] for _ in range(3)]
    first = alice.get("/v1/transfers?limit=2")
    assert [t["id"] for t in first.body["items"]] == ids[::-1][:2]
    rest = alice.get(f"/v1/transfers?limit=2&cursor={first.body['next_cursor']}")
    assert [t["id"] for t in rest.body["items"]] == [ids[0]]
    assert rest.body["next_cursor"] is None


# idempotency --------------------------------------------------------------------------------------


def test_idempotency_replay_mismatch_and_missing_key(alice: Client, bob: Client, root: Client) -> None:
    src, dst = funded(alice, root), str(open_account(bob)["id"])
    body = {"from_account_id": src, "to_account_id": dst, "amount": "3.00", "currency": "USD"}
    missing = alice.post("/v1/transfers", body)
    assert missing.status == 400
    assert missing.problem == "idempotency-key-required"
    assert missing.fields == ["header:Idempotency-Key"]
    key = uuid.uuid4().hex
    first = alice.post("/v1/transfers", body, key=key)
    replay = alice.post("/v1/transfers", body, key=key)
    assert first.status == replay.status == 201
    assert replay.body == first.body
    assert replay.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers
    reused = alice.post("/v1/transfers", {**body, "amount": "4.00"}, key=key)
    assert reused.status == 422
    assert reused.problem == "idempotency-key-reused"
    assert balance(alice, src)["posted"] == "97.00"
    refused = alice.post("/v1/transfers", {**body, "amount": "1000.00"}, key="k-refused")
    again = alice.post("/v1/transfers", {**body, "amount": "1000.00"}, key="k-refused")
    assert refused.status == again.status == 422
    assert again.headers.get("idempotent-replayed") == "true"


def test_idempotency_keys_are_per_principal(alice: Client, bob: Client, root: Client) -> None:
    a_src, b_src = funded(alice, root), funded(bob, root)
    a_dst, b_dst = str(open_account(alice)["id"]), str(open_account(bob)["id"])
    key = uuid.uuid4().hex
    ra = alice.post(
        "/v1/transfers",
        {"from_account_id": a_src, "to_account_id": a_dst, "amount": "1.00", "currency": "USD"},
        key=key,
    )
    rb = bob.post(
        "/v1/transfers",
        {"from_account_id": b_src, "to_account_id": b_dst, "amount": "1.00", "currency": "USD"},
        key=key,
    )
    assert ra.status == rb.status == 201
    assert ra.body["id"] != rb.body["id"]
    assert "idempotent-replayed" not in rb.headers


def test_twenty_concurrent_duplicates_move_money_once(alice: Client, bob: Client, root: Client) -> None:
    src, dst = funded(alice, root, "100.00"), str(open_account(bob)["id"])
    body = {"from_account_id": src, "to_account_id": dst, "amount": "10.00", "currency": "USD"}
    key, barrier = uuid.uuid4().hex, threading.Barrier(20)

    def send(_: int) -> Reply:
        barrier.wait()
        return alice.post("/v1/transfers", body, key=key)

    with ThreadPoolExecutor(20) as pool:
        replies = list(pool.map(send, range(20)))
    statuses = sorted(r.status for r in replies)
    assert set(statuses) <= {201, 409}, statuses
    assert all(
        r.problem == "idempotency-in-progress" and r.headers.get("retry-after") for r in replies if r.status == 409
    )
    assert len({r.body["id"] for r in replies if r.status == 201}) == 1
    assert balance(alice, src)["posted"] == "90.00"
    assert balance(bob, dst)["posted"] == "10.00"


# load -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_400_concurrent_random_transfers(twin_url: str, root: Client) -> None:
    users = [new_user(twin_url) for _ in range(4)]
    accounts = [(u, funded(u, root, "50.00")) for u in users for _ in range(2)]
    rng, lock = random.Random(7), threading.Lock()

    def one(_: int) -> int:
        with lock:
            (client, src), (_, dst) = rng.sample(accounts, 2)
            amount = f"{rng.randint(1, 2000) / 100:.2f}"
        return transfer(client, src, dst, amount).status

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(one, range(400)))
    assert all(s < 500 for s in statuses), statuses
    assert statuses.count(201) > 100
    assert set(statuses) <= {201, 422}
    total = sum(Decimal(balance(c, a)["posted"]) for c, a in accounts)
    assert total == Decimal("400.00")  # money conserved
    assert all(Decimal(balance(c, a)["available"]) >= 0 for c, a in accounts)
