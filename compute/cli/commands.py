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


def worker_queues() -> list[str]:
    """The queues a worker consumes."""
    from api.dispatch import BUILD_QUEUE

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
        "--access-logfile",
        "-",
        API_APP,
    ]


def worker_command(concurrency: int) -> list[str]:
    """One Celery worker running `concurrency` tasks at once."""
    return [
        *_python_module("celery"),
        "-A",
        WORKER_APP,
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


def _python_module(name: str) -> list[str]:
    # The interpreter running `compute` has the service installed; a PATH lookup might not.
    return [sys.executable, "-m", name]
