"""The ledger against a simple in-memory model: a hypothesis state machine on the real PostgreSQL.

Every example has owners of its own (the database is shared by all examples), wallets in USD
(scale 2) and ETH (scale 18), and drives deposits, transfers, holds, posts, voids, forced
expiries, atomic batches and replays of used references through the :class:`Ledger` API. The
model predicts each outcome (the transfers, or the exact refusal and the batch item it names)
and after every step every balance, entry chain and transfer must equal the model's.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Literal, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from rampart.adapters.postgres.db import PooledDatabase
from rampart.core.errors import (
    CurrencyMismatch,
    DomainError,
    ExceedsHold,
    HoldExpired,
    HoldFinalized,
    InsufficientFunds,
    NotFound,
    ReferenceConflict,
    SameAccount,
    UnknownAccount,
    ValidationFailed,
)
from rampart.core.money import format_units, to_decimal, to_units
from rampart.ledger import Balance, Entry, Ledger, Transfer, TransferInput

pytestmark = pytest.mark.slow

CURRENCIES = ("USD", "ETH")
MAX_WALLETS = 6
# Holds never lapse on their own during an example: expiry is forced by back-dating them.
LONG_HOLD_SECONDS = 3_600
UNKNOWN_ID = 2**62
DEPOSIT_LIMITS = {"USD": 100_000, "ETH": 5 * 10**18}  # up to 1000.00 USD, 5 ETH

NO_ENTRIES = (0, 0, 0, 0, 0)
BACKDATE_HOLD = "UPDATE ledger.transfers SET expires_at = now() - interval '1 second' WHERE id = %s"

Kind = Literal["deposit", "transfer", "batch"]
T = TypeVar("T")


# The model ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Content:
    """What a reference is bound to: a request with the same content is a replay."""

    debit: int
    credit: int
    amount: int
    currency: str
    timeout: int | None


def content_of(item: TransferInput) -> Content:
    return Content(
        item.debit_account_id,
        item.credit_account_id,
        to_units(item.amount, item.currency),
        item.currency,
        item.timeout_seconds,
    )


@dataclass(slots=True)
class ModelAccount:
    id: int
    owner_id: str
    currency: str
    is_wallet: bool = True  # a system account (world) may go below zero
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0
    entries: int = 0

    @property
    def posted(self) -> int:
        return self.credits_posted - self.debits_posted

    @property
    def available(self) -> int:
        return self.posted - self.debits_pending

    def balance(self) -> Balance:
        return Balance(self.debits_pending, self.debits_posted, self.credits_pending, self.credits_posted)

    def fits(self, amount: int) -> bool:
        return not self.is_wallet or self.debits_pending + self.debits_posted + amount <= self.credits_posted


@dataclass(slots=True)
class ModelTransfer:
    id: int
    owner_id: str
    reference: str
    content: Content
    status: str  # posted, pending, voided, expired
    amount: int  # posted amount
    lapsed: bool = False  # pending, past its (back-dated) timeout, not yet released

    @property
    def hold_amount(self) -> int | None:
        return None if self.content.timeout is None else self.content.amount

    @property
    def visible_status(self) -> str:
        return "expired" if self.lapsed else self.status


@dataclass(frozen=True, slots=True)
class Binding:
    """A used reference: its transfer, or the refusal pinned to it."""

    content: Content
    transfer_id: int | None
    error: type[DomainError] | None


@dataclass(frozen=True, slots=True)
class Refusal:
    error: type[DomainError]
    index: int | None = None  # the batch item named
    pin: int | None = None  # the item whose reference the refusal is pinned to


@dataclass(frozen=True, slots=True)
class Replay:
    transfer_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Accept:
    """New transfers are created."""


Expected = Refusal | Replay | Accept


@dataclass(frozen=True, slots=True)
class Sent:
    """A request as sent, kept to replay it."""

    kind: Kind
    owner_id: str
    items: tuple[TransferInput, ...]
    enforce_owner: bool = True


@dataclass
class LedgerModel:
    accounts: dict[int, ModelAccount] = field(default_factory=dict)
    transfers: dict[int, ModelTransfer] = field(default_factory=dict)
    references: dict[tuple[str, str], Binding] = field(default_factory=dict)

    # queries ------------------------------------------------------------------------------------
    def wallets(self) -> list[ModelAccount]:
        return [a for a in self.accounts.values() if a.is_wallet]

    def world(self, currency: str) -> ModelAccount:
        return next(a for a in self.accounts.values() if not a.is_wallet and a.currency == currency)

    def pending_holds(self) -> list[ModelTransfer]:
        return [t for t in self.transfers.values() if t.status == "pending"]

    def refusal_of(self, owner_id: str, content: Content, enforce_owner: bool) -> type[DomainError] | None:
        """The refusal a request gets before the balance rule, if any."""
        if content.debit == content.credit:
            return SameAccount
        debit = self.accounts.get(content.debit)
        credit = self.accounts.get(content.credit)
        if debit is None or (enforce_owner and debit.owner_id != owner_id) or credit is None:
            return UnknownAccount
        if debit.currency != content.currency or credit.currency != content.currency:
            return CurrencyMismatch
        return None

    # predictions (a prediction may apply the side effects the ledger has before it answers) ----
    def expect(self, sent: Sent) -> Expected:
        if sent.kind == "batch":
            return self.expect_batch(sent.owner_id, sent.items)
        return self.expect_single(sent.owner_id, sent.items[0], sent.enforce_owner)

    def expect_single(self, owner_id: str, item: TransferInput, enforce_owner: bool) -> Expected:
        content = content_of(item)
        error = self.refusal_of(owner_id, content, enforce_owner)
        if error is None:
            debit = self.accounts[content.debit]
            if not debit.fits(content.amount):
                # Lapsed holds no longer reserve funds: a transfer that needs them releases them.
                self.release_lapsed_debits(debit.id)
                if not debit.fits(content.amount):
                    error = InsufficientFunds
        bound = self.references.get((owner_id, item.reference))
        if bound is not None:
            if bound.content != content:
                return Refusal(ReferenceConflict)
            if bound.error is not None:
                return Refusal(bound.error)  # a refusal is pinned: the same answer again
            assert bound.transfer_id is not None
            return Replay((bound.transfer_id,))
        return Refusal(error, pin=0) if error is not None else Accept()

    def expect_batch(self, owner_id: str, items: Sequence[TransferInput]) -> Expected:
        contents = [content_of(item) for item in items]
        seen: set[str] = set()
        for index, item in enumerate(items):
            if item.reference in seen:
                return Refusal(ValidationFailed, index)
            seen.add(item.reference)
        bound = [
            (index, self.references[(owner_id, item.reference)])
            for index, item in enumerate(items)
            if (owner_id, item.reference) in self.references
        ]
        if len(bound) == len(items) and all(b.content == contents[i] and b.error is None for i, b in bound):
            return Replay(tuple(b.transfer_id for _, b in bound if b.transfer_id is not None))
        if bound:
            # The first item whose reference is used decides: its pinned refusal, or a conflict.
            index, first = bound[0]
            if first.error is not None and first.content == contents[index]:
                return Refusal(first.error, index)
            return Refusal(ReferenceConflict, index)
        # The first failing item decides, whether it fails its own checks or the balance rule
        # (items applied in order). When the balance rule is what fails first, the lapsed holds of
        # every debit account of the batch are released and the rule is looked at again.
        first = self.first_batch_failure(owner_id, contents)
        if first is not None and first[1] is InsufficientFunds:
            released = sum(self.release_lapsed_debits(debit) for debit in {c.debit for c in contents})
            if released:
                first = self.first_batch_failure(owner_id, contents)
        if first is not None:
            index, error = first
            return Refusal(error, index, pin=index)
        return Accept()

    def first_batch_failure(self, owner_id: str, contents: Sequence[Content]) -> tuple[int, type[DomainError]] | None:
        debited: Counter[int] = Counter()
        credited: Counter[int] = Counter()
        for index, content in enumerate(contents):
            error = self.refusal_of(owner_id, content, enforce_owner=True)
            if error is not None:
                return index, error
            debit = self.accounts[content.debit]
            debited[debit.id] += content.amount
            if content.timeout is None:
                credited[content.credit] += content.amount
            if debit.is_wallet and (
                debit.debits_pending + debit.debits_posted + debited[debit.id]
                > debit.credits_posted + credited[debit.id]
            ):
                return index, InsufficientFunds
        return None

    def expect_finalize(
        self, transfer_id: int, action: Literal["post", "void"], amount: int | None, owner_id: str
    ) -> Expected:
        transfer = self.transfers.get(transfer_id)
        if transfer is None or self.accounts[transfer.content.debit].owner_id != owner_id:
            return Refusal(NotFound)
        if transfer.status == "expired":
            return Refusal(HoldExpired)
        if transfer.status != "pending":
            return Refusal(HoldFinalized)  # posted (a plain transfer too) or voided
        if transfer.lapsed:
            self.release(transfer, "expired")
            return Refusal(HoldExpired)
        hold_amount = transfer.hold_amount
        assert hold_amount is not None
        if action == "post" and amount is not None and amount > hold_amount:
            return Refusal(ExceedsHold)
        return Accept()

    # changes ------------------------------------------------------------------------------------
    def move(self, debit_id: int, credit_id: int, amount: int) -> None:
        debit, credit = self.accounts[debit_id], self.accounts[credit_id]
        debit.debits_posted += amount
        credit.credits_posted += amount
        debit.entries += 1
        credit.entries += 1

    def reserve(self, content: Content, sign: int) -> None:
        self.accounts[content.debit].debits_pending += sign * content.amount
        self.accounts[content.credit].credits_pending += sign * content.amount

    def create(self, owner_id: str, item: TransferInput, transfer_id: int) -> None:
        content = content_of(item)
        self.references[(owner_id, item.reference)] = Binding(content, transfer_id, None)
        hold = content.timeout is not None
        status, posted = ("pending", 0) if hold else ("posted", content.amount)
        self.transfers[transfer_id] = ModelTransfer(transfer_id, owner_id, item.reference, content, status, posted)
        if hold:
            self.reserve(content, +1)
        else:
            self.move(content.debit, content.credit, content.amount)

    def pin(self, owner_id: str, item: TransferInput, error: type[DomainError]) -> None:
        self.references[(owner_id, item.reference)] = Binding(content_of(item), None, error)

    def post(self, transfer: ModelTransfer, amount: int | None) -> None:
        self.reserve(transfer.content, -1)
        transfer.status = "posted"
        transfer.amount = transfer.content.amount if amount is None else amount
        self.move(transfer.content.debit, transfer.content.credit, transfer.amount)

    def release(self, transfer: ModelTransfer, status: str) -> None:
        assert transfer.status == "pending"
        self.reserve(transfer.content, -1)
        transfer.status = status
        transfer.lapsed = False

    def release_lapsed_debits(self, account_id: int) -> int:
        lapsed = [t for t in self.pending_holds() if t.lapsed and t.content.debit == account_id]
        for transfer in lapsed:
            self.release(transfer, "expired")
        return len(lapsed)

    def release_all_lapsed(self) -> int:
        lapsed = [t for t in self.pending_holds() if t.lapsed]
        for transfer in lapsed:
            self.release(transfer, "expired")
        return len(lapsed)


def attempt(call: Callable[[], T]) -> T | DomainError:
    """The call's result, or the refusal it raised."""
    try:
        return call()
    except DomainError as exc:
        return exc


# The state machine -------------------------------------------------------------------------------
def amount_of(units: int, currency: str, as_decimal: bool) -> str | Decimal:
    """An amount as callers state it: a decimal string, or a ``Decimal``."""
    return to_decimal(units, currency) if as_decimal else format_units(units, currency)


class LedgerMachine(RuleBasedStateMachine):
    ledger: Ledger
    db: PooledDatabase

    def __init__(self) -> None:
        super().__init__()
        tag = uuid.uuid4().hex[:10]
        self.owners = (f"model-{tag}-a", f"model-{tag}-b")
        self.model = LedgerModel()
        self.sent: list[Sent] = []
        self.references = 0
        # The world accounts are shared with every other test: the model follows their changes.
        self.world_baseline: dict[int, tuple[int, int]] = {}
        for currency in CURRENCIES:
            world = self.ledger.system_account(currency)
            self.model.accounts[world.id] = ModelAccount(world.id, world.owner_id, currency, is_wallet=False)
            entries = self.entry_stats([world.id]).get(world.id, NO_ENTRIES)[0]
            self.world_baseline[world.id] = (world.balance.posted, entries)

    # helpers ------------------------------------------------------------------------------------
    def new_reference(self) -> str:
        self.references += 1
        return f"ref-{self.references}"

    def entry_stats(self, account_ids: Sequence[int]) -> dict[int, tuple[int, int, int, int, int]]:
        """Per account: entries, debited, credited, last sequence, last balance_after."""
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT account_id, count(*), coalesce(sum(amount) FILTER (WHERE direction = 'debit'), 0), "
                "coalesce(sum(amount) FILTER (WHERE direction = 'credit'), 0), max(sequence), "
                "(array_agg(balance_after ORDER BY sequence DESC))[1] "
                "FROM ledger.entries WHERE account_id = ANY(%s) GROUP BY account_id",
                (list(account_ids),),
            ).fetchall()
        return {row[0]: (int(row[1]), int(row[2]), int(row[3]), int(row[4]), int(row[5])) for row in rows}

    def draw_units(self, data: st.DataObject, currency: str, available: int) -> int:
        upper = max(available, 1)
        return data.draw(
            st.one_of(
                st.integers(1, upper),  # fits, when anything is available
                st.sampled_from([upper, upper + 1]),  # the edge
                st.integers(1, 3 * upper + 100),  # may overdraw
            ),
            label="units",
        )

    def draw_item(self, data: st.DataObject, caller: str, *, share: int = 1, valid: int = 8) -> TransferInput:
        """A transfer from a wallet: mostly a valid one (weight ``valid`` against 1 for each way to
        be refused), for about a ``share`` of what the wallet has available."""
        wallets = self.model.wallets()
        own = [w for w in wallets if w.owner_id == caller]
        from_own: bool = bool(own) and data.draw(st.integers(0, 9), label="from_own") > 0
        candidates = own if from_own else wallets
        funded = [w for w in candidates if w.available > 0]
        from_funded: bool = bool(funded) and data.draw(st.integers(0, 9), label="from_funded") > 0
        debit = data.draw(st.sampled_from(funded if from_funded else candidates), label="debit")
        shape = data.draw(
            st.sampled_from(["valid"] * valid + ["world", "same", "other_currency", "unknown_credit", "unknown_debit"]),
            label="shape",
        )
        peers = [w for w in wallets if w.currency == debit.currency and w.id != debit.id]
        currency = debit.currency
        debit_id = debit.id
        if shape == "valid" and peers:
            credit_id = data.draw(st.sampled_from(peers), label="credit").id
        elif shape == "same":
            credit_id = debit.id
        elif shape == "other_currency" and (others := [w for w in wallets if w.currency != debit.currency]):
            credit_id = data.draw(st.sampled_from(others), label="credit").id
        elif shape == "unknown_credit":
            credit_id = UNKNOWN_ID
        elif shape == "unknown_debit" and peers:
            debit_id, credit_id = UNKNOWN_ID, data.draw(st.sampled_from(peers), label="credit").id
        else:
            credit_id = self.model.world(debit.currency).id  # a withdrawal
        units = self.draw_units(data, currency, debit.available // share)
        timeout = LONG_HOLD_SECONDS if data.draw(st.booleans(), label="hold") else None
        text = amount_of(units, currency, data.draw(st.booleans(), label="as_decimal"))
        return TransferInput(debit_id, credit_id, text, currency, self.new_reference(), timeout)

    def call(self, sent: Sent) -> list[Transfer]:
        if sent.kind == "deposit":
            item = sent.items[0]
            return [self.ledger.deposit(item.credit_account_id, item.amount, item.reference, owner_id=sent.owner_id)]
        if sent.kind == "transfer":
            return [self.ledger.transfer(sent.owner_id, sent.items[0], enforce_owner=sent.enforce_owner)]
        return self.ledger.transfer_batch(sent.owner_id, sent.items)

    def submit(self, sent: Sent) -> Expected:
        """Send a request; its outcome must be the model's prediction, which then applies."""
        expected = self.model.expect(sent)
        self.sent.append(sent)
        created = attempt(lambda: self.call(sent))
        if isinstance(created, DomainError):
            refused = created
            assert isinstance(expected, Refusal), f"model expected {expected}, ledger refused: {refused!r}"
            assert (type(refused), refused.index) == (expected.error, expected.index), f"expected {expected}"
            if refused.index is not None:  # a batch names the item at fault
                assert refused.field is not None
                assert refused.field.startswith(f"/transfers/{refused.index}/"), refused.field
            if expected.pin is not None:
                self.model.pin(sent.owner_id, sent.items[expected.pin], expected.error)
            return expected
        assert not isinstance(expected, Refusal), f"model expected {expected}, ledger accepted: {created}"
        assert len(created) == len(sent.items)
        if isinstance(expected, Replay):
            assert tuple(t.id for t in created) == expected.transfer_ids
            assert all(t.replayed for t in created)
        else:
            assert not any(t.replayed for t in created)
            for item, transfer in zip(sent.items, created, strict=True):
                self.model.create(sent.owner_id, item, transfer.id)
        for transfer in created:
            self.check_transfer(transfer)
        return expected

    def finalize(self, transfer_id: int, action: Literal["post", "void"], amount: int | None, owner_id: str) -> None:
        expected = self.model.expect_finalize(transfer_id, action, amount, owner_id)
        model = self.model.transfers.get(transfer_id)
        text = None if amount is None or model is None else format_units(amount, model.content.currency)
        if action == "post":
            result = attempt(lambda: self.ledger.post(transfer_id, text, owner_id=owner_id))
        else:
            result = attempt(lambda: self.ledger.void(transfer_id, owner_id=owner_id))
        if isinstance(result, DomainError):
            assert isinstance(expected, Refusal), f"model expected {expected}, ledger refused: {result!r}"
            assert type(result) is expected.error, f"expected {expected}, got {result!r}"
            return
        assert isinstance(expected, Accept), f"model expected {expected}, ledger {action}ed: {result}"
        assert model is not None
        if action == "post":
            self.model.post(model, amount)
        else:
            self.model.release(model, "voided")
        self.check_transfer(result)

    def check_transfer(self, transfer: Transfer) -> None:
        model = self.model.transfers[transfer.id]
        assert (
            transfer.owner_id,
            transfer.reference,
            transfer.debit_account_id,
            transfer.credit_account_id,
            transfer.currency,
            transfer.timeout_seconds,
        ) == (
            model.owner_id,
            model.reference,
            model.content.debit,
            model.content.credit,
            model.content.currency,
            model.content.timeout,
        )
        assert (transfer.status, transfer.amount, transfer.hold_amount) == (
            model.visible_status,
            model.amount,
            model.hold_amount,
        ), transfer

    def open_wallet(self, owner_id: str, currency: str) -> ModelAccount:
        account = self.ledger.open_account(owner_id, currency, "wallet")
        assert (account.owner_id, account.currency, account.balance) == (owner_id, currency, Balance(0, 0, 0, 0))
        wallet = ModelAccount(account.id, owner_id, currency)
        self.model.accounts[account.id] = wallet
        return wallet

    # rules --------------------------------------------------------------------------------------
    def fund(self, data: st.DataObject, wallet: ModelAccount) -> None:
        """A deposit from the world account (referenced by the first owner, whoever owns the wallet)."""
        units = data.draw(st.integers(1, DEPOSIT_LIMITS[wallet.currency]), label="units")
        world = self.model.world(wallet.currency)
        text = amount_of(units, wallet.currency, data.draw(st.booleans(), label="as_decimal"))
        item = TransferInput(world.id, wallet.id, text, wallet.currency, self.new_reference())
        expected = self.submit(Sent("deposit", self.owners[0], (item,), enforce_owner=False))
        assert isinstance(expected, Accept)

    @initialize(data=st.data())
    def open_first_wallets(self, data: st.DataObject) -> None:
        for owner_id, currency in ((self.owners[0], "USD"), (self.owners[0], "ETH"), (self.owners[1], "USD")):
            self.fund(data, self.open_wallet(owner_id, currency))

    @precondition(lambda self: len(self.model.wallets()) < MAX_WALLETS)
    @rule(data=st.data(), owner=st.integers(0, 1), currency=st.sampled_from(CURRENCIES), funded=st.booleans())
    def open_account(self, data: st.DataObject, owner: int, currency: str, funded: bool) -> None:
        wallet = self.open_wallet(self.owners[owner], currency)
        if funded:
            self.fund(data, wallet)

    @rule(data=st.data())
    def deposit(self, data: st.DataObject) -> None:
        self.fund(data, data.draw(st.sampled_from(self.model.wallets()), label="wallet"))

    @rule(data=st.data())
    def transfer(self, data: st.DataObject) -> None:
        caller = data.draw(st.sampled_from(self.owners), label="caller")
        self.submit(Sent("transfer", caller, (self.draw_item(data, caller),)))

    @rule(data=st.data())
    def batch(self, data: st.DataObject) -> None:
        """An atomic batch of 1 to 4 transfers; sometimes with a used or a repeated reference, or
        relaying money: an item spends what an earlier item of the batch paid in."""
        caller = data.draw(st.sampled_from(self.owners), label="caller")
        size = data.draw(st.integers(1, 4), label="size")
        items = [self.draw_item(data, caller, share=size, valid=30) for _ in range(size)]
        used = sorted(reference for owner_id, reference in self.model.references if owner_id == caller)
        twist = data.draw(
            st.sampled_from(["none"] * 6 + ["used_reference", "duplicate_reference", "relay", "relay"]), label="twist"
        )
        position = data.draw(st.integers(1, size - 1), label="position") if size > 1 else 0
        if size == 1:
            pass  # a one-item batch: refusals must still name item 0
        elif twist == "used_reference" and used:
            items[position] = replace(items[position], reference=data.draw(st.sampled_from(used), label="reference"))
        elif twist == "duplicate_reference":
            items[position] = replace(items[position], reference=items[0].reference)
        elif twist == "relay":
            items[position - 1 : position + 1] = self.draw_relay(data, caller)
        self.submit(Sent("batch", caller, tuple(items)))

    def draw_relay(self, data: st.DataObject, caller: str) -> list[TransferInput]:
        """Two items: A pays B, then B pays on more than it had before. It fits only with what the
        first item credits (and a hold credits nothing until posted)."""
        pairs = [
            (a, b)
            for a in self.model.wallets()
            for b in self.model.wallets()
            if a.owner_id == b.owner_id == caller and a.currency == b.currency and a.id != b.id
        ]
        if not pairs:
            return [self.draw_item(data, caller, share=2, valid=30) for _ in range(2)]
        first, second = data.draw(st.sampled_from(pairs), label="relay")
        currency = first.currency
        paid = data.draw(st.integers(1, max(first.available, 1)), label="paid")
        onward = second.available + paid + data.draw(st.sampled_from([0, -1, 1]), label="edge")
        timeout = LONG_HOLD_SECONDS if data.draw(st.booleans(), label="first_is_hold") else None
        onward_to = self.model.world(currency).id
        return [
            TransferInput(first.id, second.id, format_units(paid, currency), currency, self.new_reference(), timeout),
            TransferInput(second.id, onward_to, format_units(max(onward, 1), currency), currency, self.new_reference()),
        ]

    def draw_pending_hold(self, data: st.DataObject) -> tuple[ModelTransfer, str]:
        """A pending hold, and who acts on it: mostly its owner, sometimes anyone."""
        hold = self.model.transfers[
            data.draw(st.sampled_from(sorted(t.id for t in self.model.pending_holds())), label="hold")
        ]
        owner = self.model.accounts[hold.content.debit].owner_id
        return hold, data.draw(st.sampled_from([owner] * 6 + list(self.owners)), label="caller")

    @precondition(lambda self: self.model.pending_holds())
    @rule(data=st.data(), mode=st.sampled_from(["full", "partial", "over"]))
    def post_hold(self, data: st.DataObject, mode: str) -> None:
        """Post a pending hold fully, partly, or for more than it holds."""
        hold, caller = self.draw_pending_hold(data)
        amount: int | None = None
        if mode == "partial":
            amount = data.draw(st.integers(1, hold.content.amount), label="partial")
        elif mode == "over":
            amount = hold.content.amount + 1
        self.finalize(hold.id, "post", amount, caller)

    @precondition(lambda self: self.model.pending_holds())
    @rule(data=st.data())
    def void_hold(self, data: st.DataObject) -> None:
        hold, caller = self.draw_pending_hold(data)
        self.finalize(hold.id, "void", None, caller)

    @rule(data=st.data(), action=st.sampled_from(["post", "void"]))
    def finalize_settled_transfer(self, data: st.DataObject, action: Literal["post", "void"]) -> None:
        """Post or void what is no hold any more (posted, voided, expired, a plain transfer) or no
        transfer at all: refused, nothing changes."""
        settled = sorted(t.id for t in self.model.transfers.values() if t.status != "pending")
        transfer = data.draw(st.sampled_from([*settled, UNKNOWN_ID]), label="transfer")
        model = self.model.transfers.get(transfer)
        owner = self.owners[0] if model is None else self.model.accounts[model.content.debit].owner_id
        caller = data.draw(st.sampled_from([owner, *self.owners]), label="caller")
        self.finalize(transfer, action, None, caller)

    @precondition(lambda self: self.model.pending_holds())
    @rule(data=st.data(), how=st.sampled_from(["sweep", "post", "void", "needed_by_transfer"]))
    def force_expiry(self, data: st.DataObject, how: str) -> None:
        """Back-date a hold past its timeout; it then reads as expired and is released by the
        sweep, by a post or void attempt, or by a transfer that needs the funds it reserved."""
        hold = data.draw(st.sampled_from(sorted(t.id for t in self.model.pending_holds())), label="hold")
        model = self.model.transfers[hold]
        with self.db.connection() as conn:
            conn.execute(BACKDATE_HOLD, (hold,))
        model.lapsed = True
        self.check_transfer(self.ledger.transfer_by_id(hold))  # reads as expired before any release

        debit = self.model.accounts[model.content.debit]
        if how == "sweep":
            released = self.ledger.expire_holds()  # other tests' lapsed holds may go with it
            assert self.model.release_all_lapsed() == 1
            assert released >= 1
        elif how in ("post", "void"):
            self.finalize(hold, "post" if how == "post" else "void", None, debit.owner_id)
        else:
            peers = [w for w in self.model.wallets() if w.currency == debit.currency and w.id != debit.id]
            credit = peers[0] if peers else self.model.world(debit.currency)
            hold_amount = model.hold_amount
            assert hold_amount is not None
            units = debit.available + hold_amount  # fits only once the lapsed hold is released
            item = TransferInput(
                debit.id, credit.id, format_units(units, debit.currency), debit.currency, self.new_reference()
            )
            assert isinstance(self.submit(Sent("transfer", debit.owner_id, (item,))), Accept)
        assert model.status == "expired"
        assert not model.lapsed
        self.check_transfer(self.ledger.transfer_by_id(hold))

    def draw_sent(self, data: st.DataObject) -> Sent:
        """A request sent before: a transfer or batch as often as a deposit (there are many)."""
        kinds = sorted({sent.kind for sent in self.sent})
        kind = data.draw(st.sampled_from(kinds), label="kind")
        return data.draw(st.sampled_from([sent for sent in self.sent if sent.kind == kind]), label="sent")

    @precondition(lambda self: self.sent)
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        """The same request again: the same transfers (replayed), or the same refusal."""
        self.submit(self.draw_sent(data))

    @precondition(lambda self: self.sent)
    @rule(data=st.data())
    def replay_with_other_content(self, data: st.DataObject) -> None:
        """A used reference with another amount: a conflict (unless the reference was never bound)."""
        sent = self.draw_sent(data)
        position = data.draw(st.integers(0, len(sent.items) - 1), label="position")
        item = sent.items[position]
        changed = replace(item, amount=format_units(to_units(item.amount, item.currency) + 1, item.currency))
        items = (*sent.items[:position], changed, *sent.items[position + 1 :])
        self.submit(replace(sent, items=items))

    @precondition(lambda self: self.model.wallets())
    @rule(data=st.data(), page_size=st.integers(1, 4))
    def read_entries(self, data: st.DataObject, page_size: int) -> None:
        """Page through one wallet's entries: a gapless chain of running balances."""
        wallet = data.draw(st.sampled_from(self.model.wallets()), label="wallet")
        entries: list[Entry] = []
        cursor: str | None = None
        while True:
            page = self.ledger.entries(wallet.id, limit=page_size, cursor=cursor)
            entries.extend(page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert [e.sequence for e in entries] == list(range(wallet.entries, 0, -1))
        running = 0
        for entry in reversed(entries):
            running += entry.amount if entry.direction == "credit" else -entry.amount
            assert entry.balance_after == running
            assert self.model.transfers[entry.transfer_id].status == "posted"
        assert running == wallet.posted

    # invariants ---------------------------------------------------------------------------------
    @invariant()
    def balances_match(self) -> None:
        wallets = {w.id: w for w in self.model.wallets()}
        for owner_id in self.owners:
            accounts = self.ledger.accounts(owner_id, limit=100).items
            assert {a.id for a in accounts} == {w.id for w in wallets.values() if w.owner_id == owner_id}
            for account in accounts:
                model = wallets[account.id]
                assert account.balance == model.balance(), (account.id, account.currency)
                assert account.balance.available == model.available >= 0
        for world_id, (posted_before, _) in self.world_baseline.items():
            world = self.model.accounts[world_id]
            assert self.ledger.account(world_id).balance.posted - posted_before == world.posted

    @invariant()
    def entries_match(self) -> None:
        stats = self.entry_stats(list(self.model.accounts))
        for account in self.model.wallets():
            entries, debited, credited, last_sequence, last_balance = stats.get(account.id, NO_ENTRIES)
            assert (entries, last_sequence) == (account.entries, account.entries)
            assert (debited, credited, last_balance) == (account.debits_posted, account.credits_posted, account.posted)
        for world_id, (_, entries_before) in self.world_baseline.items():
            assert stats.get(world_id, NO_ENTRIES)[0] - entries_before == self.model.accounts[world_id].entries

    @invariant()
    def transfers_match(self) -> None:
        for owner_id in self.owners:
            listed: list[Transfer] = []
            cursor: str | None = None
            while True:
                page = self.ledger.transfers(owner_id, limit=100, cursor=cursor)
                listed.extend(page.items)
                cursor = page.next_cursor
                if cursor is None:
                    break
            expected = {t.id for t in self.model.transfers.values() if t.owner_id == owner_id}
            assert {t.id for t in listed} == expected
            for transfer in listed:
                self.check_transfer(transfer)


STATEFUL_SETTINGS = settings(
    max_examples=50,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def test_ledger_matches_an_in_memory_model(ledger: Ledger, db: PooledDatabase) -> None:
    class BoundLedgerMachine(LedgerMachine):
        pass

    BoundLedgerMachine.ledger = ledger
    BoundLedgerMachine.db = db
    run_state_machine_as_test(BoundLedgerMachine, settings=STATEFUL_SETTINGS)
