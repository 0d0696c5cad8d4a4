"""Register, login, refresh, logout and me (API.md, "Platform"). Only ``GET /v1/me`` sits behind
the authorizer; the others are public, and login is throttled per email."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from rampart.api.app import create_app, lambda_entry, principal
from rampart.api.schemas.auth import PROBLEM_CONTENT, LoginIn, RefreshIn, RegisterIn, TokensOut, UserOut
from rampart.auth import TokenPair
from rampart.wiring import auth as auth_wiring

app = create_app()


def _tokens(pair: TokenPair) -> TokensOut:
    return TokensOut(access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in)


@app.post("/v1/auth/register", status_code=201, summary="Create a user (user, business or lender)", tags=["auth"])
def register(body: Annotated[RegisterIn, Body()]) -> UserOut:
    user = auth_wiring.auth().register(body.email, body.password, body.role)
    return UserOut(id=user.id, email=user.email, role=user.role)


def _pair_responses(refused: str) -> dict[int, Any]:
    return {
        200: {"description": "a new token pair", "content": {"application/json": {"model": TokensOut}}},
        401: {"description": refused, "content": PROBLEM_CONTENT},
    }


@app.post(
    "/v1/auth/login",
    summary="Exchange credentials for an access and a refresh token",
    tags=["auth"],
    responses=_pair_responses("wrong email or password (the same answer for an unknown email)"),
)
def login(body: Annotated[LoginIn, Body()]) -> TokensOut:
    return _tokens(auth_wiring.auth().login(body.email, body.password))


@app.post(
    "/v1/auth/refresh",
    summary="Exchange a refresh token for a new pair (the old one is used up)",
    tags=["auth"],
    responses=_pair_responses("unknown, expired or revoked refresh token; a reused one revokes its family"),
)
def refresh(body: Annotated[RefreshIn, Body()]) -> TokensOut:
    return _tokens(auth_wiring.auth().refresh(body.refresh_token))


@app.post(
    "/v1/auth/logout",
    status_code=204,
    summary="Revoke the refresh token's session",
    tags=["auth"],
    responses={
        204: {"description": "the refresh-token family is revoked", "content": {}},
        401: {"description": "not a refresh token of ours", "content": PROBLEM_CONTENT},
    },
)
def logout(body: Annotated[RefreshIn, Body()]) -> Response[None]:
    auth_wiring.auth().logout(body.refresh_token)
    return Response(204)


@app.get("/v1/me", summary="Who is calling: id, email and role", tags=["auth"])
def me() -> UserOut:
    who = principal(app)
    if who.kind == "partner":
        return UserOut(id=who.id, email=None, role="partner")
    user = auth_wiring.auth().me(who.id)
    return UserOut(id=user.id, email=user.email, role=user.role)


handler = lambda_entry(app, service="auth")
