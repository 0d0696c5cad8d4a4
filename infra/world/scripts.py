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
- ``never_confirm: true | false | N``: every mint / payout (or the next N) stays ``pending``: nothing
  moves and no webhook is sent.
- ``reset: true``: forget the provider's script first.

A call takes at most one failure: a pending ``fail_next`` is used before a pending ``hang_next``.
For ``base``, ``reject`` and ``revert`` count only ``eth_sendRawTransaction`` calls; every other
failure counts every call. Scripts live in memory: a restarted world starts without any.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

FAILURES = ("unavailable", "reject", "revert")
PROVIDERS = ("pix", "base")  # the providers this world simulates (API.md lists the others to come)
FOREVER = -1  # a switch that stays on until turned off


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
    never_confirm: int = 0  # FOREVER, 0, or the operations left


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


class Scripts:
    """The scripts of every provider; thread-safe: each ``take_*`` uses up what it returns."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, Script] = {name: Script() for name in PROVIDERS}

    def set(self, provider: str, body: Any) -> dict[str, Any]:
        if provider not in self._scripts:
            raise KeyError(provider)
        if not isinstance(body, dict):
            raise ScriptError("/", "the script must be a JSON object")
        known = {"fail_next", "failure", "hang_next", "delay_seconds", "duplicate_webhooks", "never_confirm", "reset"}
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
        fail_next, hang_next = _count(body, "fail_next"), _count(body, "hang_next")
        duplicate, never = _switch(body, "duplicate_webhooks"), _switch(body, "never_confirm")
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
            if duplicate is not None:
                script.duplicate_webhooks = duplicate
            if never is not None:
                script.never_confirm = never
            self._scripts[provider] = script
            return self._describe(script)

    def get(self, provider: str) -> dict[str, Any]:
        with self._lock:
            return self._describe(self._scripts[provider])

    @staticmethod
    def _describe(script: Script) -> dict[str, Any]:
        described = asdict(script)
        for name in ("duplicate_webhooks", "never_confirm"):
            described[name] = True if described[name] == FOREVER else described[name]
        return described

    def delay(self, provider: str) -> Decimal:
        with self._lock:
            return Decimal(self._scripts[provider].delay_seconds)

    def take_call(self, provider: str, *, submits: bool = False) -> tuple[str | None, bool]:
        """For one call: (the failure it must fail with or None, whether it must hang). ``submits``:
        the call submits a transaction (what ``reject``/``revert`` of a chain count)."""
        with self._lock:
            script = self._scripts[provider]
            if script.fail_next > 0:
                counts = script.failure == "unavailable" or provider != "base" or submits
                if counts:
                    script.fail_next -= 1
                    return script.failure, False
            if script.hang_next > 0:
                script.hang_next -= 1
                return None, True
            return None, False

    def _take_switch(self, provider: str, name: str) -> bool:
        with self._lock:
            script = self._scripts[provider]
            left = getattr(script, name)
            if left == 0:
                return False
            if left > 0:
                setattr(script, name, left - 1)
            return True

    def take_duplicate(self, provider: str) -> bool:
        return self._take_switch(provider, "duplicate_webhooks")

    def take_never_confirm(self, provider: str) -> bool:
        return self._take_switch(provider, "never_confirm")
