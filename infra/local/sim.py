"""A home for the twin-only ``/_sim/…`` routes (API.md, "Twin only: simulators").

The gateway consults this registry before the manifest's routes. A simulator is a module with a
``register(sims, twin)`` function, listed in :data:`SIMULATORS`; the twin calls each at start::

    # infra/local/sims/evm.py
    def register(sims: SimRegistry, twin: Twin) -> None:
        @sims.route("POST", "/_sim/evm/faucet")
        def faucet(request: SimRequest) -> SimReply:
            body = request.json()
            ...
            return SimReply(200, {"tx_hash": "0x…"})

Simulators are never deployed: nothing under ``/_sim`` is in the manifest or in OpenAPI.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.local.routing import Resolved, Router

PREFIX = "/_sim/"
# "module" paths whose ``register(sims, twin)`` the twin calls at start (later issues add theirs).
SIMULATORS: list[str] = ["infra.world.twin"]  # forwards /_sim/… to the twin's world process


class SimError(Exception):
    """Raised by a simulator: answered as a problem+json of that status and slug."""

    def __init__(self, status: int, slug: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.slug, self.detail = status, slug, detail


@dataclass
class SimRequest:
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError as exc:
            raise SimError(400, "malformed-request", "the body is not valid JSON") from exc


@dataclass
class SimReply:
    status: int
    body: Any = None  # JSON-serializable; None: no body
    headers: dict[str, str] = field(default_factory=dict)


SimHandler = Callable[[SimRequest], SimReply]


class SimRegistry:
    def __init__(self) -> None:
        self._router: Router[SimHandler] = Router()

    def add(self, method: str, path: str, handler: SimHandler) -> None:
        if not path.startswith(PREFIX):
            raise ValueError(f"simulator routes live under {PREFIX}: {path!r}")
        self._router.add(method, path, handler)

    def route(self, method: str, path: str) -> Callable[[SimHandler], SimHandler]:
        def decorate(handler: SimHandler) -> SimHandler:
            self.add(method, path, handler)
            return handler

        return decorate

    def resolve(self, method: str, path: str) -> Resolved[SimHandler] | None:
        return self._router.resolve(method, path)

    def routes(self) -> list[dict[str, str]]:
        return [
            {"method": m, "path": p, "handler": getattr(h, "__qualname__", repr(h))}
            for m, p, h in self._router.entries()
        ]
