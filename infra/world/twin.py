"""The world beside the local twin: ``make run`` (and every twin that runs Rampart's manifest) starts
it as a child process, gives it the backend's webhook URL and the ``pix_webhook_secret`` the twin
made, hands its URLs to the functions as environment variables, and forwards the twin's
``/_sim/…`` to it unchanged.

The manifest's ``External`` resources take their values from it (:func:`externals`: base's RPC
URL, contract and platform addresses, the PIX provider's URL) and its ``world`` secrets (the PIX
API key) are written from it (:func:`secrets`). The world's data dir is ``.data/world`` for
``make run`` (beside ``.data/twin``), ``<twin state dir>/world`` for a twin with its own state dir
(tests), or ``RAMPART_WORLD_DATA_DIR``.

With ``RAMPART_WORLD_URL`` (the twin's ``world_url``) the twin starts no world: it attaches to the
one answering there (:class:`AttachedWorld`), reads its keys from its data dir as above (the world
serves no private key over HTTP), tells it where this twin's webhooks are and their secret
(``POST /_sim/world/webhook``, at every start: a twin restarted on the same state dir and port
sends the same ones) and never stops it. So the backend can die and come back while the world,
and everything in it, runs on.
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
ATTACH_PATH = "/_sim/world/webhook"  # the world's; the twin never forwards it


def data_dir(twin: Twin) -> Path:
    from infra.local.postgres import DATA_DIR

    given = os.environ.get("RAMPART_WORLD_DATA_DIR")
    if given:
        return Path(given)
    if twin.state_dir.resolve() == (DATA_DIR / "twin").resolve():
        return DATA_DIR / "world"
    return twin.state_dir / "world"


class AttachedWorld:
    """A world this twin did not start (``RAMPART_WORLD_URL``): what :class:`WorldProcess` offers
    the twin (``url``, ``data_dir``, ``pix_api_key``, ``wait_ready``, ``stop``), but ``stop`` leaves
    it running — its owner stops it."""

    def __init__(self, url: str, data_dir: Path, *, webhook_url: str, webhook_secret: str | None) -> None:
        self.given_url = url.rstrip("/")
        self.data_dir = Path(data_dir)
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.url: str | None = None  # once it answered and took our webhook target

    def start(self) -> None:
        """Nothing to start: the world runs already."""

    def wait_ready(self, timeout: float = 120.0) -> str:
        """Wait until the world answers ``/health``, then point its webhooks at this twin."""
        import time

        from infra.world.launcher import WorldError

        if self.url is not None:
            return self.url
        deadline = time.monotonic() + timeout
        while not self.healthy(self.given_url):
            if time.monotonic() > deadline:
                raise WorldError(f"no world answered at {self.given_url} within {timeout:.0f}s (RAMPART_WORLD_URL)")
            time.sleep(0.1)
        if self.webhook_secret is not None:
            body = json.dumps({"url": self.webhook_url, "secret": self.webhook_secret}).encode()
            request = urllib.request.Request(  # noqa: S310 - the world the operator named
                f"{self.given_url}{ATTACH_PATH}",
                data=body,
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=30):  # noqa: S310
                    pass
            except urllib.error.HTTPError as exc:
                raise WorldError(f"the world at {self.given_url} refused our webhook target: {exc.read()!r}") from None
        self.url = self.given_url
        return self.url

    @property
    def pix_api_key(self) -> str:
        return (self.data_dir / "pix" / "api-key").read_text().strip()

    def healthy(self, url: str | None = None) -> bool:
        target = url or self.url
        if target is None:
            return False
        try:
            with urllib.request.urlopen(f"{target}/health", timeout=5) as reply:  # noqa: S310 - the given world
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, timeout: float = 30.0) -> None:
        """Leave it running: it is not ours (its webhooks queue until a twin attaches again)."""


def launch(twin: Twin) -> WorldProcess | AttachedWorld:
    """Start the world for ``twin`` (returns at once; :func:`externals` waits for it), or attach
    to the one at the twin's ``world_url``."""
    assert twin.aws is not None
    assert twin.url is not None
    secret = next((s for s in twin.manifest.secrets if s.name == SECRET), None)
    webhook_url = f"{twin.url}{WEBHOOK_PATH}"
    webhook_secret = twin.aws.secret_value(secret) if secret is not None else None
    given = getattr(twin, "world_url", None)
    if given:
        return AttachedWorld(given, data_dir(twin), webhook_url=webhook_url, webhook_secret=webhook_secret)
    world = WorldProcess(data_dir(twin), webhook_url=webhook_url, webhook_secret=webhook_secret)
    world.start()
    return world


def externals(world: WorldProcess | AttachedWorld, timeout: float = 120.0) -> dict[str, str]:
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


def secrets(world: WorldProcess | AttachedWorld) -> dict[str, str]:
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
        if [part for part in request.path.split("/") if part] == ATTACH_PATH.strip("/").split("/"):
            return SimReply(
                403,
                {
                    "title": "Not through the twin",
                    "status": 403,
                    "detail": "where the world's webhooks go is the twin's to set, not a client's",
                },
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
