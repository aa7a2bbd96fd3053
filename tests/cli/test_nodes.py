"""`compute serve` and `compute worker`: the API and a worker node started on their own,
configured by the environment alone, as the machines of a deployment run them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
import requests
import sqlalchemy as sa

import compute
from compute import Function
from tests.cli.conftest import cli_environment, compute_cli, free_port, stop_with_tree
from tests.redis_databases import claimed_redis_url
from tests.worker import functions
from tests.worker.support import wait_until

STOP_SECONDS = 30


@contextmanager
def started(argv: list[str], env: dict[str, str], log_path: Path) -> Iterator[psutil.Process]:
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield psutil.Process(process.pid)
    finally:
        tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(True)]
        stop_with_tree(process, tree, STOP_SECONDS)


def test_an_api_and_a_worker_node_started_apart_run_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with claimed_redis_url() as redis_url:
        env = cli_environment(REDIS_URL=redis_url, COMPUTE_DATA_DIR=str(tmp_path / "data"))
        subprocess.run(compute_cli("db", "upgrade"), env=env, check=True, timeout=120)
        token = subprocess.run(
            compute_cli("token", "create", "--user", "node-tester"),
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout.strip()
        port = free_port()
        root = f"http://127.0.0.1:{port}"
        serve = compute_cli("serve", "--port", str(port))
        node = compute_cli("worker", "--name", "node-a", "--concurrency", "1")
        with (
            started(serve, env, tmp_path / "serve.log") as api,
            started(node, env, tmp_path / "worker.log") as worker,
        ):
            wait_until(lambda: _answers(f"{root}/healthz"), timeout=60)
            headers = {"Authorization": f"Bearer {token}"}

            def node_a() -> list[dict]:
                answer = requests.get(f"{root}/compute/v1/workers", headers=headers, timeout=10)
                return [w for w in answer.json()["data"] if w["node"].startswith("node-a@")]

            [listed] = wait_until(node_a, timeout=60)
            assert listed["slots"] == 1
            # Each became the process it runs: signals from a process manager reach it.
            assert "gunicorn" in " ".join(api.cmdline())
            assert "celery" in " ".join(worker.cmdline())
            compute.configure(url=f"{root}/compute/v1", token=token)
            try:
                fn = Function(functions.double, name="on-a-node", timeout=60)
                fn.save()
                job = fn(21)
                job.wait_for_completion(timeout=120, interval=0.2)
                assert job.result() == 42
            finally:
                compute.configure(url=None, token=None)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_each_part_needs_the_shared_broker(command: str, tmp_path: Path) -> None:
    env = cli_environment(COMPUTE_DATA_DIR=str(tmp_path / "data"))
    env.pop("REDIS_URL", None)
    answer = subprocess.run(
        compute_cli(command), env=env, capture_output=True, text=True, timeout=120
    )
    assert answer.returncode == 1
    assert f"compute {command} needs REDIS_URL" in answer.stderr


def _log_text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _node_environment(tmp_path: Path, redis_url: str, schema_wait_seconds: int) -> dict[str, str]:
    return cli_environment(
        REDIS_URL=redis_url,
        COMPUTE_DATA_DIR=str(tmp_path / "data"),
        COMPUTE_SCHEMA_WAIT_SECONDS=str(schema_wait_seconds),
    )


def test_a_worker_node_started_first_waits_for_the_schema(tmp_path: Path) -> None:
    with claimed_redis_url() as redis_url:
        env = _node_environment(tmp_path, redis_url, schema_wait_seconds=120)
        log = tmp_path / "worker.log"
        node = compute_cli("worker", "--name", "early", "--concurrency", "1")
        with started(node, env, log) as worker:
            wait_until(
                lambda: "waiting: the database schema is behind this release" in _log_text(log),
                timeout=60,
                describe=lambda: _log_text(log),
            )
            subprocess.run(compute_cli("db", "upgrade"), env=env, check=True, timeout=120)
            wait_until(
                lambda: "reconciler started" in _log_text(log),
                timeout=60,
                describe=lambda: _log_text(log),
            )
            assert worker.is_running()


def test_a_worker_node_that_never_finds_its_schema_stops_saying_why(tmp_path: Path) -> None:
    with claimed_redis_url() as redis_url:
        env = _node_environment(tmp_path, redis_url, schema_wait_seconds=2)
        node = compute_cli("worker", "--name", "stale", "--concurrency", "1")
        answer = subprocess.run(node, env=env, capture_output=True, text=True, timeout=120)
    # Stopped, not left half-started: a supervisor sees the failure and says why.
    assert answer.returncode == 1, answer.stdout + answer.stderr
    assert (
        "this worker cannot run: the database schema is behind this release; "
        "run `compute db upgrade`" in answer.stdout + answer.stderr
    )


def test_an_older_release_is_refused_a_newer_schema(tmp_path: Path) -> None:
    with claimed_redis_url() as redis_url:
        env = cli_environment(REDIS_URL=redis_url, COMPUTE_DATA_DIR=str(tmp_path / "data"))
        subprocess.run(compute_cli("db", "upgrade"), env=env, check=True, timeout=120)
        # As a later release's migration leaves it.
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'compute.db'}")
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE alembic_version SET version_num = 'f0f0f0f0f0f0'"))
        engine.dispose()
        newer = "the database schema is newer than this release (revision f0f0f0f0f0f0)"

        serve = [sys.executable, "-c", "import api.wsgi"]
        refused = subprocess.run(serve, env=env, capture_output=True, text=True, timeout=120)
        assert refused.returncode != 0
        assert newer in refused.stderr

        # At once: waiting for `compute db upgrade` could not help.
        node = compute_cli("worker", "--name", "old", "--concurrency", "1")
        answer = subprocess.run(node, env=env, capture_output=True, text=True, timeout=120)
        assert answer.returncode == 1
        assert f"this worker cannot run: {newer}" in answer.stdout + answer.stderr
