"""Scripts: what ``POST /_sim/providers/{name}/script`` tells a provider to do wrong, and the counters
that make it fire exactly as told.

A script names any of:

- ``fail_next: N`` with ``failure``: the next N calls fail — ``unavailable`` (HTTP 503, transient),
  ``reject`` (a 4xx business refusal, final) or ``revert`` (``base``: the next submitted
  transaction is refused as reverted, final). A failed call changes nothing.
- ``hang_next: N``: the next N calls take effect, but their reply never comes (the connection is held
  past any client timeout, then closed).
- ``delay_seconds: S``: every call waits S seconds first (0 stops it).
- ``duplicate_webhooks: true | false | N``: every webhook (or the next N) is sent twice.
- ``drop_webhooks: true | false | N``: every webhook (or the next N) is never sent (not even queued).
- ``never_confirm: true | false | N``: every mint / payout (or the next N) stays ``pending``: nothing
  moves and no webhook is sent.
- ``match``: which calls the script applies to (absent or null: every call). A call that does not
  match passes untouched and uses nothing up; the delay, the webhook switches and ``never_confirm``
  follow the match too. For ``base``: ``{from?, to?, recipient?, nonce?}`` — only
  ``eth_sendRawTransaction`` calls whose decoded transaction has every given field (addresses in
  any case; ``to`` is the transaction's, a token's contract for a token transfer; ``recipient`` is
  an ERC-20 ``transfer`` / ``transferFrom``'s recipient). For ``pix``: ``{operation?: "charge" |
  "mint" | "payout" | "refund", reference?}`` — the API calls (and webhooks) of that operation,
  for that reference: a charge's or payout's ``reference``, or the ramp id a mint's, payout's or
  refund's ``key`` begins with (``{ramp_id}:…``); ``charge.paid`` is the charge's webhook, a
  ``refund.completed`` the refund's.
- ``reset: true``: forget the provider's script first.

A call takes at most one failure: a pending ``fail_next`` is used before a pending ``hang_next``.
For ``base``, ``reject`` and ``revert`` count only ``eth_sendRawTransaction`` calls (and with a
``match`` every failure does); every other failure counts every call. Scripts live in memory: a
restarted world starts without any.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

FAILURES = ("unavailable", "reject", "revert")
PROVIDERS = ("pix", "base")  # the providers this world simulates (API.md lists the others to come)
FOREVER = -1  # a switch that stays on until turned off
PIX_OPERATIONS = ("charge", "mint", "payout", "refund")
MATCH_FIELDS: dict[str, tuple[str, ...]] = {
    "base": ("from", "to", "recipient", "nonce"),
    "pix": ("operation", "reference"),
}
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_SWITCHES = ("duplicate_webhooks", "drop_webhooks", "never_confirm")


class ScriptError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass
class Script:
    fail_next: int = 0
    failure: str = "unavailable"
    hang_next: int = 0
    delay_seconds: str = "0"  # a decimal string: never a float in state
    duplicate_webhooks: int = 0  # FOREVER, 0, or the webhooks left
    drop_webhooks: int = 0  # FOREVER, 0, or the webhooks left
    never_confirm: int = 0  # FOREVER, 0, or the operations left
    match: dict[str, Any] | None = None  # None: every call


def _count(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
        raise ScriptError(f"/{name}", "must be an integer from 0 to 1000000")
    return value


def _switch(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        return FOREVER if value else 0
    return _count(body, name)


def _match(provider: str, value: Any) -> dict[str, Any] | None:
    """The validated ``match`` (addresses kept lower-case), or None for "every call"."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ScriptError("/match", "must be an object (or null: every call)")
    allowed = MATCH_FIELDS[provider]
    match: dict[str, Any] = {}
    for name, given in value.items():
        field = f"/match/{name}"
        if name not in allowed:
            raise ScriptError(field, f"unknown field for {provider} (expected one of {list(allowed)})")
        if name == "nonce":
            if isinstance(given, bool) or not isinstance(given, int) or given < 0:
                raise ScriptError(field, "must be a non-negative integer")
            match[name] = given
        elif name in ("from", "to", "recipient"):
            if not isinstance(given, str) or not _ADDRESS.match(given):
                raise ScriptError(field, "must be a 20-byte hex address (0x…)")
            match[name] = given.lower()
        elif name == "operation":
            if given not in PIX_OPERATIONS:
                raise ScriptError(field, f"must be one of {list(PIX_OPERATIONS)}")
            match[name] = given
        else:  # reference
            if not isinstance(given, str) or not given.strip() or len(given) > 100:
                raise ScriptError(field, "must be a non-empty string of at most 100")
            match[name] = given
    if not match:
        raise ScriptError("/match", f"must name at least one of {list(allowed)} (or be null: every call)")
    return match


def matches(match: Mapping[str, Any] | None, facts: Mapping[str, Any] | None) -> bool:
    """Whether a call (or webhook) with ``facts`` is one ``match`` names: every named field equal
    (addresses in any case). No match → every call; a match but no facts → not this call."""
    if match is None:
        return True
    if facts is None:
        return False
    for name, wanted in match.items():
        found = facts.get(name)
        if isinstance(found, str) and isinstance(wanted, str) and name in ("from", "to", "recipient"):
            found = found.lower()
        if found is None or found != wanted:
            return False
    return True


class Scripts:
    """The scripts of every provider; thread-safe: each ``take_*`` uses up what it returns.

    ``facts`` describe one call or webhook for a script's ``match`` (:func:`matches`): for ``base``
    a list, one per submitted transaction (``{from, to, recipient, nonce}``; any of them matching is
    enough), for ``pix`` one mapping ``{operation, reference}``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, Script] = {name: Script() for name in PROVIDERS}

    def set(self, provider: str, body: Any) -> dict[str, Any]:
        if provider not in self._scripts:
            raise KeyError(provider)
        if not isinstance(body, dict):
            raise ScriptError("/", "the script must be a JSON object")
        known = {"fail_next", "failure", "hang_next", "delay_seconds", "match", "reset", *_SWITCHES}
        for name in body:
            if name not in known:
                raise ScriptError(f"/{name}", f"unknown script field (expected one of {sorted(known)})")
        failure = body.get("failure")
        if failure is not None and failure not in FAILURES:
            raise ScriptError("/failure", f"must be one of {list(FAILURES)}")
        if failure == "revert" and provider != "base":
            raise ScriptError("/failure", "revert is a chain's failure (base)")
        delay = body.get("delay_seconds")
        if delay is not None:
            try:
                parsed = Decimal(str(delay))
            except InvalidOperation:
                raise ScriptError("/delay_seconds", "must be a number of seconds") from None
            if isinstance(delay, bool) or not parsed.is_finite() or not 0 <= parsed <= 600:
                raise ScriptError("/delay_seconds", "must be a number of seconds from 0 to 600")
        if "reset" in body and not isinstance(body["reset"], bool):
            raise ScriptError("/reset", "must be true or false")
        match = _match(provider, body.get("match"))
        fail_next, hang_next = _count(body, "fail_next"), _count(body, "hang_next")
        switches = {name: _switch(body, name) for name in _SWITCHES}
        with self._lock:
            script = Script() if body.get("reset") else self._scripts[provider]
            if fail_next is not None:
                script.fail_next = fail_next
                script.failure = failure or "unavailable"
            elif failure is not None:
                script.failure = failure
            if hang_next is not None:
                script.hang_next = hang_next
            if delay is not None:
                script.delay_seconds = str(Decimal(str(delay)))
            for name, value in switches.items():
                if value is not None:
                    setattr(script, name, value)
            if "match" in body:
                script.match = match
            self._scripts[provider] = script
            return self._describe(script)

    def get(self, provider: str) -> dict[str, Any]:
        with self._lock:
            return self._describe(self._scripts[provider])

    @staticmethod
    def _describe(script: Script) -> dict[str, Any]:
        described = asdict(script)
        for name in _SWITCHES:
            described[name] = True if described[name] == FOREVER else described[name]
        return described

    def _applies(self, provider: str, facts: Any) -> bool:
        """Whether the provider's script applies to a call with ``facts`` (the lock held)."""
        match = self._scripts[provider].match
        if match is None:
            return True
        candidates = facts if isinstance(facts, list) else [facts]
        return any(matches(match, one) for one in candidates)

    def delay(self, provider: str, facts: Any = None) -> Decimal:
        with self._lock:
            if not self._applies(provider, facts):
                return Decimal(0)
            return Decimal(self._scripts[provider].delay_seconds)

    def take_call(self, provider: str, *, submits: bool = False, facts: Any = None) -> tuple[str | None, bool]:
        """For one call: (the failure it must fail with or None, whether it must hang). ``submits``:
        the call submits a transaction (what ``reject``/``revert`` of a chain count)."""
        with self._lock:
            script = self._scripts[provider]
            if not self._applies(provider, facts):
                return None, False
            if script.fail_next > 0:
                counts = script.failure == "unavailable" or provider != "base" or submits
                if counts:
                    script.fail_next -= 1
                    return script.failure, False
            if script.hang_next > 0:
                script.hang_next -= 1
                return None, True
            return None, False

    def _take_switch(self, provider: str, name: str, facts: Any) -> bool:
        with self._lock:
            script = self._scripts[provider]
            left = getattr(script, name)
            if left == 0 or not self._applies(provider, facts):
                return False
            if left > 0:
                setattr(script, name, left - 1)
            return True

    def take_duplicate(self, provider: str, facts: Any = None) -> bool:
        return self._take_switch(provider, "duplicate_webhooks", facts)

    def take_drop(self, provider: str, facts: Any = None) -> bool:
        return self._take_switch(provider, "drop_webhooks", facts)

    def take_never_confirm(self, provider: str, facts: Any = None) -> bool:
        return self._take_switch(provider, "never_confirm", facts)
