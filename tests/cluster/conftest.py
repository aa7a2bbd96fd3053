"""A cluster on one machine: one `compute serve` and several `compute worker` nodes,
each a process tree of its own with its own data and work directories and node name,
all sharing PostgreSQL, one Redis database and one S3-protocol blob store (moto's server,
over HTTP on loopback), as machines of a deployment share them."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
import sqlalchemy as sa

import compute
from tests.cli.conftest import cli_environment, compute_cli, free_port
from tests.conftest import _postgres_database
from tests.redis_databases import claimed_redis_url
from tests.s3 import running_s3_server
from tests.worker.conftest import job_reachable_directory, process_tree, stop_tree
from tests.worker.support import wait_until

# Short leases and frequent sweeps: a lost node's jobs come back within seconds.
JOB_LEASE_SECONDS = 4
RECONCILE_INTERVAL_SECONDS = 1
NODE_CONCURRENCY = 2
START_SECONDS = 90
STOP_SECONDS = 20
TERMINAL_RECORD = re.compile(r"terminal record: job=(\w+) attempt=(\d+) status=(\w+)")


def on_host_of_its_own(host: str, argv: list[str]) -> list[str]:
    """`argv` run under a host name of its own where the machine allows (root, `unshare`).

    A node names the leases of its processes `host:pid`, and a reconciler recovers the
    attempts of dead processes of its own host at once: nodes of one host name would
    find each other's dead at once, where nodes on separate machines wait for the lease
    to run out. A host name each makes them wait as on separate machines.
    """
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        return argv
    return [unshare, "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', host, *argv]


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL `process`, its process group and every descendant, as a lost machine would
    lose them: the tree is stopped first, so nothing in it forks or reacts meanwhile."""
    tree = process_tree(process.pid)
    for member in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.suspend()
    # Whatever forked between the first look and the stop.
    tree = {member.pid: member for member in [*tree, *process_tree(process.pid)]}.values()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    for member in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    process.wait(timeout=STOP_SECONDS)
    psutil.wait_procs(list(tree), timeout=STOP_SECONDS)


@dataclass
class Node:
    """One `compute worker` process tree and its log."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    ready_at: float = 0.0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def is_ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"node {self.name} exited early:\n{self.log()}")
        return f"{self.name}@" in self.log() and " ready." in self.log()

    def pids(self) -> set[int]:
        return {member.pid for member in process_tree(self.process.pid)}

    def terminal_records(self) -> list[tuple[str, int, str]]:
        """(job id, attempt, status) of every terminal record this node wrote."""
        return [
            (job, int(attempt), status)
            for job, attempt, status in TERMINAL_RECORD.findall(self.log())
        ]

    def recorded_jobs(self) -> set[str]:
        return {job for job, _, _ in self.terminal_records()}


@dataclass
class Cluster:
    """The shared services, the API, and the worker nodes started so far."""

    directory: Path
    env: dict[str, str]
    database_url: str
    api_root: str
    token: str
    nodes: dict[str, Node] = field(default_factory=dict)

    def start_node(
        self,
        name: str,
        concurrency: int = NODE_CONCURRENCY,
        settings: dict[str, str] | None = None,
    ) -> Node:
        """Start a `compute worker` node with directories of its own, and `settings` in its
        environment besides the cluster's; return it once ready."""
        home = self.directory / name
        env = {
            **self.env,
            "COMPUTE_DATA_DIR": str(home / "data"),
            "COMPUTE_WORK_DIR": str(home / "work"),
            **(settings or {}),
        }
        home.mkdir(mode=0o711)
        log_path = self.directory / f"{name}.log"
        argv = on_host_of_its_own(
            f"{name}-host",
            compute_cli("worker", "--name", name, "--concurrency", str(concurrency)),
        )
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        node = Node(name, process, log_path)
        self.nodes[name] = node
        wait_until(node.is_ready, timeout=START_SECONDS, interval=0.1, describe=node.log)
        node.ready_at = time.monotonic()
        return node

    def query(self, sql: str, **parameters: Any) -> list[Any]:
        engine = sa.create_engine(self.database_url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as connection:
                return list(connection.execute(sa.text(sql), parameters))
        finally:
            engine.dispose()

    def statuses(self, function_id: str) -> dict[str, int]:
        rows = self.query(
            "SELECT status, count(*) FROM jobs WHERE function_id = :function GROUP BY status",
            function=function_id,
        )
        return {status: count for status, count in rows}

    def terminal_records(self) -> list[tuple[str, str, int, str]]:
        """(node, job id, attempt, status) of every terminal record of every node."""
        return [
            (node.name, *record)
            for node in self.nodes.values()
            for record in node.terminal_records()
        ]


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _cli(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        compute_cli(*args), env=env, capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """The API and two worker nodes, `node-a` and `node-b`; the SDK talks to the API."""
    with (
        job_reachable_directory("compute-cluster-") as directory,
        claimed_redis_url() as redis_url,
        contextlib.closing(_postgres_database()) as databases,
        running_s3_server() as s3,
        contextlib.ExitStack() as processes,
    ):
        database_url = next(databases)
        env = cli_environment(
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            COMPUTE_BLOB_URL=s3.blob_url("cluster/blobs"),
            **s3.environment(),
            COMPUTE_SECRET_KEY=secrets.token_urlsafe(32),
            COMPUTE_DATA_DIR=str(directory / "api"),
            COMPUTE_JOB_LEASE_SECONDS=str(JOB_LEASE_SECONDS),
            COMPUTE_RECONCILE_INTERVAL_SECONDS=str(RECONCILE_INTERVAL_SECONDS),
            COMPUTE_REPUBLISH_GRACE_SECONDS="1",
            COMPUTE_KILL_GRACE_SECONDS="1",
        )
        _cli(env, "db", "upgrade")
        token = _cli(env, "token", "create", "--user", "cluster-tester")
        port = free_port()
        api_root = f"http://127.0.0.1:{port}"
        with (directory / "serve.log").open("wb") as log:
            serve = subprocess.Popen(
                compute_cli("serve", "--port", str(port)),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        processes.callback(stop_tree, serve)
        wait_until(lambda: _answers(f"{api_root}/healthz"), timeout=START_SECONDS)
        running = Cluster(directory, env, database_url, api_root, token)
        # Every node is stopped, however the tests end (a killed one is simply reaped).
        processes.callback(lambda: [stop_tree(n.process) for n in running.nodes.values()])
        running.start_node("node-a")
        running.start_node("node-b")
        compute.configure(url=f"{api_root}/compute/v1", token=token)
        try:
            yield running
        finally:
            compute.configure(url=None, token=None)
