"""An execution stack for tests: the real API, a real Celery worker, real Redis.

The API serves in-process over HTTP; the worker is a separate `celery worker` process
sharing the API's database, data directory and a Redis database claimed for this run,
flushed before and after.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.conftest import ApiClient, ApiServer, running_api
from tests.redis_databases import claimed_redis_url
from tests.worker.wheels import build_pure_wheel, wheel_from_installed

REPO_ROOT = Path(__file__).resolve().parents[2]
# More worker processes than the concurrency tests' cap, so the cap, not the pool, limits.
WORKER_PROCESSES = 4
# How long a stopped process tree has to exit before it is killed.
STOP_TREE_SECONDS = 20
# Short, so timeout tests that must wait out the grace period stay quick.
KILL_GRACE_SECONDS = 1
# Short leases and frequent sweeps, so recovery tests wait seconds, not the defaults.
JOB_LEASE_SECONDS = 6
RECONCILE_INTERVAL_SECONDS = 1
TINYPKG_BODY = "VALUE = 42\n\ndef hello():\n    return 'hello from tinypkg'\n"


@dataclass
class ExecutionStack:
    server: ApiServer
    worker: subprocess.Popen[bytes]
    worker_log: Path

    def user_api(self, name: str | None = None) -> ApiClient:
        token = self.server.token(name or f"user-{uuid.uuid4().hex[:10]}")
        return ApiClient(self.server, token)

    def worker_output(self) -> str:
        return self.worker_log.read_text(errors="replace")

    @contextlib.contextmanager
    def sdk_user(
        self, monkeypatch: pytest.MonkeyPatch, name: str | None = None
    ) -> Iterator[ApiClient]:
        """A fresh user of this stack, whom the `compute` SDK acts as meanwhile."""
        import compute

        api = self.user_api(name)
        monkeypatch.setenv("COMPUTE_URL", self.server.base_url)
        monkeypatch.setenv("COMPUTE_TOKEN", api.token or "")
        monkeypatch.setenv("COMPUTE_CONFIG", str(self.server.data_dir / "none.json"))
        compute.configure(url=self.server.base_url, token=api.token)
        try:
            yield api
        finally:
            compute.configure(url=None, token=None)


def worker_environment(server: ApiServer, redis_url: str) -> dict[str, str]:
    """The environment of a test worker serving `server` from `redis_url`."""
    return {
        **os.environ,
        "COMPUTE_DATA_DIR": str(server.data_dir),
        "DATABASE_URL": server.app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": redis_url,
        "COMPUTE_WHEELHOUSE": str(server.data_dir / "wheelhouse"),
        "COMPUTE_KILL_GRACE_SECONDS": str(KILL_GRACE_SECONDS),
        "COMPUTE_JOB_LEASE_SECONDS": str(JOB_LEASE_SECONDS),
        "COMPUTE_RECONCILE_INTERVAL_SECONDS": str(RECONCILE_INTERVAL_SECONDS),
        "COMPUTE_REPUBLISH_GRACE_SECONDS": "1",
        # Small, so the disk-limit test writes little; room for every other test.
        "COMPUTE_JOB_DISK_MB": "256",
    }


def start_worker(
    env: dict[str, str], log_path: Path, processes: int = WORKER_PROCESSES
) -> subprocess.Popen[bytes]:
    """A `celery worker` process in a session of its own, logging to `log_path`."""
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.celery_app",
        "worker",
        "--loglevel",
        "INFO",
        "--concurrency",
        str(processes),
        "--without-gossip",
        "--without-mingle",
        "-n",
        f"test-{uuid.uuid4().hex[:8]}@%h",
    ]
    log = log_path.open("wb")
    return subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def process_tree(pid: int) -> list[psutil.Process]:
    """The process `pid` and every process below it, as far as they still exist."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def stop_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group of `process` (started in a session of its own: a
    worker, a node) and wait for it; SIGKILL whatever of its tree is left."""
    tree = process_tree(process.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    _, alive = psutil.wait_procs(tree, timeout=STOP_TREE_SECONDS)
    for survivor in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            survivor.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TREE_SECONDS)
    if process.poll() is None:
        process.kill()
        process.wait()


def wait_ready(log_path: Path, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"worker exited early:\n{log_path.read_text(errors='replace')}")
        if "ready." in log_path.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"worker not ready in {timeout}s:\n{log_path.read_text(errors='replace')}")


# Jobs run with private /tmp, /var/tmp and /dev/shm: directories they share with the test
# (data directories, exchange files) live elsewhere.
EXCHANGE_ROOT = Path("/var/lib/compute-tests") if os.geteuid() == 0 else None


@contextlib.contextmanager
def job_reachable_directory(prefix: str, mode: int = 0o711) -> Iterator[Path]:
    """A new directory other users may pass through (not list), removed on exit.

    A worker running as root runs jobs under uids of their own, who must reach the work
    directory inside the data directory; pytest's temporary directories are closed to
    other users, and a job's /tmp is its own, so it is made under `EXCHANGE_ROOT`.
    """
    if EXCHANGE_ROOT is not None:
        EXCHANGE_ROOT.mkdir(mode=0o711, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir=EXCHANGE_ROOT))
    directory.chmod(mode)
    try:
        yield directory
    finally:
        for root, names, _ in os.walk(directory):  # built environments are read-only
            for name in names:
                with contextlib.suppress(OSError):
                    os.chmod(os.path.join(root, name), 0o700)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A temporary directory that the jobs under test may use too, whichever uid each
    runs as: writable by all, like /tmp, but outside every job's private directories."""
    with job_reachable_directory("compute-test-", mode=0o1777) as directory:
        yield directory


@contextlib.contextmanager
def running_stack(
    database: str,
    prefix: str,
    api_settings: Mapping[str, str] | None = None,
    worker_settings: Callable[[dict[str, str]], dict[str, str]] | None = None,
    processes: int = WORKER_PROCESSES,
) -> Iterator[ExecutionStack]:
    """The API on `database` and a worker, on a Redis database of their own, in a
    directory named from `prefix` that the jobs can reach.

    Args:
        api_settings: further settings of the API (`NAME: value`, as in its config).
        worker_settings: makes the worker's environment from the usual one.
        processes: the worker's pool processes.
    """
    with (
        job_reachable_directory(prefix) as scratch,
        claimed_redis_url() as redis_url,
        running_api(
            database, scratch / "data", {"REDIS_URL": redis_url, **(api_settings or {})}
        ) as server,
    ):
        log_path = server.data_dir / "worker.log"
        env = worker_environment(server, redis_url)
        if worker_settings is not None:
            env = worker_settings(env)
        worker = start_worker(env, log_path, processes)
        try:
            wait_ready(log_path, worker)
            yield ExecutionStack(server, worker, log_path)
        finally:
            stop_tree(worker)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def execution_stack(request: pytest.FixtureRequest) -> Iterator[ExecutionStack]:
    with running_stack(request.param, f"compute-exec-{request.param}-") as stack:
        yield stack


@pytest.fixture
def exec_user(
    execution_stack: ExecutionStack, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ApiClient]:
    """A fresh user of the execution stack; the `compute` SDK acts as them meanwhile."""
    with execution_stack.sdk_user(monkeypatch) as api:
        yield api


@pytest.fixture(scope="session")
def local_wheels(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Wheels built offline: `tinypkg` (VALUE = 42) and the installed cloudpickle."""
    out_dir = tmp_path_factory.mktemp("wheels")
    sources = tmp_path_factory.mktemp("wheel-sources")
    return [
        build_pure_wheel(sources, out_dir, "tinypkg", TINYPKG_BODY),
        wheel_from_installed("cloudpickle", out_dir),
    ]


@pytest.fixture(scope="session")
def stack_wheelhouse(execution_stack: ExecutionStack, local_wheels: list[Path]) -> Path:
    """The execution stack's wheelhouse (its only package source), holding `local_wheels`."""
    wheelhouse = execution_stack.server.data_dir / "wheelhouse"
    wheelhouse.mkdir(exist_ok=True)
    for wheel in local_wheels:
        shutil.copy2(wheel, wheelhouse / wheel.name)
    return wheelhouse
