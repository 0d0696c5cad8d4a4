"""Waiting for something asynchronous (a queue consumer, a schedule) without timing assertions."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def eventually(check: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    """``check()``'s first truthy result, polled every 0.1 s; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout:.0f}s: {what}")
