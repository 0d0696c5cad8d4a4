"""Admin only: partners with their API keys, and deposits from the world account
(API.md, "Platform" and "Ledger"). The authorizer already denies these routes to non-admins;
each endpoint checks the role again.

A new partner's key is imported into API Gateway's partner usage plan before the partner is
stored (``AuthService.create_partner``): a gateway that does not take it answers 503
``service-unavailable`` with ``Retry-After`` and no partner exists."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from rampart.api.app import create_app, id_number, json_response, lambda_entry, principal, require_role
from rampart.api.idempotency import derived_reference, idempotency_key
from rampart.api.schemas.auth import DepositIn, PartnerIn, PartnerOut
from rampart.api.schemas.ledger import TransferOut
from rampart.core.errors import DomainError, NotFound, UnknownAccount
from rampart.wiring import auth as auth_wiring
from rampart.wiring import ledger as wiring

app = create_app()


@app.post("/v1/admin/partners", status_code=201, summary="Create a partner; its API key is shown once", tags=["admin"])
def create_partner(body: Annotated[PartnerIn, Body()]) -> PartnerOut:
    require_role(principal(app), "admin")
    partner, api_key = auth_wiring.partners().create_partner(body.name, body.markup_bps)
    return PartnerOut(id=partner.id, name=partner.name, markup_bps=partner.markup_bps, api_key=api_key)


@app.post(
    "/v1/admin/deposits",
    summary="Credit an account from its currency's world account",
    tags=["admin"],
    responses={
        201: {"description": "the deposit", "content": {"application/json": {"model": TransferOut}}},
        200: {
            "description": "the reference was used before with this content: the original deposit",
            "content": {"application/json": {"model": TransferOut}},
        },
    },
)
def deposit(body: Annotated[DepositIn, Body()]) -> Response[str]:
    who = principal(app)
    require_role(who, "admin")
    account_id = id_number(body.account_id)
    if account_id is None:
        raise UnknownAccount("no such account", field="/account_id")
    reference = body.reference
    if reference is None:
        reference = derived_reference(who.id, idempotency_key(app.current_event.raw_event) or "")
    try:
        transfer = wiring.ledger().deposit(account_id, body.amount, reference, owner_id=who.id)
    except NotFound:
        raise UnknownAccount("no such account", field="/account_id") from None
    except DomainError as exc:
        if exc.field in ("/to_account_id", "/from_account_id"):
            exc.field = "/account_id"  # a deposit names one account: point at it
        raise
    return json_response(200 if transfer.replayed else 201, TransferOut.from_domain(transfer).model_dump(mode="json"))


handler = lambda_entry(app, service="admin", idempotent={"POST /v1/admin/deposits"})
