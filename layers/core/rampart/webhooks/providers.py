"""The providers that call ``POST /webhooks/providers/{provider}``: each name maps to the manifest
secret holding its Standard Webhooks signing secrets (``setting``: the Settings field carrying
the secret's ARN). PIX now; SEPA, the EURC anchor and the bridges add a line each."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rampart.webhooks.errors import UnknownProvider


@dataclass(frozen=True)
class Provider:
    name: str
    secret: str  # the manifest Secret's name
    setting: str  # the Settings field carrying its ARN


PROVIDERS: dict[str, Provider] = {
    "pix": Provider("pix", secret="pix_webhook_secret", setting="pix_webhook_secret_arn"),  # noqa: S106 - a name
}

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


def provider(name: str, providers: dict[str, Provider] = PROVIDERS) -> Provider:
    """The provider called ``name``; :class:`UnknownProvider` for anything else."""
    found = providers.get(name) if _NAME.match(name) else None
    if found is None:
        raise UnknownProvider(f"no provider {name[:32]!r} sends webhooks here", field="path:provider")
    return found


def provider_from_path(path: str, prefix: str, providers: dict[str, Provider] = PROVIDERS) -> Provider:
    """The provider a request path names: ``<prefix>/{provider}`` (the twin, or a function URL
    called with the full path) or ``/{provider}`` (a function URL called on its root)."""
    rest = path[len(prefix) :] if path == prefix or path.startswith(prefix.rstrip("/") + "/") else path
    segments = [s for s in rest.split("/") if s]
    if len(segments) != 1:
        raise UnknownProvider("name the provider: POST /webhooks/providers/{provider}", field="path:provider")
    return provider(segments[0], providers)
