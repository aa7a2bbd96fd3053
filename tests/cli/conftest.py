"""`compute up` run for real: a subprocess on a free port with its own data directory."""

from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import requests

READY_TIMEOUT_SECONDS = 90
STOP_TIMEOUT_SECONDS = 15
# Settings of the developer's shell that would point the service somewhere else.
ISOLATED_VARIABLES = (
    "REDIS_URL",
    "COMPUTE_REDIS_URL",
    "DATABASE_URL",
    "COMPUTE_SQLALCHEMY_DATABASE_URI",
    "COMPUTE_DATA_DIR",
    "COMPUTE_BLOB_URL",
)
WORKER_READY = re.compile(r"celery@\S+ ready")


def compute_cli(*args: str) -> list[str]:
    """The argv of the `compute` command line, run by this interpreter."""
    return [sys.executable, "-m", "compute.cli", *args]


def cli_environment(**overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ISOLATED_VARIABLES}
    env.update(overrides)
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class RunningUp:
    """A `compute up` process and what it was started with."""

    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log_path: Path

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/compute/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tree(self) -> list[psutil.Process]:
        """Every process below `compute up`."""
        return psutil.Process(self.process.pid).children(recursive=True)

    def child(self, marker: str) -> psutil.Process:
        """The direct child whose command line contains `marker`."""
        for process in psutil.Process(self.process.pid).children():
            if marker in " ".join(process.cmdline()):
                return process
        raise AssertionError(f"no child of compute up runs {marker!r}")

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            log = self.log()
            if "Compute is running at" in log and WORKER_READY.search(log):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"compute up did not become ready:\n{self.log()}")

    def terminate(self) -> int:
        """SIGTERM `compute up` and return its exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=STOP_TIMEOUT_SECONDS)


def stop_with_tree(
    process: subprocess.Popen[bytes],
    tree: list[psutil.Process],
    timeout: float = STOP_TIMEOUT_SECONDS,
) -> None:
    """SIGTERM `process`, SIGKILL it if it outlives `timeout`, then SIGKILL whatever of
    `tree` (its descendants, listed while it ran) is left."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for leftover in survivors(tree):
        leftover.kill()


def survivors(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those of `processes` still running (a zombie counts as gone)."""
    alive = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            pass
    return alive


@contextmanager
def running_up(tmp_path: Path, **env: str) -> Iterator[RunningUp]:
    """Start `compute up` with its own port and data directory; stop it however the test ends."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    port = free_port()
    data_dir = tmp_path / "data"
    log_path = tmp_path / "up.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            compute_cli("up", "--port", str(port), "--data-dir", str(data_dir)),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=cli_environment(**env),
        )
    running = RunningUp(process, port, data_dir, log_path)
    try:
        running.wait_until_ready()
        yield running
    finally:
        if process.poll() is None:
            stop_with_tree(process, running.tree())


@pytest.fixture
def start_up(tmp_path: Path) -> Iterator[Callable[..., RunningUp]]:
    """Factory: `start_up(**env)` runs `compute up`, stopped at the end of the test."""
    numbers = itertools.count()
    with ExitStack() as stack:

        def start(**env: str) -> RunningUp:
            return stack.enter_context(running_up(tmp_path / f"up-{next(numbers)}", **env))

        yield start


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningUp]:
    """One `compute up` with its embedded broker, shared by a module's tests."""
    with running_up(tmp_path_factory.mktemp("up")) as running:
        yield running


def create_token(service: RunningUp, name: str) -> str:
    """A token for the user `name`, from `compute token create` against `service`'s data."""
    result = subprocess.run(
        compute_cli("token", "create", "--user", name, "--data-dir", str(service.data_dir)),
        capture_output=True,
        text=True,
        env=cli_environment(),
        timeout=120,
        check=True,
    )
    return result.stdout.strip()


def get(url: str, token: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(url, headers=headers, timeout=30)
