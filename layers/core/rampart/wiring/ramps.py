"""Per-container wiring of the ramps: the store on the process-wide database, the chains and
rails built on first use from the settings (the manifest's ``External`` resources and the PIX API
key's secret), the pool prices, Step Functions, and the stage's windows.

Settings (:mod:`rampart.core.settings`): ``base_rpc_url``, ``base_contracts``, ``base_accounts``
(``name=0x…`` pairs), ``pix_base_url`` and ``pix_api_key_arn``; ``brl_on_state_machine_arn`` /
``brl_off_state_machine_arn``; ``ramp_windows`` (the manifest's per stage); ``fx_usd``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from rampart.core.settings import ConfigurationError, settings
from rampart.ramps.service import RampService, Windows
from rampart.wiring import forget, per_database
from rampart.wiring.ledger import _DeferredCursors

if TYPE_CHECKING:
    from rampart.ramps.execution import Executor

log = logging.getLogger("rampart.wiring.ramps")


def pairs(text: str | None, what: str) -> dict[str, str]:
    """``name=value,…`` → a dict; ConfigurationError when absent."""
    if not text:
        raise ConfigurationError(f"{what} is not configured")
    found: dict[str, str] = {}
    for item in text.split(","):
        name, _, value = item.strip().partition("=")
        if name and value:
            found[name] = value
    return found


@cache
def chain(network: str) -> Any:
    """The network's chain adapter (base only so far)."""
    if network != "base":
        raise ConfigurationError(f"no chain adapter for {network}")
    from rampart.adapters.chains.evm.client import EvmChain

    current = settings()
    if not current.base_rpc_url:
        raise ConfigurationError("set RAMPART_BASE_RPC_URL: base's JSON-RPC endpoint")
    contracts = pairs(current.base_contracts, "RAMPART_BASE_CONTRACTS")
    return EvmChain(
        current.base_rpc_url, {k: v for k, v in contracts.items() if k in ("USDC", "BRLA", "pool", "sweeper")}
    )


@cache
def platform(network: str) -> Mapping[str, str]:
    """The platform's addresses on ``network`` (fee collector, liquidity, operator, provider…)."""
    if network != "base":
        raise ConfigurationError(f"no platform accounts on {network}")
    return pairs(settings().base_accounts, "RAMPART_BASE_ACCOUNTS")


@cache
def rail(name: str) -> Any:
    if name != "pix":
        raise ConfigurationError(f"no rail adapter for {name}")
    from rampart.adapters.aws.secrets import get_secret
    from rampart.adapters.rails.pix import PixRail

    current = settings()
    if not current.pix_base_url or not current.pix_api_key_arn:
        raise ConfigurationError("set RAMPART_PIX_BASE_URL and RAMPART_PIX_API_KEY_ARN: the PIX provider")
    return PixRail(current.pix_base_url, api_key=get_secret(current.pix_api_key_arn).strip())


def windows() -> Windows:
    """The stage's windows (``RAMPART_RAMP_WINDOWS``, from the manifest); API.md's when unset."""
    given = settings().ramp_windows
    if not given:
        return Windows()
    values = pairs(given, "RAMPART_RAMP_WINDOWS")
    try:
        parsed = {name: int(values[name]) for name in ("quote_ttl", "start_deadline", "payment_window")}
        parsed |= {name: int(values[name]) for name in ("watch_grace", "silence") if name in values}
    except (KeyError, ValueError):
        expected = "quote_ttl=…,start_deadline=…,payment_window=…[,watch_grace=…,silence=…] (seconds)"
        raise ConfigurationError(f"RAMPART_RAMP_WINDOWS: expected {expected}, got {given!r}") from None
    if any(seconds <= 0 for seconds in parsed.values()):
        raise ConfigurationError("RAMPART_RAMP_WINDOWS: every window is a positive number of seconds")
    return Windows(**parsed)


def _workflows() -> Any:
    from rampart.adapters.aws.stepfunctions import StepFunctionsWorkflows

    current = settings()
    arns = {"brl_on": current.brl_on_state_machine_arn or "", "brl_off": current.brl_off_state_machine_arn or ""}
    return StepFunctionsWorkflows({name: arn for name, arn in arns.items() if arn})


def _prices() -> Any:
    from rampart.adapters.prices.pool import PoolPrices, parse_fx

    try:
        table = parse_fx(settings().fx_usd)
    except ValueError as error:
        raise ConfigurationError(f"RAMPART_FX_USD: {error}") from None
    return PoolPrices(chain, table)


def service() -> RampService:
    """The container's ramp service, on the process-wide database (a new one once that was reset)."""
    from rampart.adapters.postgres.ramp_store import PostgresRampStore

    return per_database(
        "ramps",
        lambda database: RampService(
            PostgresRampStore(database),
            chains=chain,
            rails=rail,
            prices=_prices(),
            workflows=_workflows(),
            platform=platform,
            cursors=_DeferredCursors(),
            windows=windows(),
        ),
    )


@cache
def platform_keys() -> Mapping[str, str]:
    """The platform's private keys by role (the ``platform_keys`` secret: ``{"base": {role: key}}``)."""
    import json

    from rampart.adapters.aws.secrets import get_secret

    arn = settings().platform_keys_arn
    if not arn:
        raise ConfigurationError("set RAMPART_PLATFORM_KEYS_ARN: the platform's keys sign its own transactions")
    try:
        parsed = json.loads(get_secret(arn))
        keys = {f"{network}:{role}": str(key) for network, roles in parsed.items() for role, key in roles.items()}
    except (ValueError, AttributeError, TypeError):
        raise ConfigurationError("the platform_keys secret is not {network: {role: key}} JSON") from None
    return keys


def _key(network: str, role: str) -> str:
    found = platform_keys().get(f"{network}:{role}")
    if found is None:
        raise ConfigurationError(f"no platform key for {role} on {network}")
    return found


@cache
def _tasks() -> Any:
    """The container's Step Functions client for completing waiting tasks (made once)."""
    from rampart.adapters.aws.stepfunctions import StepFunctionsTasks

    return StepFunctionsTasks()


def executor() -> Executor:
    """The container's executor of ramp phases (the ``ramp_worker``)."""
    from rampart.adapters.postgres.journal_store import PostgresJournalStore
    from rampart.adapters.postgres.rail_store import PostgresRailReader
    from rampart.adapters.postgres.ramp_store import PostgresRampStore
    from rampart.ramps.execution import Executor

    return per_database(
        "ramp_executor",
        lambda database: Executor(
            PostgresRampStore(database),
            PostgresJournalStore(database),
            chains=chain,
            rails=rail,
            payments=PostgresRailReader(database),
            tasks=_tasks(),
            platform=platform,
            keys=_key,
        ),
    )


# The schedule's reconciliation: the platform's accounts and the mirrors of the last day (a ramp's
# ephemeral is looked at while it runs and for a day after): every minute, it does not grow with
# every ramp ever made. The admin endpoint compares every mirror.
WATCH_RECONCILES_SECONDS = 86_400


def reconcile(recent_seconds: int | None = None) -> Any:
    """Mirrored accounts against their chain (rampart.ramps.reconciliation): every one, or the
    platform's and the recent ones."""
    from rampart.adapters.postgres.db import get_database
    from rampart.adapters.postgres.journal_store import PostgresJournalStore
    from rampart.ramps.reconciliation import reconcile as run

    return run(PostgresJournalStore(get_database()), chain, recent_seconds)


def resume_payment_wait(reference: str) -> bool:
    """After the rail recorded a payment for ``reference`` (a ramp id): complete the ramp's payment
    wait if its task token is kept (the webhook path calls this)."""
    from rampart.adapters.postgres.db import get_database
    from rampart.adapters.postgres.rail_store import PostgresRailReader
    from rampart.adapters.postgres.ramp_store import PostgresRampStore
    from rampart.ramps.execution import complete_payment_wait, payment_verdict

    database = get_database()
    ramps = PostgresRampStore(database)
    token, phase = ramps.task_token(reference)
    if token is None or phase != "payment":
        return False
    ramp = ramps.ramp(reference)
    if ramp is None or ramp.status != "running":
        return False
    verdict = payment_verdict(PostgresRailReader(database).payments_for(ramp.corridor.rail, reference), ramp)
    return complete_payment_wait(_tasks(), token, verdict)


def watch() -> dict[str, Any]:
    """The ``ramp-watch`` schedule: lost or silent running ramps paused (rampart.ramps.watch), then
    the reconciliation; what it found, for the function's metrics."""
    from datetime import UTC, datetime

    from rampart.adapters.postgres.db import get_database
    from rampart.adapters.postgres.ramp_store import PostgresRampStore
    from rampart.ramps.errors import ServiceUnavailable
    from rampart.ramps.watch import WatchWindows
    from rampart.ramps.watch import watch as run

    current = windows()
    found = find_payments(current.watch_grace)
    report = run(
        PostgresRampStore(get_database()),
        _workflows(),
        WatchWindows(current.watch_grace, current.silence, current.payment_window),
        lambda: datetime.now(UTC),
        moving=found,
    )
    try:
        differences: int | None = len(reconcile(WATCH_RECONCILES_SECONDS).differences)
    except ServiceUnavailable as error:  # a chain that did not answer: no figure this time, said so
        log.warning("reconciliation skipped: a chain did not answer", extra={"reason": error.detail})
        differences = None
    return {
        "payments_found": found,
        "looked_at": report.looked_at,
        "paused": report.paused,
        "stop_failed": report.stop_failed,
        "paused_total": report.paused_total,
        "differences": differences,
    }


def find_payments(idle_seconds: int, limit: int = 100) -> list[str]:
    """Ramps waiting for their payment for ``idle_seconds`` with none recorded: the rail is asked
    for the charge's payments, which are recorded as their ``charge.paid`` webhooks would have
    been (the same parser and rail state, idempotent by payment id) and complete the wait. A
    webhook that never came costs a minute, not the ramp. The ramps whose wait it completed."""
    from datetime import UTC, datetime

    from rampart.adapters.postgres.db import get_database
    from rampart.adapters.postgres.rail_store import PostgresRailReader, PostgresRailState
    from rampart.adapters.postgres.ramp_store import PostgresRampStore
    from rampart.core.errors import DomainError
    from rampart.rails import RailService, parse_event
    from rampart.ramps.rails import RailError

    database = get_database()
    recorded = PostgresRailReader(database)
    completed: list[str] = []
    for ramp in PostgresRampStore(database).waiting_for_payment(idle_seconds, limit):
        provider = ramp.corridor.rail
        if recorded.payments_for(provider, ramp.id) or ramp.charge_id is None:
            continue  # recorded: its webhook completed the wait, or will (the queue retries it)
        try:
            items = rail(provider).charge_payments(ramp.charge_id)
        except RailError as error:
            log.warning("payments not looked up", extra={"ramp_id": ramp.id, "reason": error.message})
            continue
        for item in items:
            try:
                event = parse_event(
                    {
                        "id": f"evt_lookup_{item.get('payment_id')}",
                        "type": "charge.paid",
                        "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                        "data": dict(item),
                    }
                )
                with database.connection() as conn, conn.transaction():
                    done = RailService(PostgresRailState(conn)).apply(provider, event)
            except DomainError as error:  # malformed, or contradicting what is recorded: an operator's
                log.error("a looked-up payment was not recorded", extra={"ramp_id": ramp.id, "reason": error.detail})
                continue
            log.warning("a payment whose webhook never came was found", extra={"ramp_id": ramp.id, "applied": done})
        if items and resume_payment_wait(ramp.id):
            completed.append(ramp.id)
    return completed


def reset() -> None:
    """Forget every singleton (tests, twin restarts)."""
    forget("ramps", "ramp_executor")
    platform_keys.cache_clear()
    _tasks.cache_clear()
    chain.cache_clear()
    platform.cache_clear()
    rail.cache_clear()
