"""Webhooks out: a persisted outbox and the thread that delivers it.

Each event (contract.md: ``{"id", "type", "created_at", "data"}``) is appended to the outbox
(``<data>/webhooks/outbox.json``, written atomically) before anything else happens with it, then
POSTed to the backend's webhook URL, signed per Standard Webhooks (``webhook-id`` = the event id,
``webhook-timestamp`` = the time of this attempt, ``webhook-signature`` by the first — newest — of the
secrets). A 2xx removes it; anything else (another status, a refused connection, a timeout) retries
it after ``base_delay * 2**attempts`` seconds (at most ``max_delay``). A restart keeps what was
not delivered. ``delivered`` keeps the last deliveries, for tests and ``/_sim``.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.world.store import load_json, save_json

DELIVERY_TIMEOUT = 5.0
KEEP_DELIVERED = 200


def new_event_id() -> str:
    return f"evt_{secrets.token_hex(12)}"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Outbox:
    def __init__(
        self,
        path: Path,
        *,
        url: Callable[[], str | None],
        secret: Callable[[], str | None],
        base_delay: float = 1.0,
        max_delay: float = 60.0,
    ) -> None:
        self.path = path
        self._url = url
        self._secret = secret
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        state = load_json(path, {"pending": [], "delivered": []})
        self._pending: list[dict[str, Any]] = state["pending"]
        self.delivered: list[dict[str, Any]] = state["delivered"]

    # -- queueing -----------------------------------------------------------------------------

    def emit(self, event_type: str, data: dict[str, Any], *, copies: int = 1) -> dict[str, Any]:
        """Queue one event (``copies`` deliveries of it: a scripted duplicate has the same id)."""
        event = {"id": new_event_id(), "type": event_type, "created_at": utc_now(), "data": data}
        body = json.dumps(event, separators=(",", ":"))
        with self._lock:
            for copy in range(copies):
                self._pending.append(
                    {
                        "delivery": f"{event['id']}#{copy}",
                        "id": event["id"],
                        "type": event_type,
                        "body": body,
                        "attempts": 0,
                        "next_at": time.time(),
                        "last_error": None,
                    }
                )
            self._save()
        self._wake.set()
        return event

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(item) for item in self._pending]

    def _save(self) -> None:
        save_json(self.path, {"pending": self._pending, "delivered": self.delivered[-KEEP_DELIVERED:]})

    # -- delivery -----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="world-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=DELIVERY_TIMEOUT + 5)
            self._thread = None
        with self._lock:
            self._save()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            with self._lock:
                due = min(self._pending, key=lambda item: item["next_at"], default=None)
            if due is None or due["next_at"] > now:
                wait = 1.0 if due is None else min(due["next_at"] - now, 1.0)
                self._wake.wait(wait)
                self._wake.clear()
                continue
            error = self._deliver(due)
            with self._lock:
                if error is None:
                    self._pending = [item for item in self._pending if item["delivery"] != due["delivery"]]
                    self.delivered.append(
                        {"id": due["id"], "type": due["type"], "attempts": due["attempts"] + 1, "at": utc_now()}
                    )
                    del self.delivered[:-KEEP_DELIVERED]
                else:
                    for item in self._pending:
                        if item["delivery"] == due["delivery"]:
                            item["attempts"] += 1
                            item["last_error"] = error
                            delay = min(self.base_delay * 2 ** (item["attempts"] - 1), self.max_delay)
                            item["next_at"] = time.time() + delay
                self._save()

    def _deliver(self, item: dict[str, Any]) -> str | None:
        """One attempt: None when acknowledged (2xx), else why not."""
        url, secret = self._url(), self._secret()
        if not url or not secret:
            return "no webhook URL or secret configured"
        from standardwebhooks import Webhook

        now = datetime.now(UTC)
        signature = Webhook(secret.split()[0]).sign(item["id"], now, item["body"])
        request = urllib.request.Request(  # noqa: S310 - the backend's URL, given at start
            url,
            data=item["body"].encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "webhook-id": item["id"],
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": signature,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=DELIVERY_TIMEOUT) as reply:  # noqa: S310
                status = int(reply.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return None if 200 <= status < 300 else f"HTTP {status}"
