"""The Procfile run for real by honcho, as on a developer's machine or a Heroku-style
platform: every entry side by side on PostgreSQL and a Redis database of its own.

honcho stops every process as soon as one exits, so this is also the proof that no entry
is a one-off.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

import compute
from compute import Function, JobStatus
from tests.cli.conftest import ISOLATED_VARIABLES, free_port
from tests.conftest import _postgres_database
from tests.redis_databases import claimed_redis_url

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent
READY_SECONDS = 90
STAYS_UP_SECONDS = 12
STOP_SECONDS = 20
WORKER_READY = re.compile(r"worker\.1\s+\| .*\S+@\S+ ready")


def add(a: int, b: int) -> int:
    return a + b


class Honcho:
    """`honcho start` on the repository's Procfile, its output in a file."""

    def __init__(self, env: dict[str, str], port: int, log_path: Path) -> None:
        self.env = env
        self.port = port
        self.log_path = log_path
        argv = [str(Path(sys.executable).parent / "honcho"), "start", "--port", str(port)]
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self.started = time.monotonic()

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.root_url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while not (self.healthy() and WORKER_READY.search(self.log())):
            assert self.process.poll() is None, f"honcho stopped:\n{self.log()}"
            assert time.monotonic() < deadline, f"not ready:\n{self.log()}"
            time.sleep(0.5)

    def stop(self) -> None:
        tree = psutil.Process(self.process.pid).children(recursive=True)
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=STOP_SECONDS)
        finally:
            for process in tree:
                with contextlib.suppress(psutil.Error):
                    process.kill()


@pytest.fixture
def database_url() -> Iterator[str]:
    yield from _postgres_database()


@pytest.fixture
def redis_url() -> Iterator[str]:
    with claimed_redis_url() as url:
        yield url


@pytest.fixture
def honcho(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Honcho]:
    env = {key: value for key, value in os.environ.items() if key not in ISOLATED_VARIABLES}
    env.update(
        # The Procfile names its programs; they are this interpreter's.
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        COMPUTE_DATA_DIR=str(tmp_path / "data"),
    )
    running = Honcho(env, free_port(), tmp_path / "honcho.log")
    try:
        running.wait_until_ready()
        yield running
    finally:
        running.stop()


def test_honcho_runs_the_procfile_and_a_job_to_success(honcho: Honcho) -> None:
    token = subprocess.run(
        ["compute", "token", "create", "--user", "procfile"],
        env=honcho.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.strip()
    compute.configure(url=f"{honcho.root_url}/compute/v1", token=token)
    try:
        fn = Function(add, name="add", timeout=60)
        fn.save()
        job = fn(2, 3)
        job.wait_for_completion(timeout=240, interval=1)
        assert job.status == JobStatus.SUCCESS, honcho.log()
        assert job.result() == 5
    finally:
        compute.configure()

    time.sleep(max(0.0, honcho.started + STAYS_UP_SECONDS - time.monotonic()))
    assert honcho.process.poll() is None, honcho.log()
    assert honcho.healthy()
    assert "stopped (rc=" not in honcho.log()
