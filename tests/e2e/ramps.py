"""A small ramp client for the e2e tests, doing what API.md's "Ramps" asks of a real client: quote,
register with fresh ``eth_account`` keys, sign every blueprint with the key it names, submit the
signatures, start. The keys stay here, as they stay with a real client; the twin only ever sees
addresses and signed transactions. The outside world is played through ``/_sim`` (the faucet).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from tests.e2e.api import Client, new_user
from tests.support.events import Reply

# The two served corridors' quote bodies (API.md's corridor table), without the amount.
ON: dict[str, str] = {
    "ramp_type": "on",
    "from": "pix",
    "to": "base",
    "input_currency": "BRL",
    "output_currency": "USDC",
}
OFF: dict[str, str] = {
    "ramp_type": "off",
    "from": "base",
    "to": "pix",
    "input_currency": "USDC",
    "output_currency": "BRL",
}
CORRIDORS: dict[str, dict[str, str]] = {"on": ON, "off": OFF}
FIRST_PHASE = {"on": "payment", "off": "fund"}
STATE_MACHINE = {"on": "brl_on", "off": "brl_off"}

# Valid Brazilian tax ids (check digits right): a CPF and a CNPJ.
CPF = "529.982.247-25"
CPF_DIGITS = "52998224725"  # as the rail and the ramp keep it
CNPJ = "11.222.333/0001-81"
PAYER = {"tax_id": CPF, "name": "Maria Silva"}
PIX_DESTINATION = {"pix_key": "maria@example.com", "tax_id": CPF, "name": "Maria Silva"}


def payment_window_seconds() -> int:
    """The payment window of the stage the session's twin runs (``tests/e2e/conftest.py`` STAGE; a
    twin already running, ``make run``'s, runs ``local``)."""
    import os

    from infra import manifest
    from rampart.wiring.ramps import pairs
    from tests.e2e.conftest import STAGE

    (windows,) = manifest.STAGE_SETTINGS
    stage = "local" if os.environ.get("RAMPART_E2E_URL") else STAGE
    return int(pairs(windows.value(stage), "ramp_windows")["payment_window"])


def fresh_key() -> LocalAccount:
    """A brand-new key: nonce 0 and no balance on any chain (what an ephemeral must be)."""
    key: LocalAccount = Account.create()
    return key


@dataclass
class Keys:
    """The keys of one ramp: its ephemeral on base and, for an off-ramp, the user's wallet."""

    ephemeral: LocalAccount = field(default_factory=fresh_key)
    user: LocalAccount | None = None

    def by_address(self) -> dict[str, LocalAccount]:
        """Every key by its address in lower case (a blueprint's ``signer`` echoes the address as
        registered, so the lookup must not depend on its case)."""
        keys = [self.ephemeral] + ([self.user] if self.user is not None else [])
        return {key.address.lower(): key for key in keys}

    def signing_accounts(self) -> list[dict[str, str]]:
        accounts = [{"network": "base", "address": self.ephemeral.address, "role": "ephemeral"}]
        if self.user is not None:
            accounts.append({"network": "base", "address": self.user.address, "role": "user"})
        return accounts


def sign(tx_data: Mapping[str, Any], key: LocalAccount) -> str:
    """``tx_data`` signed by ``key``: the ``0x…`` raw transaction API.md's ``presigned_txs`` carry."""
    return "0x" + bytes(Account.sign_transaction(dict(tx_data), key.key).raw_transaction).hex()


def item(tx: Mapping[str, Any], raw: Any) -> dict[str, Any]:
    """A ``presigned_txs`` item for blueprint ``tx`` carrying ``raw``."""
    return {
        "network": tx["network"],
        "phase": tx["phase"],
        "nonce": tx["nonce"],
        "signer": tx["signer"],
        "tx_data": raw,
    }


def sign_all(
    ramp: Mapping[str, Any], keys: Keys, txs: Iterable[Mapping[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Every blueprint of ``ramp`` (or just ``txs``) signed by the key its ``signer`` names."""
    by_address = keys.by_address()
    chosen = ramp["unsigned_txs"] if txs is None else txs
    return [item(tx, sign(tx["tx_data"], by_address[tx["signer"].lower()])) for tx in chosen]


def problem(reply: Reply, status: int, slug: str, *fields: str) -> None:
    """``reply`` is API.md's problem+json with ``status`` and ``slug``; ``fields``, when given, are
    exactly its ``errors[].field`` pointers in order."""
    assert reply.status == status, reply
    assert reply.body["type"] == f"/problems/{slug}", reply
    assert reply.body["status"] == status, reply
    if fields:
        assert [error["field"] for error in reply.body.get("errors", [])] == list(fields), reply


def field_names(reply: Reply) -> list[str]:
    return [error["field"] for error in reply.body.get("errors", [])]


@dataclass
class Registered:
    """A ramp as registered, with the keys that sign it."""

    ramp: dict[str, Any]
    keys: Keys
    kind: str

    @property
    def id(self) -> str:
        return str(self.ramp["id"])


class Ramps:
    """One user of the twin driving ramps (a fresh user by default: nothing of another test's in
    its lists)."""

    def __init__(self, base: str, client: Client | None = None) -> None:
        self.base = base
        self.client = client if client is not None else new_user(base)
        self.anonymous = Client(base)

    # -- the outside world ----------------------------------------------------------------------
    def faucet(self, address: str, asset: str, amount: str) -> None:
        reply = self.anonymous.post("/_sim/base/faucet", {"address": address, "asset": asset, "amount": amount})
        assert reply.status == 200, reply

    def balances(self, address: str) -> dict[str, Any]:
        reply = self.anonymous.get(f"/_sim/base/balances/{address}")
        assert reply.status == 200, reply
        return dict(reply.body)

    def executions(self, name: str) -> list[dict[str, Any]]:
        reply = self.anonymous.get(f"/_twin/executions?name={name}")
        assert reply.status == 200, reply
        return list(reply.body["items"])

    def charges(self, ramp_id: str) -> list[dict[str, Any]]:
        """The PIX rail's charges for ``ramp_id`` (the rail's own view, through ``/_sim``)."""
        reply = self.anonymous.get(f"/_sim/pix/charges?ramp_id={ramp_id}")
        assert reply.status == 200, reply
        return list(reply.body["items"])

    def run_sweep(self) -> dict[str, Any]:
        reply = self.anonymous.post("/_twin/schedules/ramp-sweep/run")
        assert reply.status == 200, reply
        return dict(reply.body["result"])

    # -- quotes ---------------------------------------------------------------------------------
    def quote_reply(
        self, kind: str, amount: Any, *, client: Client | None = None, changes: Mapping[str, Any] | None = None
    ) -> Reply:
        body: dict[str, Any] = {**CORRIDORS[kind], "input_amount": amount, **(changes or {})}
        return (client or self.client).post("/v1/quotes", body)

    def quote(self, kind: str = "on", amount: str | None = None, *, client: Client | None = None) -> dict[str, Any]:
        reply = self.quote_reply(kind, amount or ("100.00" if kind == "on" else "20"), client=client)
        assert reply.status == 201, reply
        return dict(reply.body)

    # -- registration ---------------------------------------------------------------------------
    def keys(self, kind: str, *, fund_user: bool = True) -> Keys:
        """Fresh keys for a ``kind`` ramp; an off-ramp's user wallet holds USDC (it pays the input)
        and ETH (it pays its own gas)."""
        if kind == "on":
            return Keys()
        keys = Keys(user=fresh_key())
        if fund_user:
            assert keys.user is not None
            self.faucet(keys.user.address, "USDC", "100")
            self.faucet(keys.user.address, "ETH", "0.01")
        return keys

    def settled(self, ramp_id: str, timeout: float = 60.0) -> dict[str, Any]:  # not money: seconds
        """The ramp once its execution has ended it (completed, failed or expired)."""
        from tests.support.waiting import eventually

        def ended() -> dict[str, Any] | None:
            shown = self.get(ramp_id)
            return None if shown["status"] in ("initial", "running") else shown

        found: dict[str, Any] = eventually(ended, timeout=timeout, what=f"{ramp_id} ended")
        return found

    @staticmethod
    def body(
        kind: str,
        quote_id: str,
        keys: Keys,
        *,
        destination: Any = None,
        payer: Any = "default",
        accounts: Sequence[Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The registration body a correct client sends (``payer`` "default": the on-ramp's payer,
        none for an off-ramp; None: none at all)."""
        body: dict[str, Any] = {
            "quote_id": quote_id,
            "signing_accounts": list(accounts) if accounts is not None else keys.signing_accounts(),
        }
        if destination is None:
            destination = {"address": fresh_key().address} if kind == "on" else dict(PIX_DESTINATION)
        body["destination"] = destination
        if payer == "default":
            payer = dict(PAYER) if kind == "on" else None
        if payer is not None:
            body["payer"] = payer
        return body

    def register_reply(self, body: Mapping[str, Any], *, client: Client | None = None) -> Reply:
        return (client or self.client).post("/v1/ramps", dict(body), key=uuid.uuid4().hex)

    def register(
        self, kind: str = "on", *, quote: Mapping[str, Any] | None = None, keys: Keys | None = None
    ) -> Registered:
        quote = quote if quote is not None else self.quote(kind)
        keys = keys if keys is not None else self.keys(kind)
        reply = self.register_reply(self.body(kind, str(quote["id"]), keys))
        assert reply.status == 201, reply
        return Registered(dict(reply.body), keys, kind)

    # -- pre-signed, start, cancel, read --------------------------------------------------------
    def submit(self, ramp_id: str, items: Sequence[Mapping[str, Any]], *, client: Client | None = None) -> Reply:
        return (client or self.client).post(f"/v1/ramps/{ramp_id}/presigned", {"presigned_txs": list(items)})

    def signed(self, kind: str = "on") -> Registered:
        """A ramp registered with every blueprint signed and submitted."""
        registered = self.register(kind)
        reply = self.submit(registered.id, sign_all(registered.ramp, registered.keys))
        assert reply.status == 200, reply
        registered.ramp = dict(reply.body)
        return registered

    def start(self, ramp_id: str, *, client: Client | None = None) -> Reply:
        return (client or self.client).post(f"/v1/ramps/{ramp_id}/start", key=uuid.uuid4().hex)

    def started(self, kind: str = "on") -> Registered:
        registered = self.signed(kind)
        reply = self.start(registered.id)
        assert reply.status == 202, reply
        return registered

    def cancel(self, ramp_id: str, *, client: Client | None = None) -> Reply:
        return (client or self.client).post(f"/v1/ramps/{ramp_id}/cancel")

    def get(self, ramp_id: str) -> dict[str, Any]:
        reply = self.client.get(f"/v1/ramps/{ramp_id}")
        assert reply.status == 200, reply
        return dict(reply.body)


# -- the world's pool: what a quote's swap must give ------------------------------------------------
POOL_FEE_BPS = 30  # the world's pool fee (infra/world/base.py); the contract's getAmountOut uses it
CHAIN_DECIMALS = {"USDC": 6, "BRLA": 18}  # on base (API.md)


def pool_out(ramps: Ramps, asset_in: str, asset_out: str, amount_in: Decimal) -> int:
    """What the world's pool gives now for ``amount_in`` of ``asset_in``, in ``asset_out``'s chain
    units: the contract's ``getAmountOut`` (constant product after its fee) over its reserves, read
    as the pool's balances through ``/_sim`` (nothing in Ramps II swaps, so they are the reserves)."""
    world = ramps.anonymous.get("/_sim/world")
    assert world.status == 200, world
    held = ramps.balances(world.body["base"]["addresses"]["pool"])["balances"]
    reserve_in = int(Decimal(held[asset_in]).scaleb(CHAIN_DECIMALS[asset_in]))
    reserve_out = int(Decimal(held[asset_out]).scaleb(CHAIN_DECIMALS[asset_out]))
    units_in = amount_in.scaleb(CHAIN_DECIMALS[asset_in])
    assert units_in == units_in.to_integral_value(), amount_in
    with_fee = int(units_in) * (10_000 - POOL_FEE_BPS)
    return with_fee * reserve_out // (reserve_in * 10_000 + with_fee)


# -- the twin's database: what no API can do (move a quote's or a ramp's clock) ---------------------
def execute(database_url: str, sql: str, *params: Any) -> int:
    """Run one statement on the twin's database; the number of rows it touched."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute(sql, params).rowcount


def age_quote(database_url: str, quote_id: str) -> None:
    """The quote is past its ``expires_at`` from now on."""
    touched = execute(
        database_url, "UPDATE ramps.quotes SET expires_at = now() - interval '1 second' WHERE id = %s", quote_id
    )
    assert touched == 1, quote_id


def age_ramp(database_url: str, ramp_id: str) -> None:
    """The ramp is past its ``start_deadline`` from now on."""
    touched = execute(
        database_url, "UPDATE ramps.ramps SET start_deadline = now() - interval '1 second' WHERE id = %s", ramp_id
    )
    assert touched == 1, ramp_id
