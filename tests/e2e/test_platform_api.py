"""The Platform section of API.md over real HTTP against the local twin: register, login,
refresh, logout, me, admin partners and API keys, forged and expired tokens, the login lockout,
object-level checks and correlation ids."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest

from rampart.auth.tokens import ALGORITHM, AUDIENCE, ISSUER, KeyRing
from tests.e2e.api import Client, Reply, admin, fund, new_user

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def root(twin_url: str) -> Client:
    return admin(twin_url)


def fresh_email() -> str:
    return f"p-{uuid.uuid4().hex[:12]}@example.com"


def register(client: Client, email: str, password: str = PASSWORD, role: str = "user") -> Reply:
    return client.post("/v1/auth/register", {"email": email, "password": password, "role": role})


def login_reply(client: Client, email: str, password: str = PASSWORD) -> Reply:
    return client.post("/v1/auth/login", {"email": email, "password": password})


def registered(client: Client, role: str = "user") -> tuple[str, dict[str, Any]]:
    email = fresh_email()
    reply = register(client, email, role=role)
    assert reply.status == 201, reply
    return email, dict(reply.body)


def tokens(client: Client, email: str) -> dict[str, Any]:
    reply = login_reply(client, email)
    assert reply.status == 200, reply
    return dict(reply.body)


def bearer(base: str, token: str) -> Client:
    return Client(base, token=token)


def refresh(client: Client, refresh_token: str) -> Reply:
    return client.post("/v1/auth/refresh", {"refresh_token": refresh_token})


# register -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["user", "business", "lender"])
def test_register_answers_201_with_the_user(client: Client, role: str) -> None:
    email = fresh_email()
    reply = register(client, email, role=role)
    assert reply.status == 201, reply
    assert set(reply.body) == {"id", "email", "role"}
    assert (reply.body["email"], reply.body["role"]) == (email, role)
    assert isinstance(reply.body["id"], str)
    assert reply.body["id"]
    assert "password" not in json.dumps(reply.body)


@pytest.mark.parametrize("role", ["admin", "partner"])
def test_register_refuses_privileged_roles(client: Client, role: str) -> None:
    reply = register(client, fresh_email(), role=role)
    assert reply.status == 422, reply
    assert reply.problem == "validation-error"
    assert reply.fields == ["/role"]


def test_register_refuses_a_short_password(client: Client) -> None:
    email = fresh_email()
    reply = register(client, email, password="x" * 11)
    assert reply.status == 422, reply
    assert reply.problem == "validation-error"
    assert reply.fields == ["/password"]
    assert login_reply(client, email, "x" * 11).status == 401  # nothing was created
    assert register(client, email, password="x" * 12).status == 201  # 12 is enough


def test_register_a_duplicate_email_is_409(client: Client) -> None:
    email, _ = registered(client)
    again = register(client, email, password="another long password", role="business")
    assert again.status == 409, again
    assert again.headers["content-type"].startswith("application/problem+json")
    assert again.body["status"] == 409
    assert again.fields == ["/email"]


# login and me -------------------------------------------------------------------------------------


def test_login_answers_a_token_pair_and_me_the_user(client: Client, twin_url: str) -> None:
    email, user = registered(client, "lender")
    pair = tokens(client, email)
    assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert pair["token_type"] == "Bearer"
    assert isinstance(pair["expires_in"], int)
    assert 0 < pair["expires_in"] <= 15 * 60
    assert pair["access_token"] != pair["refresh_token"]
    header = jwt.get_unverified_header(pair["access_token"])
    assert header["alg"] == ALGORITHM
    assert header["kid"]
    me = bearer(twin_url, pair["access_token"]).get("/v1/me")
    assert me.status == 200, me
    assert me.body == user


def test_wrong_password_and_unknown_email_get_the_same_401(client: Client) -> None:
    email, _ = registered(client)
    same = {"X-Correlation-Id": f"same-{uuid.uuid4().hex}"}
    wrong = client.post("/v1/auth/login", {"email": email, "password": "not the password"}, headers=same)
    unknown = client.post("/v1/auth/login", {"email": fresh_email(), "password": "not the password"}, headers=same)
    assert wrong.status == unknown.status == 401
    assert wrong.problem == "unauthorized"
    assert wrong.body == unknown.body  # nothing tells whether the email exists
    assert wrong.headers["content-type"] == unknown.headers["content-type"]


def test_me_needs_credentials(client: Client) -> None:
    reply = client.get("/v1/me")
    assert reply.status == 401, reply
    assert reply.problem == "unauthorized"


# refresh and logout ---------------------------------------------------------------------------------


def test_refresh_rotates_and_a_reused_token_revokes_its_family(client: Client, twin_url: str) -> None:
    email, user = registered(client)
    first = tokens(client, email)
    other_session = tokens(client, email)  # another family of the same user

    second = refresh(client, first["refresh_token"])
    assert second.status == 200, second
    assert second.body["token_type"] == "Bearer"
    assert second.body["refresh_token"] != first["refresh_token"]
    assert bearer(twin_url, second.body["access_token"]).get("/v1/me").body == user
    third = refresh(client, second.body["refresh_token"])
    assert third.status == 200, third

    reused = refresh(client, first["refresh_token"])  # used before: a thief or a replay
    assert reused.status == 401, reused
    assert reused.problem == "unauthorized"
    newest = refresh(client, third.body["refresh_token"])  # the whole family is revoked
    assert newest.status == 401, newest
    assert newest.problem == "unauthorized"

    assert refresh(client, other_session["refresh_token"]).status == 200  # other families live on


def test_refresh_refuses_an_unknown_token(client: Client) -> None:
    reply = refresh(client, "not-a-refresh-token")
    assert reply.status == 401, reply
    assert reply.problem == "unauthorized"


def test_logout_revokes_the_family_and_access_tokens_live_on(client: Client, twin_url: str) -> None:
    email, user = registered(client)
    first = tokens(client, email)
    rotated = refresh(client, first["refresh_token"])
    assert rotated.status == 200, rotated
    other_session = tokens(client, email)

    out = client.post("/v1/auth/logout", {"refresh_token": rotated.body["refresh_token"]})
    assert out.status == 204, out
    assert out.body is None
    assert refresh(client, rotated.body["refresh_token"]).status == 401
    assert refresh(client, first["refresh_token"]).status == 401
    unknown = client.post("/v1/auth/logout", {"refresh_token": "not-a-refresh-token"})
    assert unknown.status == 401, unknown
    # access tokens are not revocable: they expire (≤ 15 min)
    me = bearer(twin_url, rotated.body["access_token"]).get("/v1/me")
    assert me.status == 200, me
    assert me.body == user
    assert refresh(client, other_session["refresh_token"]).status == 200


# forged, expired and foreign tokens ---------------------------------------------------------------


@pytest.fixture(scope="module")
def key_ring(twin_state_dir: Path) -> KeyRing:
    """The twin's JWT keys, as it persists them (``<state dir>/jwt-keys.json``)."""
    path = twin_state_dir / "jwt-keys.json"
    if not path.is_file():
        pytest.skip(f"the twin's JWT keys are not at {path}")
    return KeyRing.from_json(path.read_text())


def claims_of(user_id: str, role: str = "user", **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": user_id,
        "role": role,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    claims.update(changes)
    return claims


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def victim(twin_url: str) -> dict[str, Any]:
    client = Client(twin_url)
    _email, user = registered(client)
    return user


def test_a_token_forged_with_the_twins_own_key_is_accepted(
    twin_url: str, key_ring: KeyRing, victim: dict[str, Any]
) -> None:
    """The control for the refusals below: the forging itself is right."""
    token = jwt.encode(
        claims_of(victim["id"]), key_ring.keys[key_ring.current], algorithm=ALGORITHM, headers={"kid": key_ring.current}
    )
    reply = bearer(twin_url, token).get("/v1/me")
    assert reply.status == 200, reply
    assert reply.body == victim


def test_an_expired_access_token_is_401(twin_url: str, key_ring: KeyRing, victim: dict[str, Any]) -> None:
    past = int(time.time()) - 3600
    claims = claims_of(victim["id"], iat=past - 900, nbf=past - 900, exp=past)
    token = jwt.encode(claims, key_ring.keys[key_ring.current], algorithm=ALGORITHM, headers={"kid": key_ring.current})
    reply = bearer(twin_url, token).get("/v1/me")
    assert reply.status == 401, reply
    assert reply.problem == "unauthorized"


def test_a_token_signed_with_a_wrong_key_is_401(twin_url: str, key_ring: KeyRing, victim: dict[str, Any]) -> None:
    token = jwt.encode(
        claims_of(victim["id"], role="admin"), b"w" * 48, algorithm=ALGORITHM, headers={"kid": key_ring.current}
    )
    reply = bearer(twin_url, token).get("/v1/me")
    assert reply.status == 401, reply
    assert reply.problem == "unauthorized"


@pytest.mark.parametrize("kid", ["not-a-kid-of-ours", "", None])
def test_a_token_with_a_wrong_kid_is_401(
    twin_url: str, key_ring: KeyRing, victim: dict[str, Any], kid: str | None
) -> None:
    headers = {"kid": kid} if kid is not None else {}
    token = jwt.encode(claims_of(victim["id"]), key_ring.keys[key_ring.current], algorithm=ALGORITHM, headers=headers)
    reply = bearer(twin_url, token).get("/v1/me")
    assert reply.status == 401, reply
    assert reply.problem == "unauthorized"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("alg", ["none", "None", "HS512"])
def test_a_token_with_another_algorithm_is_401(
    twin_url: str, key_ring: KeyRing, victim: dict[str, Any], alg: str
) -> None:
    header = {"alg": alg, "typ": "JWT", "kid": key_ring.current}
    if alg == "HS512":
        token = jwt.encode(claims_of(victim["id"]), key_ring.keys[key_ring.current], algorithm="HS512", headers=header)
    else:
        token = f"{_b64(header)}.{_b64(claims_of(victim['id'], role='admin'))}."
    reply = bearer(twin_url, token).get("/v1/me")
    assert reply.status == 401, reply
    assert reply.problem == "unauthorized"


@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "bearer not.a.jwt", "Bearer " + "a" * 5000],
)
def test_malformed_authorization_headers_are_401(twin_url: str, authorization: str) -> None:
    reply = Client(twin_url).get("/v1/accounts", headers={"Authorization": authorization})
    assert reply.status == 401, reply
    assert reply.problem == "unauthorized"


# login lockout ------------------------------------------------------------------------------------


def test_ten_failures_lock_that_email_out_even_with_the_right_password(client: Client) -> None:
    locked, _ = registered(client)
    bystander, _ = registered(client)
    for attempt in range(10):
        reply = login_reply(client, locked, "wrong password!")
        assert reply.status == 401, (attempt, reply)
    refused = login_reply(client, locked)  # the right password, the 11th attempt
    assert refused.status == 429, refused
    assert refused.problem == "rate-limited"
    retry_after = int(refused.headers["retry-after"])
    assert 0 < retry_after <= 15 * 60
    assert login_reply(client, locked, "wrong password!").status == 429
    assert login_reply(client, bystander).status == 200  # another email is unaffected


# admin: partners and API keys ---------------------------------------------------------------------


def test_admin_creates_a_partner_whose_key_authenticates(twin_url: str, root: Client) -> None:
    created = root.post("/v1/admin/partners", {"name": "Acme Pay", "markup_bps": 25})
    assert created.status == 201, created
    assert set(created.body) == {"id", "name", "markup_bps", "api_key"}
    assert (created.body["name"], created.body["markup_bps"]) == ("Acme Pay", 25)
    key = created.body["api_key"]
    assert isinstance(key, str)
    assert len(key) >= 20

    me = Client(twin_url).get("/v1/me", headers={"X-Api-Key": key})
    assert me.status == 200, me
    assert me.body["role"] == "partner"
    assert me.body["id"] == created.body["id"]

    wrong = Client(twin_url).get("/v1/me", headers={"X-Api-Key": key[:-4] + "zzzz"})
    assert wrong.status == 401, wrong
    assert wrong.problem == "unauthorized"
    unknown = Client(twin_url).get("/v1/me", headers={"X-Api-Key": "rk_" + uuid.uuid4().hex})
    assert unknown.status == 401, unknown

    second = root.post("/v1/admin/partners", {"name": "Acme Pay", "markup_bps": 25})
    assert second.status == 201
    assert second.body["api_key"] != key  # a key is never shown again, each partner has its own


def test_partner_creation_needs_the_admin_role(twin_url: str) -> None:
    for role in ("user", "business", "lender"):
        reply = new_user(twin_url, role).post("/v1/admin/partners", {"name": "p", "markup_bps": 10})
        assert reply.status == 403, (role, reply)
        assert reply.problem == "forbidden"
    anonymous = Client(twin_url).post("/v1/admin/partners", {"name": "p", "markup_bps": 10})
    assert anonymous.status == 401, anonymous


def test_partner_validation(root: Client) -> None:
    reply = root.post("/v1/admin/partners", {"name": "p", "markup_bps": 10_001})
    assert reply.status == 422, reply
    assert reply.fields == ["/markup_bps"]


# another principal's resources ------------------------------------------------------------------


def test_another_principals_accounts_and_transfers_are_not_found(twin_url: str, root: Client) -> None:
    alice, mallory = new_user(twin_url), new_user(twin_url)
    src = alice.post("/v1/accounts", {"currency": "USD"}).body["id"]
    dst = alice.post("/v1/accounts", {"currency": "USD"}).body["id"]
    fund(root, src, "10.00")
    body = {"from_account_id": src, "to_account_id": dst, "amount": "1.00", "currency": "USD"}
    sent = alice.post("/v1/transfers", body, key=True)
    held = alice.post("/v1/transfers", {**body, "hold": {"timeout_seconds": 600}}, key=True)
    assert sent.status == held.status == 201, (sent, held)

    for path in (
        f"/v1/accounts/{src}",
        f"/v1/accounts/{src}/entries",
        f"/v1/transfers/{sent.body['id']}",
        f"/v1/transfers?account_id={src}",
    ):
        reply = mallory.get(path)
        assert reply.status == 404, (path, reply)
        assert reply.problem == "not-found"
        assert alice.get(path).status == 200, path
    for action in ("post", "void"):
        reply = mallory.post(f"/v1/transfers/{held.body['id']}/{action}", {}, key=True)
        assert reply.status == 404, (action, reply)
        assert reply.problem == "not-found"
    stolen = mallory.post("/v1/transfers", {**body, "to_account_id": src, "from_account_id": dst}, key=True)
    assert stolen.status == 422, stolen
    assert stolen.problem == "unknown-account"
    assert mallory.get("/v1/accounts").body["items"] == []
    assert mallory.get("/v1/transfers").body["items"] == []
    assert alice.get(f"/v1/transfers/{held.body['id']}").body["status"] == "pending"  # untouched


# correlation ids --------------------------------------------------------------------------------


def test_a_given_correlation_id_is_echoed_in_replies_and_problems(twin_url: str) -> None:
    user = new_user(twin_url)
    given = f"corr-{uuid.uuid4().hex}"
    ok = user.get("/v1/me", headers={"X-Correlation-Id": given})
    assert ok.status == 200
    assert ok.headers["x-correlation-id"] == given
    problem = user.post("/v1/accounts", {"currency": "DOGE"}, headers={"X-Correlation-Id": given})
    assert problem.status == 422
    assert problem.headers["x-correlation-id"] == given
    assert problem.body["correlation_id"] == given
    public = Client(twin_url).post("/v1/auth/login", {"email": "x"}, headers={"X-Correlation-Id": given})
    assert public.status == 422, public
    assert public.body["correlation_id"] == public.headers["x-correlation-id"] == given
    refused = Client(twin_url).get("/v1/me", headers={"X-Correlation-Id": given})  # the gateway's own answer
    assert refused.status == 401
    assert refused.body["correlation_id"] == refused.headers["x-correlation-id"] == given


def test_a_correlation_id_is_generated_when_none_is_given(twin_url: str) -> None:
    user = new_user(twin_url)
    seen = set()
    for _ in range(2):
        ok = user.get("/v1/me")
        problem = user.get("/v1/accounts/999999999")
        assert ok.headers["x-correlation-id"]
        assert problem.status == 404
        assert problem.body["correlation_id"] == problem.headers["x-correlation-id"]
        seen |= {ok.headers["x-correlation-id"], problem.headers["x-correlation-id"]}
    assert len(seen) == 4  # one per request
