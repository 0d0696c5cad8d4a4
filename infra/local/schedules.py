"""The manifest's schedules on a background thread: each runs its function with an EventBridge
scheduled event, asynchronously (a failure is logged and sent to the function's DLQ)."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from infra import manifest
from infra.local import aws
from infra.local.lambdas import LambdaRegistry
from infra.local.logs import get_logger

log = get_logger("rampart.twin.schedule")

_RATE = re.compile(r"^rate\((\d+) (second|minute|hour|day)(s?)\)$")
_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float:
    """Seconds between runs of an EventBridge ``rate(N unit)`` expression (``1 minute``,
    ``5 minutes``; ``seconds`` too, which only the twin accepts)."""
    found = _RATE.match(expression.strip())
    if not found:
        raise ValueError(f"unsupported schedule expression {expression!r}: use rate(N minute(s)/second(s)/…)")
    value, unit, plural = int(found.group(1)), found.group(2), found.group(3)
    if value < 1 or (value == 1) == bool(plural):
        raise ValueError(f"{expression!r}: EventBridge wants rate(1 {unit}) or rate(N {unit}s) with N > 1")
    return float(value * _SECONDS[unit])


def scheduled_event(rule_arn: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": aws.ACCOUNT,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": aws.REGION,
        "resources": [rule_arn],
        "detail": {},
    }


@dataclass
class Job:
    schedule: manifest.Schedule
    period: float
    rule_arn: str
    next_at: float


class Scheduler:
    def __init__(
        self,
        registry: LambdaRegistry,
        schedules: Iterable[manifest.Schedule] = manifest.SCHEDULES,
        *,
        rules: Mapping[str, str] | None = None,
    ) -> None:
        self.registry = registry
        now = time.monotonic()
        self.jobs: dict[str, Job] = {}
        for schedule in schedules:
            period = rate_seconds(schedule.rate)
            arn = (rules or {}).get(schedule.name) or (
                f"arn:aws:events:{aws.REGION}:{aws.ACCOUNT}:rule/{aws.rule_name(schedule.name)}"
            )
            self.jobs[schedule.name] = Job(schedule, period, arn, now + period)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.jobs and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="twin-schedules", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def fire(self, name: str) -> Future[Any]:
        """Run one schedule now (the loop's way, or ``POST /_twin/schedules/{name}/run``)."""
        job = self.jobs[name]
        started = time.monotonic()
        future = self.registry.invoke_async(job.schedule.function, scheduled_event(job.rule_arn))

        def done(f: Future[Any]) -> None:
            if f.cancelled() or f.exception() is not None:
                return  # the registry logged it and wrote the DLQ
            log.info(
                "scheduled run",
                extra={
                    "schedule": name,
                    "function": job.schedule.function,
                    "result": f.result(),
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                },
            )

        future.add_done_callback(done)
        return future

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for name, job in self.jobs.items():
                if job.next_at <= now:
                    try:
                        self.fire(name)
                    except RuntimeError:  # the pool is shutting down
                        return
                    job.next_at += job.period
                    if job.next_at <= now:  # fell behind (a suspended laptop): no burst of catch-up runs
                        job.next_at = now + job.period
            wait = min(job.next_at for job in self.jobs.values()) - time.monotonic()
            self._stop.wait(max(0.05, wait))
