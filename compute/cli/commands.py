"""The command lines and environment of the processes `compute up` runs.

Configuration reaches the children through their environment (the broker's, through its
stdin) only: a job can read any process's `/proc/<pid>/cmdline`, so nothing secret may
appear in argv; `/proc/<pid>/environ` is for the process's own user alone.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

API_APP = "api.wsgi:app"
WORKER_APP = "worker.celery_app"
API_PROCESSES = 2
API_THREADS = 4
API_GRACEFUL_TIMEOUT_SECONDS = 5
# The worker is root by design (it runs each job as a uid of its own), so Celery's advice
# to run it as another user is one the user cannot follow: an interpreter option (`-W`)
# ignores the warning that starts so, since Celery warns before it sets up its logging.
ROOT_WARNING = "You're running the worker with superuser privileges"


def default_concurrency() -> int:
    """How many tasks a worker runs at once by default: one per CPU this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_queues() -> list[str]:
    """The queues a worker consumes."""
    from compute.server.dispatch import BUILD_QUEUE

    return [BUILD_QUEUE]


def api_command(host: str, port: int) -> list[str]:
    """gunicorn serving the API on `host`:`port`."""
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return [
        *_python_module("gunicorn"),
        "--bind",
        bind,
        "--workers",
        str(API_PROCESSES),
        "--threads",
        str(API_THREADS),
        "--worker-class",
        "gthread",
        "--graceful-timeout",
        str(API_GRACEFUL_TIMEOUT_SECONDS),
        # Its start-up and shutdown notes repeat what `compute up` says; its warnings,
        # errors and the app's tracebacks still show.
        "--log-level",
        "warning",
        "--access-logfile",
        "-",
        API_APP,
    ]


def worker_command(concurrency: int) -> list[str]:
    """One Celery worker running `concurrency` tasks at once, without its banner."""
    return [
        *_python_module("celery", "-W", f"ignore:{ROOT_WARNING}"),
        "-A",
        WORKER_APP,
        "--quiet",
        "worker",
        "--loglevel=INFO",
        "--concurrency",
        str(concurrency),
        "-Q",
        ",".join(worker_queues()),
    ]


def broker_command(executable: Path) -> list[str]:
    """redis-server reading its configuration, password included, from stdin."""
    return [str(executable), "-"]


def broker_environment() -> dict[str, str]:
    """The broker's environment: empty. It needs none of ours, and runs as another user,
    whose processes may read its `/proc/<pid>/environ`, which must not hold our secrets."""
    return {}


def child_environment(data_dir: Path, redis_url: str | None) -> dict[str, str]:
    """This process's environment (so `DATABASE_URL` and `COMPUTE_*` pass through), plus
    the data directory and broker every child must agree on."""
    env = dict(os.environ)
    env["COMPUTE_DATA_DIR"] = str(data_dir)
    if redis_url:
        env["REDIS_URL"] = redis_url
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _python_module(name: str, *options: str) -> list[str]:
    # The interpreter running `compute` has the service installed; a PATH lookup might not.
    return [sys.executable, *options, "-m", name]
