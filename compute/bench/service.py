"""The service under test: `compute up` on a free port with a data directory of its own,
the run's broker, SQLite, and a token for the SDK.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

import compute
from compute.cli.broker import free_port
from compute.cli.service import base_url, root_url

from .children import Children

NAME = "compute-up"
HOST = "127.0.0.1"
READY_TIMEOUT_SECONDS = 120.0
CLI_TIMEOUT_SECONDS = 120.0
WORKER_READY = re.compile(r"celery@\S+ ready")
WORKER_MARKER = "worker.celery_app"
# Where a root worker keeps its work directory when job uids cannot reach the data
# directory's (compute/server/settings.py's `default_work_dir`, restated: the SDK side
# imports no part of the service; tests/bench checks that they agree).
ROOT_WORK_CACHE = Path("/var/cache/compute")
# Settings of the caller's shell that would point the service at another database,
# broker or data directory than the run's own.
ISOLATED_VARIABLES = (
    "REDIS_URL",
    "COMPUTE_REDIS_URL",
    "DATABASE_URL",
    "COMPUTE_SQLALCHEMY_DATABASE_URI",
    "COMPUTE_DATA_DIR",
    "COMPUTE_BLOB_URL",
)


def cli(*args: str) -> list[str]:
    """The argv of the `compute` command line, run by this interpreter."""
    return [sys.executable, "-m", "compute.cli", *args]


@dataclass
class Service:
    """A running `compute up`, reached by the SDK as the user `bench`."""

    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    env: dict[str, str]

    @property
    def root_url(self) -> str:
        return root_url(HOST, self.port)

    @property
    def base_url(self) -> str:
        return base_url(HOST, self.port)

    @property
    def blob_dir(self) -> Path:
        """The blob store: `COMPUTE_BLOB_URL`'s default, `<data dir>/blobs`."""
        return self.data_dir / "blobs"

    @property
    def database(self) -> Path:
        """The SQLite database: `COMPUTE_SQLALCHEMY_DATABASE_URI`'s default."""
        return self.data_dir / "compute.db"

    def worker_tree(self) -> list[psutil.Process]:
        """The Celery worker `compute up` runs, with its pool and the pool's executors."""
        for child in psutil.Process(self.process.pid).children():
            if WORKER_MARKER in " ".join(child.cmdline()):
                return [child, *child.children(recursive=True)]
        raise RuntimeError("compute up runs no worker")

    def pause_worker(self) -> list[psutil.Process]:
        """SIGSTOP the worker, so that submitted jobs stay queued; return what was stopped."""
        tree = self.worker_tree()
        for process in tree:
            process.suspend()
        return tree

    def resume_worker(self, tree: list[psutil.Process]) -> None:
        for process in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.resume()


def data_dir_of(run_dir: Path) -> Path:
    """The service's data directory in the run's directory."""
    return run_dir / "data"


def cached_work_dir(data_dir: Path) -> Path:
    """The work directory a root worker uses for `data_dir` when job uids cannot reach it."""
    # Of the path as `compute up` names it, resolved.
    name = str(data_dir.expanduser().resolve())
    return ROOT_WORK_CACHE / hashlib.sha256(name.encode()).hexdigest()[:16]


def start_service(children: Children, run_dir: Path, broker_url: str, workers: int) -> Service:
    """Start `compute up` with `workers` worker processes; return once its worker is ready
    and the SDK is configured with a token for it."""
    port = free_port()
    data_dir = data_dir_of(run_dir)
    env = {key: value for key, value in os.environ.items() if key not in ISOLATED_VARIABLES}
    env["REDIS_URL"] = broker_url
    argv = cli("up", "--port", str(port), "--data-dir", str(data_dir), "--workers", str(workers))
    service = Service(children.start(NAME, argv, env), port, data_dir, env)
    wait_until_ready(children, service)
    compute.configure(url=service.base_url, token=create_token(service))
    return service


def wait_until_ready(children: Children, service: Service) -> None:
    """Return once `compute up` says it runs and its worker says it is ready."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        children.check(NAME, service.process)
        log = children.log_path(NAME).read_text(errors="replace")
        ready = "Compute is running at" in log and WORKER_READY.search(log)
        if ready and requests.get(f"{service.root_url}/healthz", timeout=5).ok:
            return
        time.sleep(0.2)
    raise TimeoutError(f"compute up was not ready within {READY_TIMEOUT_SECONDS:.0f} s")


def create_token(service: Service) -> str:
    """A token for the user `bench`, from `compute token create` on the service's data."""
    return run_cli(
        service.env, "token", "create", "--user", "bench", "--data-dir", str(service.data_dir)
    )


def run_cli(env: dict[str, str], *args: str) -> str:
    """Run `compute <args>`; its stdout, stripped; its stderr in the error should it fail."""
    result = subprocess.run(
        cli(*args), env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS
    )
    if result.returncode != 0:
        raise RuntimeError(f"compute {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout.strip()


@contextlib.contextmanager
def sdk_settings_kept() -> Iterator[None]:
    """Point the SDK back where it was on exit: starting another service, or reaching
    another API, configures it for that one."""
    settings = compute.get_default_client().settings
    try:
        yield
    finally:
        compute.configure(url=settings.url, token=settings.token)
