"""Standard Webhooks (https://www.standardwebhooks.com): verifying a provider's deliveries, and
signing them (tests, the twin's world).

A delivery carries ``webhook-id``, ``webhook-timestamp`` (integer Unix seconds) and
``webhook-signature`` (space-separated ``v1,<base64 HMAC-SHA256>``, several while the provider
rotates its secret) over ``{id}.{timestamp}.{body}``. The secret value we keep is one or more
``whsec_<base64>`` secrets separated by spaces, newest first; a signature made with any of them
passes (rotation: both while both are listed, the old one refused once removed). The timestamp
must be within :data:`TOLERANCE_SECONDS` of now, both ways. Signatures are compared in constant
time.

Verification is written here by the specification rather than with the ``standardwebhooks``
package, whose ``Webhook.verify`` decodes the body as UTF-8 text (a body that is not raises
``UnicodeDecodeError``, not its verification error), raises ``ValueError`` on a signature entry
without a comma, takes one secret, and reads the wall clock (no clock to inject). Signing uses
the package (what the world uses), and the tests check that each side accepts the other's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from rampart.webhooks.errors import InvalidSignature

TOLERANCE_SECONDS = 5 * 60
MAX_SECRETS = 8
MAX_SIGNATURES = 16
SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret

_ID = re.compile(r"^[\x21-\x7e]{1,256}$")  # printable ASCII, no spaces
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")


class WebhookSecretError(ValueError):
    """The stored secret value is not one or more ``whsec_<base64>`` secrets."""


def parse_secrets(value: str) -> list[bytes]:
    """The HMAC keys of a secret value: ``whsec_<base64>`` (the prefix optional) separated by
    whitespace, newest first."""
    keys: list[bytes] = []
    for item in value.split():
        encoded = item.removeprefix(SECRET_PREFIX)
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise WebhookSecretError(f"secret #{len(keys) + 1} is not base64 after {SECRET_PREFIX}") from None
        if len(key) < 16:
            raise WebhookSecretError(f"secret #{len(keys) + 1} is shorter than 16 bytes")
        keys.append(key)
    if not keys:
        raise WebhookSecretError("the webhook secret is empty")
    if len(keys) > MAX_SECRETS:
        raise WebhookSecretError(f"more than {MAX_SECRETS} webhook secrets")
    return keys


def new_secret(nbytes: int = 24) -> str:
    """A fresh ``whsec_<base64>`` secret."""
    import secrets

    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode()


def _signature(key: bytes, webhook_id: str, timestamp: str, body: bytes) -> bytes:
    return hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def _signatures(header: str) -> list[bytes]:
    """The v1 signatures of a ``webhook-signature`` header (other versions and malformed entries
    are skipped, as the specification says)."""
    found: list[bytes] = []
    for entry in header.split()[:MAX_SIGNATURES]:
        version, _, encoded = entry.partition(",")
        if version != "v1" or not encoded:
            continue
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


class StandardWebhooksVerifier:
    def __init__(
        self,
        keys: list[bytes],
        *,
        tolerance_seconds: int = TOLERANCE_SECONDS,
        clock: Callable[[], float] = time.time,  # not money: Unix seconds
    ) -> None:
        if not keys:
            raise WebhookSecretError("no webhook secret")
        self.keys, self.tolerance, self.clock = list(keys), tolerance_seconds, clock

    @classmethod
    def from_secret(cls, value: str, **kwargs: object) -> StandardWebhooksVerifier:
        return cls(parse_secrets(value), **kwargs)  # type: ignore[arg-type]

    def verify(self, headers: Mapping[str, str], body: bytes) -> str:
        """The webhook id of a delivery that checks out; :class:`InvalidSignature` otherwise."""
        lowered = {str(k).lower(): str(v) for k, v in headers.items()}
        webhook_id = lowered.get("webhook-id", "").strip()
        timestamp = lowered.get("webhook-timestamp", "").strip()
        header = lowered.get("webhook-signature", "")
        if not (webhook_id and timestamp and header.strip()):
            missing = [n for n, v in (("webhook-id", webhook_id), ("webhook-timestamp", timestamp)) if not v]
            missing += [] if header.strip() else ["webhook-signature"]
            raise InvalidSignature(f"missing {', '.join(missing)}", reason="missing")
        if not _ID.match(webhook_id):
            raise InvalidSignature("webhook-id is not 1 to 256 printable characters", reason="malformed")
        if not _TIMESTAMP.match(timestamp):
            raise InvalidSignature("webhook-timestamp is not Unix seconds", reason="malformed")
        now = int(self.clock())
        sent = int(timestamp)
        if sent < now - self.tolerance:
            raise InvalidSignature("webhook-timestamp is more than 5 minutes old", reason="stale")
        if sent > now + self.tolerance:
            raise InvalidSignature("webhook-timestamp is more than 5 minutes ahead", reason="future")
        given = _signatures(header)
        matched = False
        for key in self.keys:
            expected = _signature(key, webhook_id, timestamp, body)
            for candidate in given:
                # Every comparison runs (no early exit): the time taken says nothing of which matched.
                matched |= hmac.compare_digest(expected, candidate)
        if not matched:
            raise InvalidSignature("no signature matches", reason="signature")
        return webhook_id


def sign(secret: str, webhook_id: str, body: bytes | str, *, timestamp: int | None = None) -> dict[str, str]:
    """The Standard Webhooks headers for a delivery of ``body``, signed with ``secret`` (a
    ``whsec_…`` secret: the first of a secret value), as a provider sends them."""
    from standardwebhooks.webhooks import Webhook

    sent = int(time.time()) if timestamp is None else timestamp
    text = body.decode() if isinstance(body, bytes) else body
    signature = Webhook(secret).sign(webhook_id, datetime.fromtimestamp(sent, tz=UTC), text)
    return {"webhook-id": webhook_id, "webhook-timestamp": str(sent), "webhook-signature": signature}
