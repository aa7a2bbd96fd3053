"""The worker's event metrics, recorded where each event happens.

A worker node is a main process (the reconciler, the presence record) and prefork pool
processes (jobs, builds) that come and go. In prometheus-client's multi-process mode
each of them writes its own file in the node's metrics folder, and whoever serves the
metrics sums the files (`compute.server.metric_files`): the API sharing the node's data
directory, or the node itself on `COMPUTE_WORKER_METRICS_PORT`.

Recording never raises: a metric that cannot be written must not fail a job or a build.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server, values

from compute.server.metric_files import MetricFiles
from compute.server.settings import PROMETHEUS_MULTIPROC_VARIABLE
from compute.statuses import JobStatus

logger = logging.getLogger(__name__)

# Every metric has labels, so no value (and no file) exists until an event is recorded,
# by which time `use_metrics_directory` has chosen where values are kept.
JOB_DURATION = Histogram(
    "compute_job_duration_seconds",
    "Run time of the attempt that gave a job its final status, by that status.",
    ["status"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600),
    registry=None,
)
BUILD_DURATION = Histogram(
    "compute_build_duration_seconds",
    "Time a function's build took, by outcome (built or failed).",
    ["outcome"],
    buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900),
    registry=None,
)
OUT_OF_MEMORY = Counter(
    "compute_job_out_of_memory",
    "Attempts ended for exceeding their function's memory limit.",
    ["function"],
    registry=None,
)
TIMEOUTS = Counter(
    "compute_job_timeouts",
    "Jobs ended for exceeding their function's timeout.",
    ["function"],
    registry=None,
)
RETRIES = Counter(
    "compute_job_retries",
    "Failed attempts whose job went back to pending for another attempt.",
    ["function"],
    registry=None,
)
LOST_ATTEMPTS = Counter(
    "compute_lost_worker_attempts",
    "Running attempts found lost with their worker, by what became of the job "
    "(retried, or failed once its lost-worker retries were spent).",
    ["outcome"],
    registry=None,
)

# How `jobs.judge` words an out-of-memory verdict: a verdict keeps no other trace of how
# the process ended. A job's own failure reads `Type: message`, so one could imitate it
# only with some effort, and only to add to its own function's count.
_OUT_OF_MEMORY_ERROR = re.compile(r"exceeded its \d+ MB memory limit")


def use_metrics_directory(directory: Path) -> None:
    """Keep this process's metrics, and those of the processes it forks, in `directory`,
    emptied first: the node's counters start again with it.

    Called in the node's main process before its pool forks and before any event is
    recorded. The value class is chosen here rather than at prometheus-client's import,
    which happens before a worker has read its settings.
    """
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.environ[PROMETHEUS_MULTIPROC_VARIABLE] = str(directory)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


def serve_metrics(port: int, directory: Path) -> None:
    """Serve the node's metrics over HTTP on `port`, from a thread of this process."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MetricFiles([directory]))
    start_http_server(port, registry=registry)
    logger.info("serving this worker's metrics on port %d", port)


def attempt_judged(function_id: str, status: JobStatus, error: str | None) -> None:
    """An attempt ended with a verdict: count it if it ran out of memory or time."""
    with _recording("an attempt's verdict"):
        if status is JobStatus.TIMEOUT:
            TIMEOUTS.labels(function_id).inc()
        elif error is not None and _OUT_OF_MEMORY_ERROR.fullmatch(error):
            OUT_OF_MEMORY.labels(function_id).inc()


def attempt_retried(function_id: str) -> None:
    with _recording("a retry"):
        RETRIES.labels(function_id).inc()


def job_finished(status: JobStatus, runtime: float) -> None:
    """A job's final status was recorded, after an attempt that ran `runtime` seconds."""
    with _recording("a finished job"):
        JOB_DURATION.labels(status.value).observe(runtime)


def build_finished(built: bool, seconds: float) -> None:
    with _recording("a build"):
        BUILD_DURATION.labels("built" if built else "failed").observe(seconds)


def lost_attempt_recovered(status: JobStatus) -> None:
    """A lost attempt was ended; its job is now `status` (pending again, or failed)."""
    with _recording("a lost attempt"):
        LOST_ATTEMPTS.labels("retried" if status is JobStatus.PENDING else "failed").inc()


@contextlib.contextmanager
def _recording(what: str) -> Iterator[None]:
    try:
        yield
    except Exception:  # noqa: BLE001 - a metric is never worth a job
        logger.warning("could not record %s in the metrics", what, exc_info=True)
