"""Running the raw Celery baseline: its worker, and publishing to it from the bench.

The baseline uses the run's redis-server, but another database of it than the service's,
so that neither's queues, keys or counters mix with the other's. (The service's control
broadcasts go over an exchange of its own, so a raw worker on the same database would
not be told to take its queues either: `tests/worker/test_foreign_celery.py`.)
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import redis
from celery import Celery

from .children import Children
from .raw_celery import BROKER_VARIABLE, ECHO_TASK, NOOP_TASK, QUEUE, configured

READY_TIMEOUT_SECONDS = 90.0
NAME = "raw-celery"
BASELINE_DATABASE = 1


def baseline_url(service_broker_url: str) -> str:
    """The URL of the same redis-server's database the baseline uses."""
    return f"{service_broker_url.rsplit('/', 1)[0]}/{BASELINE_DATABASE}"


def worker_command(processes: int) -> list[str]:
    """The baseline worker: prefork, `processes` at once, Celery's own log level."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "compute.bench.raw_celery",
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        str(processes),
        "-Q",
        QUEUE,
    ]


@dataclass
class RawCelery:
    """A raw Celery worker on the run's broker, and a publisher for it."""

    broker_url: str
    children: Children
    processes: int
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @cached_property
    def app(self) -> Celery:
        return configured(Celery("compute-bench-publisher", broker=self.broker_url))

    @cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.broker_url)

    def start(self) -> None:
        """Start the worker and return once it answers an echo."""
        env = {**os.environ, BROKER_VARIABLE: self.broker_url, "PYTHONUNBUFFERED": "1"}
        process = self.children.start(NAME, worker_command(self.processes), env)
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            self.children.check(NAME, process)
            try:
                self.round_trip(0, timeout=1.0)
                return
            except TimeoutError:
                continue
        raise TimeoutError(f"the raw Celery worker did not answer within {READY_TIMEOUT_SECONDS} s")

    def publish_noops(self, count: int, counter_key: str) -> None:
        """Publish `count` no-op tasks over one connection, as the service publishes."""
        with self.app.producer_or_acquire() as producer:
            for value in range(count):
                self.app.send_task(
                    NOOP_TASK, args=[value, counter_key], queue=QUEUE, producer=producer
                )

    def count(self, counter_key: str) -> int:
        value = self.redis.get(counter_key)
        return int(value) if value is not None else 0

    def round_trip(self, value: Any, timeout: float = 30.0) -> Any:
        """Publish an echo task and wait for its reply; the value it sent back."""
        reply_key = f"compute.bench.reply.{self.run_id}.{uuid.uuid4().hex}"
        self.app.send_task(ECHO_TASK, args=[value, reply_key], queue=QUEUE)
        reply = self.redis.blpop([reply_key], timeout=timeout)
        if reply is None:
            raise TimeoutError(f"no reply from the raw Celery worker within {timeout} s")
        return json.loads(reply[1])
