"""A tiny HTTP client for the e2e tests: JSON in, (status, headers, body) out."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib import request
from urllib.error import HTTPError

from tests.support.events import Reply

ADMIN_EMAIL = "admin@rampart.example"
ADMIN_PASSWORD = "rampart-admin-local"


@dataclass
class Client:
    base: str
    token: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        key: str | bool | None = None,
    ) -> Reply:
        sent = {"Accept": "application/json", **self.headers, **(headers or {})}
        if self.token:
            sent.setdefault("Authorization", f"Bearer {self.token}")
        if key is True:
            key = uuid.uuid4().hex
        if isinstance(key, str):
            sent["Idempotency-Key"] = key
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        req = request.Request(self.base + path, data=data, method=method, headers=sent)
        try:
            with request.urlopen(req, timeout=30) as resp:
                status, head, payload = resp.status, resp.headers, resp.read()
        except HTTPError as err:
            status, head, payload = err.code, err.headers, err.read()
        headers_out = {k.lower(): v for k, v in head.items()}
        text = payload.decode() if payload else ""
        try:
            parsed: Any = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return Reply(status, headers_out, parsed)

    def get(self, path: str, **kw: Any) -> Reply:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.call("POST", path, body, **kw)


def login(base: str, email: str, password: str) -> Client:
    reply = Client(base).post("/v1/auth/login", {"email": email, "password": password})
    assert reply.status == 200, reply
    return Client(base, token=reply.body["access_token"])


def new_user(base: str, role: str = "user") -> Client:
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    password = "correct horse battery staple"
    created = Client(base).post("/v1/auth/register", {"email": email, "password": password, "role": role})
    assert created.status == 201, created
    client = login(base, email, password)
    client.headers["X-Test-Email"] = email
    return client


def admin(base: str) -> Client:
    return login(base, ADMIN_EMAIL, ADMIN_PASSWORD)


def fund(admin_client: Client, account_id: str, amount: str) -> None:
    reply = admin_client.post("/v1/admin/deposits", {"account_id": account_id, "amount": amount}, key=True)
    assert reply.status == 201, reply
