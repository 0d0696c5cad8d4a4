"""Transfers, holds and atomic batches (API.md, "Ledger"). Every POST here moves money: each
needs an Idempotency-Key, and a transfer without a reference gets one derived from it."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponseContentModel, OpenAPIResponseContentSchema

from rampart.api.app import Principal, create_app, id_number, json_response, lambda_entry, parse_id, principal
from rampart.api.idempotency import derived_reference, idempotency_key
from rampart.api.schemas.ledger import (
    BatchIn,
    PostIn,
    TransferBatchOut,
    TransferIn,
    TransferList,
    TransferOut,
)
from rampart.core.errors import NotFound, UnknownAccount
from rampart.ledger import Transfer, TransferInput
from rampart.wiring import ledger as wiring

app = create_app()


def _account_id(value: str, field: str) -> int:
    number = id_number(value)
    if number is None:
        raise UnknownAccount("no such account", field=field)
    return number


def _input(who: Principal, item: TransferIn, suffix: str = "") -> TransferInput:
    reference = item.reference
    if reference is None:
        key = idempotency_key(app.current_event.raw_event) or ""
        reference = derived_reference(who.id, key) + suffix
    return TransferInput(
        debit_account_id=_account_id(item.from_account_id, "/from_account_id"),
        credit_account_id=_account_id(item.to_account_id, "/to_account_id"),
        amount=item.amount,
        currency=item.currency,
        reference=reference,
        timeout_seconds=item.hold.timeout_seconds if item.hold else None,
    )


def _visible(transfer_id: str) -> Transfer:
    """The transfer if the caller issued it, owns one of its accounts, or is an admin."""
    who = principal(app)
    ledger = wiring.ledger()
    transfer = ledger.transfer_by_id(parse_id(transfer_id))
    if who.is_admin or transfer.owner_id == who.id:
        return transfer
    for account_id in (transfer.debit_account_id, transfer.credit_account_id):
        if ledger.account(account_id).owner_id == who.id:
            return transfer
    raise NotFound("no such transfer", field="path:id")


_TRANSFER: dict[str, OpenAPIResponseContentSchema | OpenAPIResponseContentModel] = {
    "application/json": {"model": TransferOut}
}


@app.post(
    "/v1/transfers",
    summary="Move money between two accounts, or hold it",
    tags=["transfers"],
    responses={
        201: {"description": "the transfer", "content": _TRANSFER},
        200: {"description": "the reference was used before with this content: the original", "content": _TRANSFER},
    },
)
def create_transfer(body: Annotated[TransferIn, Body()]) -> Response[str]:
    who = principal(app)
    transfer = wiring.ledger().transfer(who.id, _input(who, body), enforce_owner=not who.is_admin)
    return json_response(200 if transfer.replayed else 201, TransferOut.from_domain(transfer).model_dump(mode="json"))


_BATCH: dict[str, OpenAPIResponseContentSchema | OpenAPIResponseContentModel] = {
    "application/json": {"model": TransferBatchOut}
}


@app.post(
    "/v1/transfers/batch",
    summary="Create up to 100 transfers, all or nothing",
    tags=["transfers"],
    responses={
        201: {"description": "the transfers, in order", "content": _BATCH},
        200: {
            "description": "every item's reference was used before with this content: the originals",
            "content": _BATCH,
        },
    },
)
def create_batch(body: Annotated[BatchIn, Body()]) -> Response[str]:
    who = principal(app)
    items = [_input(who, item, f":{i}") for i, item in enumerate(body.transfers)]
    transfers = wiring.ledger().transfer_batch(who.id, items, enforce_owner=not who.is_admin)
    status = 200 if all(t.replayed for t in transfers) else 201
    batch = TransferBatchOut(items=[TransferOut.from_domain(t) for t in transfers])
    return json_response(status, batch.model_dump(mode="json"))


@app.post("/v1/transfers/<id>/post", summary="Post a pending hold, fully or partly", tags=["transfers"])
def post_hold(id: str, body: Annotated[PostIn | None, Body()] = None) -> TransferOut:
    who = principal(app)
    amount = body.amount if body else None
    transfer = wiring.ledger().post(parse_id(id), amount, owner_id=who.id, enforce_owner=not who.is_admin)
    return TransferOut.from_domain(transfer)


@app.post("/v1/transfers/<id>/void", summary="Void a pending hold", tags=["transfers"])
def void_hold(id: str) -> TransferOut:
    who = principal(app)
    transfer = wiring.ledger().void(parse_id(id), owner_id=who.id, enforce_owner=not who.is_admin)
    return TransferOut.from_domain(transfer)


@app.get("/v1/transfers/<id>", summary="Read a transfer", tags=["transfers"])
def get_transfer(id: str) -> TransferOut:
    return TransferOut.from_domain(_visible(id))


@app.get("/v1/transfers", summary="List the caller's transfers, or one account's, newest first", tags=["transfers"])
def list_transfers(
    account_id: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> TransferList:
    who = principal(app)
    ledger = wiring.ledger()
    if account_id is not None:
        account = ledger.account(parse_id(account_id, "query:account_id"), owner_id=None if who.is_admin else who.id)
        page = ledger.transfers(None, account.id, limit, cursor)
    else:
        page = ledger.transfers(who.id, None, limit, cursor)
    return TransferList(items=[TransferOut.from_domain(t) for t in page.items], next_cursor=page.next_cursor)


handler = lambda_entry(
    app,
    service="transfers",
    idempotent={
        "POST /v1/transfers",
        "POST /v1/transfers/batch",
        "POST /v1/transfers/{id}/post",
        "POST /v1/transfers/{id}/void",
    },
)
