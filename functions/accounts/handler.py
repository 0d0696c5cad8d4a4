"""Ledger accounts: open, list, read, entries (API.md, "Ledger")."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from rampart.api.app import create_app, json_response, lambda_entry, parse_id, principal
from rampart.api.schemas.ledger import AccountIn, AccountList, AccountOut, EntryList, EntryOut
from rampart.ledger import Account
from rampart.wiring import ledger as wiring

app = create_app()

Limit = Annotated[int, Query(ge=1, le=100, description="page size")]
Cursor = Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")]


def _visible(account_id: str) -> Account:
    """The account if the caller may see it (owner or admin); otherwise not found."""
    who = principal(app)
    return wiring.ledger().account(parse_id(account_id), owner_id=None if who.is_admin else who.id)


@app.post(
    "/v1/accounts",
    summary="Open an account in a currency",
    tags=["accounts"],
    responses={201: {"description": "the account", "content": {"application/json": {"model": AccountOut}}}},
)
def open_account(body: Annotated[AccountIn, Body()]) -> Response[str]:
    who = principal(app)
    account = wiring.ledger().open_account(who.id, body.currency, body.name)
    return json_response(201, AccountOut.from_domain(account).model_dump(mode="json"))


@app.get("/v1/accounts", summary="List the caller's accounts, newest first", tags=["accounts"])
def list_accounts(limit: Limit = 50, cursor: Cursor = None) -> AccountList:
    page = wiring.ledger().accounts(principal(app).id, limit, cursor)
    return AccountList(items=[AccountOut.from_domain(a) for a in page.items], next_cursor=page.next_cursor)


@app.get("/v1/accounts/<id>", summary="Read an account and its balance", tags=["accounts"])
def get_account(id: str) -> AccountOut:
    return AccountOut.from_domain(_visible(id))


@app.get(
    "/v1/accounts/<id>/entries",
    summary="List an account's entries (posted movements), newest first",
    tags=["accounts"],
)
def list_entries(id: str, limit: Limit = 50, cursor: Cursor = None) -> EntryList:
    account = _visible(id)
    page = wiring.ledger().entries(account.id, limit, cursor)
    return EntryList(
        items=[EntryOut.from_domain(e, account.currency) for e in page.items], next_cursor=page.next_cursor
    )


handler = lambda_entry(app, service="accounts")
