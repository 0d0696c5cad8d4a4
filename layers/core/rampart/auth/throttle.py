"""Login throttling per email: 10 failures in a 15-minute window (which opens at the first
failure) lock that email out until the window ends, even for the right password. Unknown and
known emails count alike, so the lockout tells nothing about which emails exist."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable

from rampart.auth.errors import RateLimited
from rampart.auth.models import Window
from rampart.auth.ports import RateLimitCounter

MAX_FAILURES = 10
WINDOW_SECONDS = 15 * 60


class LoginThrottle:
    def __init__(
        self,
        counter: RateLimitCounter,
        *,
        max_failures: int = MAX_FAILURES,
        window_seconds: int = WINDOW_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._counter, self.max_failures, self.window_seconds, self._clock = (
            counter,
            max_failures,
            window_seconds,
            clock,
        )

    @staticmethod
    def key(email: str) -> str:
        """The counter's key: a digest, so the table holds no email address."""
        return "login-failures#" + hashlib.sha256(email.strip().lower().encode()).hexdigest()

    def check(self, email: str) -> Window | None:
        """Raise :class:`RateLimited` while the email is locked out; else its live window."""
        now = self._clock()
        window = self._counter.current(self.key(email), now)
        if window is not None and window.count >= self.max_failures:
            raise RateLimited(
                "too many failed logins for this email; try again later",
                retry_after=math.ceil(window.resets_at - now),
            )
        return window

    def failed(self, email: str) -> Window:
        return self._counter.hit(self.key(email), self._clock(), self.window_seconds)

    def succeeded(self, email: str) -> None:
        self._counter.clear(self.key(email))
