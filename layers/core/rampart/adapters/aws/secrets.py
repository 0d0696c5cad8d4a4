"""Secrets Manager, read through a per-container cache (secrets rotate rarely; a Lambda
container lives minutes to hours). boto3 is imported here only, on first use."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

DEFAULT_MAX_AGE = 300.0


class SecretCache:
    def __init__(
        self,
        *,
        client: Any = None,
        max_age: float = DEFAULT_MAX_AGE,  # not money: seconds
        clock: Callable[[], float] = time.monotonic,  # not money: seconds
    ) -> None:
        self._client, self._max_age, self._clock = client, max_age, clock
        self._values: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("secretsmanager")
        return self._client

    def get(self, secret_id: str, *, max_age: float | None = None) -> str:  # not money: seconds
        """The secret's string value, fetched at most once per ``max_age`` seconds."""
        limit = self._max_age if max_age is None else max_age
        with self._lock:
            cached = self._values.get(secret_id)
            if cached is not None and self._clock() - cached[1] < limit:
                return cached[0]
            value = self.client.get_secret_value(SecretId=secret_id)["SecretString"]
            if not isinstance(value, str):
                raise ValueError(f"secret {secret_id!r} holds no string")
            self._values[secret_id] = (value, self._clock())
            return value

    def get_json(self, secret_id: str, *, max_age: float | None = None) -> dict[str, Any]:  # not money: seconds
        data = json.loads(self.get(secret_id, max_age=max_age))
        if not isinstance(data, dict):
            raise ValueError(f"secret {secret_id!r} is not a JSON object")
        return data

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._client = None


_cache = SecretCache()


def get_secret(secret_id: str, *, max_age: float | None = None) -> str:  # not money: seconds
    return _cache.get(secret_id, max_age=max_age)


def get_secret_json(secret_id: str, *, max_age: float | None = None) -> dict[str, Any]:  # not money: seconds
    return _cache.get_json(secret_id, max_age=max_age)


def reset_secrets() -> None:
    """Forget cached values and the client (tests; a fresh container)."""
    _cache.clear()
