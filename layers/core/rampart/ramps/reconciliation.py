"""Reconciliation (API.md, ``GET /v1/admin/reconciliation``): every mirrored ledger account against
the balance it mirrors on its chain. After a ramp ends there is no difference; a difference means
the ledger and the world disagree — an operator looks before anything else moves."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from rampart.core.money import format_units, scale_of
from rampart.journal.models import Mirrored
from rampart.ramps.chains import ChainUnavailable, EvmChainPort
from rampart.ramps.errors import ServiceUnavailable
from rampart.ramps.models import NETWORK_DECIMALS


class MirrorReader(Protocol):
    def mirrored(self, recent_seconds: int | None = None) -> list[Mirrored]:
        """Every mirror; with ``recent_seconds``, the platform's and those opened that recently."""
        ...


@dataclass(frozen=True)
class Difference:
    account_id: int
    network: str
    asset: str
    address: str
    ledger: str  # decimal strings at the asset's ledger scale
    actual: str


@dataclass(frozen=True)
class Report:
    checked_at: datetime
    checked: int
    differences: Sequence[Difference]


def reconcile(
    mirrors: MirrorReader, chains: Callable[[str], EvmChainPort], recent_seconds: int | None = None
) -> Report:
    """Every mirror against its chain (``recent_seconds``: see :meth:`MirrorReader.mirrored`)."""
    differences: list[Difference] = []
    found = mirrors.mirrored(recent_seconds)
    for mirror in found:
        network, asset = mirror.holder.network, mirror.asset
        try:
            chain_units = chains(network).balance(mirror.holder.address, asset)
        except ChainUnavailable as error:
            raise ServiceUnavailable(f"the {network} network did not answer; try again ({error})") from None
        actual = chain_units * 10 ** (scale_of(asset) - NETWORK_DECIMALS[network][asset])
        if actual != mirror.balance:
            differences.append(
                Difference(
                    account_id=mirror.account_id,
                    network=network,
                    asset=asset,
                    address=mirror.holder.address,
                    ledger=format_units(mirror.balance, asset),
                    actual=format_units(actual, asset),
                )
            )
    return Report(checked_at=datetime.now(UTC), checked=len(found), differences=differences)
