"""Figure 2: 100 ms jobs of a function capped at `maximum_concurrency=4`, from `fn.map`
until the last one ended, against a raw Celery worker with `-c 4` running as many 100 ms
tasks; and whether the cap held, read back from the jobs' start and end dates.

The run's service has one worker process per CPU, maybe fewer than four, which would
leave the cap untested and measure the process count instead. So the figure starts a
service of its own with at least four, and the raw worker with four, each on a database
of the run's redis-server that nothing else uses, and stops both at its end.

Both makespans end at the last job's own end time (the service's `end_date`, the raw
task's clock), not when a poll noticed it: polls 100 ms apart, as the bench's waiting
makes them, would weigh 10 % on a smoke run of about a second.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from compute import Function

from .children import Children
from .context import Bench
from .functions import BUILD_TIMEOUT_SECONDS, job_counts, run_timeout, wait_for_successes
from .raw_celery import QUEUE, SLEEP_TASK
from .raw_worker import RawCelery
from .report import Row
from .service import cached_work_dir, data_dir_of, sdk_settings_kept, start_service

CAP = 4
JOB_SECONDS = 0.1
TARGET_RATIO = 1.1
NAME = "bench-sleep"
DIRECTORY = "concurrency"
# Databases of the run's redis-server: 0 is the run's service's, 1 raw_worker's baseline.
SERVICE_DATABASE = 2
BASELINE_DATABASE = 3
# Jobs before the measurement: enough for each pool process to have its executor warm.
WARM_UP_JOBS_PER_WORKER = 4
TIMES_POLL_SECONDS = 0.005

Span = tuple[float, float]


@dataclass(frozen=True)
class Makespan:
    """One side's run: seconds from the first submit until the last job ended, the most
    jobs that ran at once, and how long a job took on average from its start to its end."""

    seconds: float
    most_at_once: int
    mean_job_seconds: float


def sleep_for(seconds: float) -> float:
    """Figure 2's function: sleep `seconds`, return them."""
    time.sleep(seconds)
    return seconds


def measure(bench: Bench) -> list[Row]:
    jobs = bench.size.concurrency_jobs
    workers = max(CAP, bench.workers)
    run_dir = bench.service.data_dir.parent / DIRECTORY
    run_dir.mkdir()
    try:
        with sdk_settings_kept(), Children(run_dir) as children:
            service_url = database_url(bench.broker_url, SERVICE_DATABASE)
            start_service(children, run_dir, service_url, workers)
            raw = RawCelery(database_url(bench.broker_url, BASELINE_DATABASE), children, CAP)
            raw.start()
            function = deploy_capped(WARM_UP_JOBS_PER_WORKER * workers)
            # Before and after, as figure 1: a shared machine's load drifting during the
            # run weighs on both sides alike.
            before = raw_makespan(raw, jobs)
            service = service_makespan(function, jobs)
            after = raw_makespan(raw, jobs)
    finally:
        # A root worker may keep its work directory outside the run's directory.
        shutil.rmtree(cached_work_dir(data_dir_of(run_dir)), ignore_errors=True)
    row = Row(
        figure=2,
        label=f"100 ms jobs, maximum_concurrency={CAP}, {jobs:,} jobs: makespan",
        unit="s",
        service=service.seconds,
        baseline=(before.seconds + after.seconds) / 2,
        target=f"<= {TARGET_RATIO:g}x, cap never exceeded",
        details={
            "jobs": jobs,
            "job_seconds": JOB_SECONDS,
            "ideal_seconds": jobs * JOB_SECONDS / CAP,
            "service_worker_processes": workers,
            "service_most_running_at_once": service.most_at_once,
            "service_mean_job_seconds": service.mean_job_seconds,
            "baseline_seconds_before": before.seconds,
            "baseline_seconds_after": after.seconds,
            "baseline_most_running_at_once": max(before.most_at_once, after.most_at_once),
            "baseline_mean_task_seconds": (before.mean_job_seconds + after.mean_job_seconds) / 2,
        },
    )
    row.met = row.ratio is not None and row.ratio <= TARGET_RATIO and service.most_at_once <= CAP
    return [row]


def database_url(broker_url: str, database: int) -> str:
    """The URL of another database of the run's redis-server."""
    return f"{broker_url.rsplit('/', 1)[0]}/{database}"


def deploy_capped(warm_up_jobs: int) -> Function:
    """Create the capped function, then run `warm_up_jobs` of its jobs: they wait for its
    build, so once they succeeded it is built and its executors are warm."""
    function = Function(sleep_for, name=NAME, maximum_concurrency=CAP)
    function.save()
    function.map([JOB_SECONDS] * warm_up_jobs)
    wait_for_successes(function.id, warm_up_jobs, BUILD_TIMEOUT_SECONDS)
    return function


def service_makespan(function: Function, jobs: int) -> Makespan:
    """`fn.map` of `jobs` jobs until the last one ended; the most of the function's jobs,
    the warm-up's too, that ever ran at once."""
    done = job_counts(function.id).get("success", 0)
    # The wall clock: the service dates its jobs by it, on this same machine.
    started = time.time()
    submitted = {job.id for job in function.map([JOB_SECONDS] * jobs)}
    wait_for_successes(function.id, done + jobs, run_timeout(jobs))
    spans = job_spans(function)
    measured = [span for job_id, span in spans.items() if job_id in submitted]
    return makespan(started, measured, most_at_once(spans.values()))


def job_spans(function: Function) -> dict[str, Span]:
    """Each job of the function, by id: when its attempt claimed it and when it ended, in
    UNIX time, as the service recorded them (the SDK keeps them as further fields)."""
    return {job.id: (timestamp(job.start_date), timestamp(job.end_date)) for job in function.jobs}


def timestamp(text: str) -> float:
    """An ISO 8601 date with its offset, as the API writes them, in UNIX time."""
    return dt.datetime.fromisoformat(text).timestamp()


def raw_makespan(raw: RawCelery, tasks: int) -> Makespan:
    """`tasks` 100 ms tasks published over one connection, until the last one ended."""
    times_key = f"compute.bench.times.{uuid.uuid4().hex}"
    started = time.time()
    with raw.app.producer_or_acquire() as producer:
        for _ in range(tasks):
            raw.app.send_task(
                SLEEP_TASK, args=[JOB_SECONDS, times_key], queue=QUEUE, producer=producer
            )
    deadline = time.monotonic() + run_timeout(tasks)
    while (ended := int(raw.redis.llen(times_key))) < tasks:
        if time.monotonic() > deadline:
            raise TimeoutError(f"raw Celery ran {ended} of {tasks} tasks in time")
        time.sleep(TIMES_POLL_SECONDS)
    spans: list[Span] = [
        (float(start), float(end))
        for start, end in map(json.loads, raw.redis.lrange(times_key, 0, -1))
    ]
    raw.redis.delete(times_key)
    return makespan(started, spans, most_at_once(spans))


def makespan(started: float, spans: list[Span], most: int) -> Makespan:
    """The makespan of `spans` submitted at `started`, with `most` running at once."""
    last_end = max(end for _, end in spans)
    mean = sum(end - start for start, end in spans) / len(spans)
    return Makespan(last_end - started, most, mean)


def most_at_once(spans: Iterable[Span]) -> int:
    """The most spans open at one moment; one ending as another starts is not open with it."""
    # At equal times, -1 sorts first: the end before the start.
    events = sorted(event for start, end in spans for event in ((start, 1), (end, -1)))
    most = running = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most
