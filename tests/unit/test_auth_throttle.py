"""Login throttling per email, against an in-memory counter with the adapter's semantics."""

from __future__ import annotations

import math

import pytest

from rampart.auth import LoginThrottle, RateLimited
from rampart.auth.models import Window


class MemoryCounter:
    def __init__(self) -> None:
        self.items: dict[str, Window] = {}

    def current(self, key: str, now: float) -> Window | None:
        window = self.items.get(key)
        return window if window is not None and window.resets_at > now else None

    def hit(self, key: str, now: float, window_seconds: int) -> Window:
        live = self.current(key, now)
        window = Window(live.count + 1, live.resets_at) if live else Window(1, float(math.floor(now + window_seconds)))
        self.items[key] = window
        return window

    def clear(self, key: str) -> None:
        self.items.pop(key, None)


@pytest.fixture
def clock() -> list[float]:
    return [1_000_000.0]


@pytest.fixture
def throttle(clock: list[float]) -> LoginThrottle:
    return LoginThrottle(MemoryCounter(), clock=lambda: clock[0])


def test_ten_failures_lock_the_email_until_the_window_passes(throttle: LoginThrottle, clock: list[float]) -> None:
    for _ in range(9):
        throttle.check("ada@example.com")
        throttle.failed("ada@example.com")
        clock[0] += 30
    throttle.check("ada@example.com")  # 9 failures: still allowed
    throttle.failed("ada@example.com")  # the 10th, 270 s after the first
    with pytest.raises(RateLimited) as limited:
        throttle.check("ada@example.com")
    assert limited.value.status == 429
    assert limited.value.slug == "rate-limited"
    assert limited.value.retry_after == 900 - 270
    assert limited.value.headers == {"Retry-After": str(900 - 270)}
    clock[0] += 900 - 270 - 1
    with pytest.raises(RateLimited) as limited:
        throttle.check("ada@example.com")
    assert limited.value.retry_after == 1
    clock[0] += 1  # the window (15 min from the first failure) has passed
    assert throttle.check("ada@example.com") is None


def test_the_lock_is_per_email_and_case_insensitive(throttle: LoginThrottle) -> None:
    for _ in range(10):
        throttle.failed("Ada@Example.com")
    with pytest.raises(RateLimited):
        throttle.check("ada@example.com")
    assert throttle.check("bob@example.com") is None


def test_success_clears_the_count(throttle: LoginThrottle) -> None:
    for _ in range(9):
        throttle.failed("ada@example.com")
    throttle.succeeded("ada@example.com")
    throttle.failed("ada@example.com")
    window = throttle.check("ada@example.com")
    assert window is not None
    assert window.count == 1


def test_key_holds_no_email() -> None:
    key = LoginThrottle.key("ada@example.com")
    assert "ada" not in key
    assert "example" not in key
    assert key == LoginThrottle.key(" ADA@example.com ")
