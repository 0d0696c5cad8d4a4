"""Authenticated calls through the twin: the real authorizer, its policy and context, then the
ledger functions. (The full auth and ledger contracts are tested in test_auth_api / test_ledger_api.)"""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.api import Client, new_user

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("rampart.auth") is None, reason="rampart.auth is not written yet"
)


def test_a_registered_user_opens_and_reads_an_account(twin_url: str) -> None:
    user = new_user(twin_url)
    opened = user.post("/v1/accounts", {"currency": "USD", "name": "twin"})
    assert opened.status == 201, opened
    account_id = opened.body["id"]
    read = user.get(f"/v1/accounts/{account_id}")
    assert read.status == 200, read
    assert read.body["balance"]["posted"] == "0.00"
    assert account_id in [a["id"] for a in user.get("/v1/accounts").body["items"]]
    # another principal's account is not found (object-level check in the function)
    assert new_user(twin_url).get(f"/v1/accounts/{account_id}").status == 404


def test_the_seeded_admin_deposits_into_an_account(twin_url: str, admin_client: Client) -> None:
    user = new_user(twin_url)
    account_id = user.post("/v1/accounts", {"currency": "USD"}).body["id"]
    deposit = admin_client.post("/v1/admin/deposits", {"account_id": account_id, "amount": "12.50"}, key="twin-1")
    assert deposit.status == 201, deposit
    replay = admin_client.post("/v1/admin/deposits", {"account_id": account_id, "amount": "12.50"}, key="twin-1")
    assert replay.status == 201
    assert replay.headers.get("idempotent-replayed") == "true"
    assert user.get(f"/v1/accounts/{account_id}").body["balance"]["posted"] == "12.50"


def test_the_authorizers_explicit_deny_is_a_forbidden_problem(twin_url: str) -> None:
    """The authorizer allows the stage and denies /v1/admin/* to non-admins: the gateway's policy
    evaluation answers 403 before the admin function runs."""
    reply = new_user(twin_url).post("/v1/admin/partners", {"name": "p", "markup_bps": 10})
    assert reply.status == 403, reply
    assert reply.problem == "forbidden"


def test_twenty_parallel_authenticated_requests_are_all_answered(twin_url: str) -> None:
    user = new_user(twin_url)

    def open_one(n: int) -> str:
        reply = Client(twin_url, token=user.token).post("/v1/accounts", {"currency": "USD", "name": f"p{n}"})
        assert reply.status == 201, reply
        assert reply.body["name"] == f"p{n}"  # its own request, not a neighbour's
        return str(reply.body["id"])

    with ThreadPoolExecutor(max_workers=20) as pool:
        ids = list(pool.map(open_one, range(20)))
    assert len(set(ids)) == 20


def test_concurrent_principals_never_see_each_other(twin_url: str) -> None:
    """Twenty users at once, each through its own container: every reply is its caller's."""
    users = [new_user(twin_url) for _ in range(20)]

    def me_and_account(user: Client) -> tuple[str, str, str]:
        me = user.get("/v1/me")
        opened = user.post("/v1/accounts", {"currency": "USD"})
        assert me.status == 200, me
        assert opened.status == 201, opened
        return me.body["email"], me.body["id"], opened.body["owner_id"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(me_and_account, users))
    for user, (email, user_id, owner_id) in zip(users, results, strict=True):
        assert email == user.headers["X-Test-Email"]
        assert owner_id == user_id
