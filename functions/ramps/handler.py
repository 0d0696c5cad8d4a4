"""Corridors, quotes and ramps (API.md, "Ramps"): the client's side of a ramp — quote, register
with fresh ephemerals, sign the blueprints, submit them, start; cancel, read and list. Registering
and starting take an Idempotency-Key; a quote is consumed once, a ramp started once."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponseContentModel, OpenAPIResponseContentSchema

from rampart.api.app import create_app, json_response, lambda_entry, principal, require_role
from rampart.api.schemas.ramps import (
    CorridorList,
    CorridorOut,
    DifferenceOut,
    PresignedIn,
    QuoteIn,
    QuoteOut,
    RampIn,
    RampList,
    RampOut,
    RampStarted,
    ReconciliationOut,
    StatusName,
)
from rampart.ramps.service import Caller, QuoteRequest
from rampart.wiring import ramps as wiring

app = create_app()


def _caller() -> Caller:
    who = principal(app)
    return Caller(id=who.id, role=who.role, kind=who.kind)


def _ramp(status: int, ramp: object) -> Response[str]:
    return json_response(status, RampOut.from_domain(ramp).model_dump(mode="json", by_alias=True))  # type: ignore[arg-type]


@app.get(
    "/v1/corridors",
    summary="The corridors this deployment serves, with limits and phases",
    tags=["ramps"],
    responses={200: {"description": "the corridors", "content": {"application/json": {"model": CorridorList}}}},
)
def corridors() -> Response[str]:
    listed = CorridorList(items=[CorridorOut.from_domain(c) for c in wiring.service().corridors()])
    return json_response(200, listed.model_dump(mode="json", by_alias=True))


@app.post(
    "/v1/quotes",
    summary="Price a ramp: fees, output and expiry",
    tags=["ramps"],
    responses={201: {"description": "the quote", "content": {"application/json": {"model": QuoteOut}}}},
)
def create_quote(body: Annotated[QuoteIn, Body()]) -> Response[str]:
    request = QuoteRequest(
        ramp_type=body.ramp_type,
        source=body.source,
        destination=body.to,
        input_amount=body.input_amount,
        input_currency=body.input_currency,
        output_currency=body.output_currency,
    )
    quote = wiring.service().quote(_caller(), request)
    return json_response(201, QuoteOut.from_domain(quote).model_dump(mode="json", by_alias=True))


@app.get(
    "/v1/quotes/<id>",
    summary="Read a quote (public)",
    tags=["ramps"],
    responses={200: {"description": "the quote", "content": {"application/json": {"model": QuoteOut}}}},
)
def get_quote(id: str) -> Response[str]:
    return json_response(
        200, QuoteOut.from_domain(wiring.service().get_quote(id)).model_dump(mode="json", by_alias=True)
    )


_RAMP: dict[str, OpenAPIResponseContentSchema | OpenAPIResponseContentModel] = {"application/json": {"model": RampOut}}


@app.post(
    "/v1/ramps",
    summary="Register a ramp for a quote: the blueprints to sign",
    tags=["ramps"],
    responses={201: {"description": "the ramp, initial", "content": _RAMP}},
)
def register(body: Annotated[RampIn, Body()]) -> Response[str]:
    ramp = wiring.service().register(
        _caller(),
        body.quote_id,
        [account.model_dump() for account in body.signing_accounts],
        body.destination,
        body.payer,
    )
    return _ramp(201, ramp)


@app.post(
    "/v1/ramps/<id>/presigned",
    summary="Submit signed blueprints (in parts if you like)",
    tags=["ramps"],
    responses={200: {"description": "the ramp", "content": _RAMP}},
)
def presigned(id: str, body: Annotated[PresignedIn, Body()]) -> Response[str]:
    ramp = wiring.service().presign(_caller(), id, [item.model_dump() for item in body.presigned_txs])
    return _ramp(200, ramp)


@app.post(
    "/v1/ramps/<id>/start",
    summary="Start the ramp's execution",
    tags=["ramps"],
    responses={202: {"description": "started (or already)", "content": {"application/json": {"model": RampStarted}}}},
)
def start(id: str) -> Response[str]:
    ramp = wiring.service().start(_caller(), id)
    return json_response(202, RampStarted(id=ramp.id, phase=ramp.phase, status=ramp.status).model_dump(mode="json"))


@app.post(
    "/v1/ramps/<id>/cancel",
    summary="Cancel a ramp before it starts",
    tags=["ramps"],
    responses={200: {"description": "the ramp, cancelled", "content": _RAMP}},
)
def cancel(id: str) -> Response[str]:
    return _ramp(200, wiring.service().cancel(_caller(), id))


@app.get(
    "/v1/ramps/<id>",
    summary="Read a ramp",
    tags=["ramps"],
    responses={200: {"description": "the ramp", "content": _RAMP}},
)
def get_ramp(id: str) -> Response[str]:
    return _ramp(200, wiring.service().get(_caller(), id))


def _list(status: StatusName | None, limit: int, cursor: str | None, *, every: bool) -> Response[str]:
    page = wiring.service().list(_caller(), status, limit, cursor, every=every)
    listed = RampList(items=[RampOut.from_domain(r) for r in page.items], next_cursor=page.next_cursor)
    return json_response(200, listed.model_dump(mode="json", by_alias=True))


@app.get(
    "/v1/ramps",
    summary="The caller's ramps, newest first",
    tags=["ramps"],
    responses={200: {"description": "a page", "content": {"application/json": {"model": RampList}}}},
)
def list_ramps(
    status: Annotated[StatusName | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response[str]:
    return _list(status, limit, cursor, every=False)


@app.get(
    "/v1/admin/ramps",
    summary="Admin: every ramp, newest first",
    tags=["admin"],
    responses={200: {"description": "a page", "content": {"application/json": {"model": RampList}}}},
)
def admin_ramps(
    status: Annotated[StatusName | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response[str]:
    require_role(principal(app), "admin")
    return _list(status, limit, cursor, every=True)


@app.post(
    "/v1/admin/ramps/<id>/resume",
    summary="Admin: a paused ramp retries the phase it paused in",
    tags=["admin"],
    responses={200: {"description": "the ramp, running again", "content": _RAMP}},
)
def resume(id: str) -> Response[str]:
    require_role(principal(app), "admin")
    return _ramp(200, wiring.service().operate(_caller(), id, "resume"))


@app.post(
    "/v1/admin/ramps/<id>/fail",
    summary="Admin: a paused ramp fails (what the user paid goes back)",
    tags=["admin"],
    responses={200: {"description": "the ramp, failing", "content": _RAMP}},
)
def fail(id: str) -> Response[str]:
    require_role(principal(app), "admin")
    return _ramp(200, wiring.service().operate(_caller(), id, "fail"))


@app.get(
    "/v1/admin/reconciliation",
    summary="Admin: every mirrored ledger account against its chain balance",
    tags=["admin"],
    responses={200: {"description": "the differences", "content": {"application/json": {"model": ReconciliationOut}}}},
)
def reconciliation() -> Response[str]:
    require_role(principal(app), "admin")
    report = wiring.reconcile()
    out = ReconciliationOut(
        checked_at=report.checked_at,
        checked=report.checked,
        differences=[DifferenceOut(**d.__dict__) for d in report.differences],
    )
    return json_response(200, out.model_dump(mode="json"))


handler = lambda_entry(app, service="ramps", idempotent={"POST /v1/ramps", "POST /v1/ramps/{id}/start"})
