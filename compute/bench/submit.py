"""Figure 3: how long `fn.map(args)` takes to answer, against the hand-written insert and
publish of the same jobs (`hand_written`).

The jobs must not run meanwhile: on a small machine the worker would take the CPU the API
needs. So a function of its own is built, the worker is paused (SIGSTOP) while its maps
are submitted, and the function is deleted, with its queue, before the worker resumes.
The service publishes a large map's messages after it answers; the run waits for all of
them to reach the broker (a figure of its own in the JSON) before it times the next one.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import redis

from compute import Function

from . import hand_written
from .context import Bench
from .functions import deploy
from .report import Row

# compute/server/dispatch.py's names, restated: the SDK side imports no part of the service.
FUNCTION_QUEUE_PREFIX = "compute.function."
PUBLISHING_KEY_PREFIX = "compute:publishing:"
PUBLISH_TIMEOUT_SECONDS = 600.0
PUBLISH_POLL_SECONDS = 0.02


def target_seconds(count: int) -> float:
    """The targets: 10,000 jobs within 1 s, 100,000 within 5 s."""
    return 1.0 if count <= 10_000 else 5.0


def repeats(count: int) -> int:
    """How often each side submits `count` jobs: three times up to 10,000, the median
    counting, so one busy moment of a shared machine does not make the figure; once above."""
    return 3 if count <= 10_000 else 1


def measure(bench: Bench) -> list[Row]:
    function = deploy("bench-submit")
    database = database_path(bench)
    hand_written.baseline_database(bench.service.database, database, function.id)
    client = redis.Redis.from_url(bench.broker_url)
    rows = []
    paused = bench.service.pause_worker()
    try:
        for count in bench.size.submit_counts:
            rows.append(measure_count(bench, function, client, database, count))
    finally:
        queue = FUNCTION_QUEUE_PREFIX + function.id
        try:
            # Before the worker resumes, so that it finds none of these jobs to run.
            function.delete()
            client.delete(queue)
        finally:
            bench.service.resume_worker(paused)
            client.close()
            database.unlink(missing_ok=True)
    return rows


def measure_count(
    bench: Bench, function: Function, client: redis.Redis, database: Path, count: int
) -> Row:
    """The row for maps of `count` args: service and hand-written submits taking turns."""
    answers, publishes, inserts, pushes = [], [], [], []
    for _ in range(repeats(count)):
        answered, published = service_seconds(function, client, count, bench.workers)
        baseline = hand_written.submit(database, client, function.id, count)
        answers.append(answered)
        publishes.append(published)
        inserts.append(baseline.insert)
        pushes.append(baseline.publish)
    service = statistics.median(answers)
    target = target_seconds(count)
    return Row(
        figure=3,
        label=f"fn.map submit, {count:,} args",
        unit="s",
        service=service,
        baseline=statistics.median(insert + push for insert, push in zip(inserts, pushes)),
        target=f"<= {target:g} s",
        met=service <= target,
        details={
            "args": count,
            "service_answered_seconds": answers,
            "service_all_published_seconds": publishes,
            "baseline_insert_seconds": inserts,
            "baseline_publish_seconds": pushes,
        },
    )


def service_seconds(
    function: Function, client: redis.Redis, count: int, workers: int
) -> tuple[float, float]:
    """Seconds until `fn.map` answered, and until every message was in the broker."""
    queue = FUNCTION_QUEUE_PREFIX + function.id
    before = int(client.llen(queue))
    started = time.perf_counter()
    function.map(range(count))
    answered = time.perf_counter() - started
    # A fetch the paused worker had begun may still take a message or two of them.
    wanted = before + count - workers
    deadline = time.monotonic() + PUBLISH_TIMEOUT_SECONDS
    while int(client.llen(queue)) < wanted or client.exists(PUBLISHING_KEY_PREFIX + function.id):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the service did not publish {count} jobs in time")
        time.sleep(PUBLISH_POLL_SECONDS)
    return answered, time.perf_counter() - started


def database_path(bench: Bench) -> Path:
    """The baseline's database: beside the service's data directory, on the same disk."""
    return bench.service.data_dir.parent / "hand-written.db"
