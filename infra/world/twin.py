"""The world beside the local twin: ``make run`` (and every twin that runs Rampart's manifest) starts
it as a child process, gives it the backend's webhook URL and the ``pix_webhook_secret`` the twin
made, hands its URLs to the functions as environment variables, and forwards the twin's
``/_sim/…`` to it unchanged.

The manifest's ``External`` resources take their values from it (:func:`externals`: base's RPC
URL, contract and platform addresses, the PIX provider's URL) and its ``world`` secrets (the PIX
API key) are written from it (:func:`secrets`). The world's data dir is ``.data/world`` for
``make run`` (beside ``.data/twin``), ``<twin state dir>/world`` for a twin with its own state dir
(tests), or ``RAMPART_WORLD_DATA_DIR``.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from infra.local.sim import SimRegistry, SimReply, SimRequest
from infra.world.launcher import WorldProcess

if TYPE_CHECKING:
    from infra.local.twin import Twin

WEBHOOK_PATH = "/webhooks/providers/pix"
SECRET = "pix_webhook_secret"  # noqa: S105 - the manifest secret's name, not a value
FORWARD_TIMEOUT = 120.0


def data_dir(twin: Twin) -> Path:
    from infra.local.postgres import DATA_DIR

    given = os.environ.get("RAMPART_WORLD_DATA_DIR")
    if given:
        return Path(given)
    if twin.state_dir.resolve() == (DATA_DIR / "twin").resolve():
        return DATA_DIR / "world"
    return twin.state_dir / "world"


def launch(twin: Twin) -> WorldProcess:
    """Start the world for ``twin`` (returns at once; :func:`environment` waits for it)."""
    assert twin.aws is not None
    assert twin.url is not None
    secret = next((s for s in twin.manifest.secrets if s.name == SECRET), None)
    world = WorldProcess(
        data_dir(twin),
        webhook_url=f"{twin.url}{WEBHOOK_PATH}",
        webhook_secret=twin.aws.secret_value(secret) if secret is not None else None,
    )
    world.start()
    return world


def externals(world: WorldProcess, timeout: float = 120.0) -> dict[str, str]:
    """Wait for the world; the value of each of the manifest's ``External`` resources (by name):
    where base and the PIX provider answer, base's contract and platform addresses."""
    url = world.wait_ready(timeout)
    with urllib.request.urlopen(f"{url}/_sim/world", timeout=30) as reply:  # noqa: S310 - the world on 127.0.0.1
        described = json.loads(reply.read())
    base = described.get("base") or {}
    return {
        "base_rpc": f"{url}/rpc/base",
        "base_contracts": _pairs(base.get("addresses") or {}),
        "base_accounts": _pairs(base.get("platform_accounts") or {}),
        "pix_api": url,
    }


def secrets(world: WorldProcess) -> dict[str, str]:
    """The values of the manifest's ``world`` secrets (by name): our API key at the PIX provider and
    the platform's keys on base (``{"base": {role: key}}``, from the keys the world made)."""
    from infra.world.base import keys_file

    keys = json.loads(keys_file(world.data_dir).read_text())
    return {"pix_api_key": world.pix_api_key, "platform_keys": json.dumps({"base": keys})}


def _pairs(mapping: dict[str, str]) -> str:
    return ",".join(f"{name}={value}" for name, value in sorted(mapping.items()))


def register(sims: SimRegistry, twin: Twin) -> None:
    """Forward ``/_sim/{anything}`` to the twin's world, method, query and body unchanged."""
    if not getattr(twin, "world_enabled", False):
        return

    def forward(request: SimRequest) -> SimReply:
        world = getattr(twin, "world", None)
        if world is None or world.url is None:
            return SimReply(
                503,
                {
                    "title": "The world is not running",
                    "status": 503,
                    "detail": "the twin's world has not started (or is disabled)",
                },
                {"Retry-After": "1"},
            )
        query = "&".join(
            f"{urllib.parse.quote(k)}={urllib.parse.quote(v)}" for k, vs in request.query.items() for v in vs
        )
        target = f"{world.url}{urllib.parse.quote(request.path)}" + (f"?{query}" if query else "")
        forwarded = urllib.request.Request(  # noqa: S310 - the world on 127.0.0.1
            target,
            data=request.body or None,
            method=request.method,
            headers={
                "Content-Type": request.headers.get("content-type")
                or request.headers.get("Content-Type")
                or "application/json"
            },
        )
        try:
            with urllib.request.urlopen(forwarded, timeout=FORWARD_TIMEOUT) as reply:  # noqa: S310
                status, raw = int(reply.status), reply.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            return SimReply(502, {"title": "The world did not answer", "status": 502, "detail": str(exc)})
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = {"raw": raw.decode(errors="replace")}
        return SimReply(status, body)

    for method in ("GET", "POST"):
        sims.add(method, "/_sim/{proxy+}", forward)
