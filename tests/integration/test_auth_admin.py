"""The admin function: partners (with API keys that the authorizer accepts) and idempotent
deposits; everything admin-only."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from functions.admin.handler import handler as admin_handler
from functions.authorizer.handler import handler as authorizer_handler
from rampart.ledger import Account, Ledger
from tests.support.events import LambdaContext, Reply, api_event, authorizer_event, call

pytestmark = [
    pytest.mark.usefixtures("auth_env"),
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]

ADMIN = {"principalId": "usr_admin_test", "role": "admin", "kind": "user"}
USER = {"principalId": "usr_someone", "role": "user", "kind": "user"}
PARTNER = {"principalId": "prt_someone", "role": "partner", "kind": "partner", "partnerId": "prt_someone"}


def admin_post(path: str, body: Any, *, principal: dict[str, str] = ADMIN, key: str | None = None) -> Reply:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return call(admin_handler, api_event("POST", path, body=body, headers=headers, principal=principal))


@pytest.fixture
def account(ledger: Ledger, owner: str) -> Account:
    return ledger.open_account(owner, "BRL", "wallet")


def test_create_partner_and_its_key_passes_the_authorizer() -> None:
    created = admin_post("/v1/admin/partners", {"name": "Acme Pay", "markup_bps": 125})
    assert created.status == 201, created
    assert set(created.body) == {"id", "name", "markup_bps", "api_key"}
    assert created.body["name"] == "Acme Pay"
    assert created.body["markup_bps"] == 125
    key = created.body["api_key"]
    assert key.startswith("rpk_")

    answer = authorizer_handler(authorizer_event({"X-Api-Key": key}, method="POST", path="/v1/quotes"), LambdaContext())
    assert answer["principalId"] == created.body["id"]
    assert answer["context"] == {
        "principalId": created.body["id"],
        "role": "partner",
        "kind": "partner",
        "partnerId": created.body["id"],
    }
    effects = [s["Effect"] for s in answer["policyDocument"]["Statement"]]
    assert effects == ["Allow", "Deny"]  # partners are denied the admin routes


def test_partners_need_no_jwt_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The admin function's environment has no key secret (the manifest gives it none)."""
    from tests.support.auth_fixtures import reset_singletons

    monkeypatch.delenv("RAMPART_JWT_KEYS")
    monkeypatch.delenv("RAMPART_JWT_SECRET_ARN", raising=False)
    reset_singletons()
    assert admin_post("/v1/admin/partners", {"name": "No Keys", "markup_bps": 1}).status == 201


def test_partner_key_is_stored_hashed(db: Any) -> None:
    created = admin_post("/v1/admin/partners", {"name": "Hash Check", "markup_bps": 0})
    key = created.body["api_key"]
    with db.connection() as conn:
        row = conn.execute(
            "SELECT api_key_hash, api_key_prefix FROM auth.partners WHERE id = %s", (created.body["id"],)
        ).fetchone()
        dump = conn.execute("SELECT string_agg(p::text, ' ') FROM auth.partners p").fetchone()[0]
    assert bytes(row[0]) != key.encode()
    assert len(bytes(row[0])) == 32
    assert key not in dump
    assert key.startswith(row[1])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Acme", "markup_bps": 10_001}, "/markup_bps"),
        ({"name": "Acme", "markup_bps": -1}, "/markup_bps"),
        ({"name": "Acme", "markup_bps": 1.5}, "/markup_bps"),
        ({"name": "Acme", "markup_bps": "100"}, "/markup_bps"),
        ({"name": "", "markup_bps": 1}, "/name"),
        ({"markup_bps": 1}, "/name"),
        ({"name": "Acme", "markup_bps": 1, "api_key": "mine"}, "/api_key"),
    ],
)
def test_create_partner_validates(body: dict[str, Any], field: str) -> None:
    refused = admin_post("/v1/admin/partners", body)
    assert refused.status == 422, refused
    assert refused.problem == "validation-error"
    assert field in refused.fields


@pytest.mark.parametrize("who", [USER, PARTNER, {**USER, "role": "business"}, {**USER, "role": "lender"}])
def test_non_admins_are_forbidden(who: dict[str, str], account: Account) -> None:
    partners = admin_post("/v1/admin/partners", {"name": "Sneaky", "markup_bps": 0}, principal=who)
    assert partners.status == 403
    assert partners.problem == "forbidden"
    deposit = admin_post(
        "/v1/admin/deposits", {"account_id": str(account.id), "amount": "5.00"}, principal=who, key=uuid.uuid4().hex
    )
    assert deposit.status == 403
    assert deposit.problem == "forbidden"


def test_unauthenticated_calls_are_401() -> None:
    answer = call(admin_handler, api_event("POST", "/v1/admin/partners", body={"name": "x", "markup_bps": 0}))
    assert answer.status == 401
    assert answer.problem == "unauthorized"


def test_deposit_credits_from_world_and_replays(ledger: Ledger, account: Account) -> None:
    key = uuid.uuid4().hex
    body = {"account_id": str(account.id), "amount": "10.50"}
    first = admin_post("/v1/admin/deposits", body, key=key)
    assert first.status == 201, first
    world = ledger.system_account("BRL", "world")
    assert first.body["from_account_id"] == str(world.id)
    assert first.body["to_account_id"] == str(account.id)
    assert first.body["amount"] == "10.50"
    assert first.body["currency"] == "BRL"
    assert first.body["status"] == "posted"
    assert first.body["reference"].startswith("idem-")
    assert "idempotent-replayed" not in first.headers

    replay = admin_post("/v1/admin/deposits", body, key=key)
    assert replay.status == 201
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.body == first.body
    assert ledger.account(account.id).balance.posted == 1050  # money moved once

    reused = admin_post("/v1/admin/deposits", {**body, "amount": "11.00"}, key=key)
    assert reused.status == 422
    assert reused.problem == "idempotency-key-reused"
    assert ledger.account(account.id).balance.posted == 1050


def test_deposit_reference_is_derived_from_the_key_so_money_moves_once_without_the_record(
    ledger: Ledger, account: Account
) -> None:
    import boto3

    from tests.support.aws import IDEMPOTENCY_TABLE

    key = uuid.uuid4().hex
    body = {"account_id": str(account.id), "amount": "1.00"}
    first = admin_post("/v1/admin/deposits", body, key=key)
    assert first.status == 201
    # The idempotency record is gone (expired, or moto restarted): the ledger reference still holds.
    client = boto3.client("dynamodb")
    for item in client.scan(TableName=IDEMPOTENCY_TABLE)["Items"]:
        client.delete_item(TableName=IDEMPOTENCY_TABLE, Key={"id": item["id"]})
    again = admin_post("/v1/admin/deposits", body, key=key)
    assert again.status == 200  # the ledger's reference replay: the original transfer
    assert again.body["id"] == first.body["id"]
    assert ledger.account(account.id).balance.posted == 100


def test_deposit_with_explicit_reference(ledger: Ledger, account: Account) -> None:
    reference = f"wire-{uuid.uuid4().hex}"
    body = {"account_id": str(account.id), "amount": "2.00", "reference": reference}
    first = admin_post("/v1/admin/deposits", body, key=uuid.uuid4().hex)
    assert first.status == 201
    assert first.body["reference"] == reference
    second = admin_post("/v1/admin/deposits", body, key=uuid.uuid4().hex)  # another key, same reference
    assert second.status == 200
    assert second.body["id"] == first.body["id"]
    conflict = admin_post("/v1/admin/deposits", {**body, "amount": "3.00"}, key=uuid.uuid4().hex)
    assert conflict.status == 409
    assert conflict.problem == "reference-conflict"
    assert ledger.account(account.id).balance.posted == 200


def test_deposit_needs_an_idempotency_key(account: Account) -> None:
    answer = admin_post("/v1/admin/deposits", {"account_id": str(account.id), "amount": "1.00"})
    assert answer.status == 400
    assert answer.problem == "idempotency-key-required"


@pytest.mark.parametrize("account_id", ["999999999999", "abc", "-1", "12345678901234567890"])
def test_deposit_to_an_unknown_account_is_422(account_id: str) -> None:
    answer = admin_post("/v1/admin/deposits", {"account_id": account_id, "amount": "1.00"}, key=uuid.uuid4().hex)
    assert answer.status == 422, answer
    assert answer.problem == "unknown-account"
    assert answer.fields == ["/account_id"]


@pytest.mark.parametrize(
    ("amount", "field"), [("0", "/amount"), ("1.001", "/amount"), ("-1", "/amount"), (1, "/amount"), ("1e3", "/amount")]
)
def test_deposit_amount_rules(account: Account, amount: Any, field: str) -> None:
    answer = admin_post("/v1/admin/deposits", {"account_id": str(account.id), "amount": amount}, key=uuid.uuid4().hex)
    assert answer.status == 422, answer
    assert answer.problem == "validation-error"
    assert field in answer.fields


def test_deposit_to_the_world_account_itself_names_account_id(ledger: Ledger) -> None:
    world = ledger.system_account("USD", "world")
    answer = admin_post("/v1/admin/deposits", {"account_id": str(world.id), "amount": "1.00"}, key=uuid.uuid4().hex)
    assert answer.status == 422
    assert answer.problem == "same-account"
    assert answer.fields == ["/account_id"]
