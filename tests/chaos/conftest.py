"""The chaos stack: every process the test kills is a real one it can start again.

A Redis of its own (no persistence, so a restart empties it), the API under gunicorn,
and a `celery worker`, all on PostgreSQL, with the data directory they share.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import requests
import sqlalchemy as sa

from api import API_PREFIX, create_app, upgrade_database
from compute.server.extensions import db
from compute.server.tokens import get_or_create_user, issue_token
from tests.capabilities import missing_capability
from tests.conftest import _postgres_database
from tests.worker.conftest import (
    REPO_ROOT,
    job_reachable_directory,
    start_worker,
    stop_tree,
    wait_ready,
)

CI_JOBS = 2_000
FULL_JOBS = 10_000
WORKER_PROCESSES = 4
JOB_LEASE_SECONDS = 6
STARTUP_SECONDS = 60
# The database itself notes every write that ends a job: a trigger, not the service, so the
# test counts terminal records as they happened, whatever process died after making one.
TERMINAL_RECORDER = (
    "CREATE TABLE chaos_terminal_records (job_id varchar(32), attempt int, status varchar(16))",
    """CREATE FUNCTION chaos_note_terminal() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO chaos_terminal_records VALUES (NEW.id, NEW.attempt, NEW.status);
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER chaos_terminal AFTER INSERT OR UPDATE OF status ON jobs FOR EACH ROW
    WHEN (NEW.status IN ('success', 'failure', 'timeout'))
    EXECUTE FUNCTION chaos_note_terminal()""",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)


@dataclass
class RedisServer:
    """A redis-server of the test's own, so restarting it disturbs nobody else."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            missing_capability("redis-server (a Redis of the test's own to restart)")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        wait_for(lambda: _pings(client), STARTUP_SECONDS, "redis start")
        client.close()

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@dataclass
class ApiProcess:
    """The API under gunicorn, as a deployment runs it."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "2",
                "--threads",
                "4",
                "--bind",
                f"127.0.0.1:{self.port}",
                "api.wsgi:app",
            ],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._healthy, STARTUP_SECONDS, "API start")

    def _healthy(self) -> bool:
        try:
            root = self.base_url[: -len(API_PREFIX)]
            return requests.get(f"{root}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def kill(self) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@dataclass
class ChaosStack:
    data_dir: Path
    database_url: str
    redis: RedisServer
    api: ApiProcess
    worker_env: dict[str, str]
    token: str
    worker_logs: list[Path] = field(default_factory=list)
    worker: subprocess.Popen[bytes] | None = None

    def start_worker(self) -> None:
        log_path = self.data_dir / f"worker-{len(self.worker_logs)}.log"
        self.worker_logs.append(log_path)
        self.worker = start_worker(self.worker_env, log_path, WORKER_PROCESSES)
        wait_ready(log_path, self.worker)

    def kill_worker(self) -> None:
        """SIGKILL the worker's main process and its pool, as a lost machine would."""
        assert self.worker is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait(timeout=10)

    def worker_output(self) -> str:
        return "".join(path.read_text(errors="replace") for path in self.worker_logs)


@pytest.fixture
def chaos_size(request: pytest.FixtureRequest) -> int:
    return FULL_JOBS if request.config.getoption("--chaos-full") else CI_JOBS


@pytest.fixture
def chaos_stack(tmp_path: Path) -> Iterator[ChaosStack]:
    with job_reachable_directory("compute-chaos-data-") as data_dir:
        yield from _chaos_stack(tmp_path, data_dir)


def _chaos_stack(tmp_path: Path, data_dir: Path) -> Iterator[ChaosStack]:
    databases = _postgres_database()
    database_url = next(databases)
    broker = RedisServer(tmp_path)
    broker.start()
    config = {
        "DATA_DIR": str(data_dir),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": broker.url,
    }
    app = create_app(config)
    upgrade_database(app)
    with app.app_context():
        for statement in TERMINAL_RECORDER:
            db.session.execute(sa.text(statement))
        db.session.commit()
    with app.app_context():
        token = issue_token(get_or_create_user("chaos"))
        db.engine.dispose()
    env = {
        **os.environ,
        "COMPUTE_DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url,
        "REDIS_URL": broker.url,
    }
    worker_env = {
        **env,
        "COMPUTE_JOB_LEASE_SECONDS": str(JOB_LEASE_SECONDS),
        "COMPUTE_RECONCILE_INTERVAL_SECONDS": "1",
        "COMPUTE_REPUBLISH_GRACE_SECONDS": "1",
        "COMPUTE_KILL_GRACE_SECONDS": "1",
    }
    api = ApiProcess(env, data_dir / "api.log")
    api.start()
    stack = ChaosStack(data_dir, database_url, broker, api, worker_env, token)
    try:
        stack.start_worker()
        yield stack
    finally:
        if stack.worker is not None and stack.worker.poll() is None:
            stop_tree(stack.worker)
        api.kill()
        broker.kill()
        next(databases, None)
