"""Ledger accounts: open, list, read, entries (API.md, "Ledger")."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from rampart.api.app import create_app, json_response, lambda_entry, parse_id, principal
from rampart.api.schemas.ledger import AccountIn, AccountList, AccountOut, EntryList, account_out, entry_out
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
    responses={201: {"description": "the account", "content": {"application/json": {"model": AccountOut}}}},
)
def open_account(body: Annotated[AccountIn, Body()]) -> Response[str]:
    who = principal(app)
    account = wiring.ledger().open_account(who.id, body.currency, body.name)
    return json_response(201, account_out(account))


@app.get("/v1/accounts")
def list_accounts(limit: Limit = 50, cursor: Cursor = None) -> AccountList:
    page = wiring.ledger().accounts(principal(app).id, limit, cursor)
    return AccountList.model_validate({"items": [account_out(a) for a in page.items], "next_cursor": page.next_cursor})


@app.get("/v1/accounts/<id>")
def get_account(id: str) -> AccountOut:
    return AccountOut.model_validate(account_out(_visible(id)))


@app.get("/v1/accounts/<id>/entries")
def list_entries(id: str, limit: Limit = 50, cursor: Cursor = None) -> EntryList:
    account = _visible(id)
    page = wiring.ledger().entries(account.id, limit, cursor)
    return EntryList.model_validate(
        {"items": [entry_out(e, account.currency) for e in page.items], "next_cursor": page.next_cursor}
    )


handler = lambda_entry(app, service="accounts")
