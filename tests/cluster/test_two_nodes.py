"""Several worker nodes serve one deployment: a function's jobs split across them, its
`maximum_concurrency` holds across them at every instant, a node SIGKILLed as a whole
loses no job, and a node started mid-run takes work at once."""

from __future__ import annotations

import collections
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compute import Function, FunctionStatus
from compute.server.dispatch import BUILD_QUEUE
from tests.cluster.conftest import (
    JOB_LEASE_SECONDS,
    NODE_CONCURRENCY,
    RECONCILE_INTERVAL_SECONDS,
    Cluster,
    Node,
    kill_tree,
    stop_tree,
)
from tests.published_client.conftest import find_python310
from tests.worker import functions
from tests.worker.support import wait_until
from worker.lease_owners import owner_pid

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]

SPLIT_JOBS = 2_000
# Under the two nodes' slots together, so the function's cap, not the pools, binds.
SPLIT_CAP = 3
RUN_SECONDS = 180
# A sweep may start late on a loaded machine.
SWEEP_MARGIN_SECONDS = 5
# A job given back waits behind the function's queued jobs for the surviving node's slots.
RECOVERY_MARGIN_SECONDS = 20
JOINING_SECONDS = 15
# Jobs of 0.2 s queued per slot of the running nodes: about 15 s of work, longer than
# a node takes to start on a loaded machine.
JOINING_BACKLOG_PER_SLOT = 60


def wait_all_succeeded(cluster: Cluster, fn: Function, total: int, timeout: float) -> None:
    """Wait until `total` jobs of `fn` succeeded; fail at once if any ended otherwise."""

    def done() -> bool:
        statuses = cluster.statuses(fn.id)
        assert set(statuses) <= {"pending", "running", "success"}, statuses
        return statuses.get("success", 0) == total

    wait_until(done, timeout=timeout, interval=0.25, describe=lambda: cluster.statuses(fn.id))


def most_running_at_once(cluster: Cluster, fn: Function) -> int:
    """The largest number of `fn`'s jobs whose [start, end) intervals overlap."""
    rows = cluster.query(
        "SELECT start_date, end_date FROM jobs WHERE function_id = :function", function=fn.id
    )
    assert all(start and end and start <= end for start, end in rows), rows
    # An end sorts before a start at the same instant: a slot handed over is not doubled.
    events = sorted([(end, -1) for _, end in rows] + [(start, 1) for start, _ in rows])
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


def records_by_job(cluster: Cluster) -> dict[str, list[tuple[str, int, str]]]:
    """Each job's terminal records: (node, attempt, status)."""
    records: dict[str, list[tuple[str, int, str]]] = collections.defaultdict(list)
    for node, job, attempt, status in cluster.terminal_records():
        records[job].append((node, attempt, status))
    return records


def test_one_functions_jobs_split_across_both_nodes_under_its_cap(cluster: Cluster) -> None:
    fn = Function(functions.noop, name="split", maximum_concurrency=SPLIT_CAP, timeout=60)
    jobs = fn.map(range(SPLIT_JOBS))
    started = time.monotonic()
    wait_all_succeeded(cluster, fn, SPLIT_JOBS, RUN_SECONDS)
    print(f"{SPLIT_JOBS} jobs on two nodes in {time.monotonic() - started:.1f} s")

    ids = {job.id for job in jobs}
    records = {job: runs for job, runs in records_by_job(cluster).items() if job in ids}
    assert set(records) == ids
    assert all(len(runs) == 1 for runs in records.values())
    shares = collections.Counter(node for [(node, _, _)] in records.values())
    print(f"jobs per node: {dict(shares)}")
    for node in ("node-a", "node-b"):
        assert shares[node] > SPLIT_JOBS // 10, shares
    # Reached (the cap binds across the nodes), never passed.
    assert most_running_at_once(cluster, fn) == SPLIT_CAP


def test_a_node_killed_whole_loses_no_job(cluster: Cluster) -> None:
    victim, survivor = cluster.nodes["node-b"], cluster.nodes["node-a"]
    total = 40
    cap = 2 * NODE_CONCURRENCY
    fn = Function(functions.timed_sleep, name="survives", maximum_concurrency=cap, timeout=60)
    jobs = fn.map([0.3] * total)

    def running_on_victim() -> dict[str, int]:
        """The victim's running jobs, and the attempt each is at."""
        pids = victim.pids()
        rows = cluster.query(
            "SELECT id, attempt, lease_owner FROM jobs "
            "WHERE function_id = :function AND status = 'running'",
            function=fn.id,
        )
        return {job: attempt for job, attempt, owner in rows if owner_pid(owner) in pids}

    running = wait_until(running_on_victim, timeout=RUN_SECONDS, interval=0.02)
    kill_tree(victim.process)
    killed_at = time.monotonic()
    # What it was running and had not recorded when it died.
    unfinished = set(running) - victim.recorded_jobs()
    assert unfinished, "the node was killed with no job of its own running"

    def attempts_now() -> dict[str, tuple[str, int]]:
        rows = cluster.query(
            "SELECT id, status, attempt FROM jobs WHERE id = ANY(:ids)", ids=list(unfinished)
        )
        return {job: (status, attempt) for job, status, attempt in rows}

    def given_back() -> bool:
        """No attempt of the dead node holds a job any more."""
        now = attempts_now()
        return all(now[job] != ("running", running[job]) for job in unfinished)

    def succeeded() -> bool:
        return all(status == "success" for status, _ in attempts_now().values())

    lease_and_sweep = JOB_LEASE_SECONDS + RECONCILE_INTERVAL_SECONDS
    wait_until(given_back, timeout=lease_and_sweep + SWEEP_MARGIN_SECONDS, describe=attempts_now)
    print(f"{len(unfinished)} jobs given back {time.monotonic() - killed_at:.1f} s after the kill")
    wait_until(succeeded, timeout=lease_and_sweep + RECOVERY_MARGIN_SECONDS, describe=attempts_now)
    print(f"and ended {time.monotonic() - killed_at:.1f} s after it")
    wait_all_succeeded(cluster, fn, total, RUN_SECONDS)

    records = records_by_job(cluster)
    for job in jobs:
        assert len(records[job.id]) == 1, records[job.id]
    for job in unfinished:
        [(node, attempt, _)] = records[job]
        assert node == survivor.name and attempt > running[job]
    assert most_running_at_once(cluster, fn) <= cap


def test_a_node_started_mid_run_takes_work_at_once(cluster: Cluster) -> None:
    live = [node for node in cluster.nodes.values() if node.process.poll() is None]
    # Enough work to keep the running nodes busy while another starts; a cap above all
    # their slots, so the node that joins has room to run jobs.
    total = JOINING_BACKLOG_PER_SLOT * NODE_CONCURRENCY * len(live)
    fn = Function(functions.timed_sleep, name="joined", maximum_concurrency=64, timeout=60)
    fn.map([0.2] * total)
    wait_until(lambda: cluster.statuses(fn.id).get("success", 0) > 0, timeout=RUN_SECONDS)
    starting = time.monotonic()
    newcomer = cluster.start_node("node-c")
    print(f"node-c started in {newcomer.ready_at - starting:.1f} s")
    assert cluster.statuses(fn.id).get("pending", 0) > 0, "no work was left for the new node"
    wait_until(
        newcomer.terminal_records,
        timeout=JOINING_SECONDS,
        interval=0.1,
        describe=lambda: cluster.statuses(fn.id),
    )
    print(f"node-c recorded its first job {time.monotonic() - newcomer.ready_at:.1f} s after start")
    # The rest is not this test's: canceled, so the run ends here.
    fn.cancel_jobs()


def celery_control(cluster: Cluster, *words: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "celery", "-A", "worker.celery_app", "control", *words],
        env=cluster.env,
        check=True,
        capture_output=True,
        timeout=60,
    )


def node_name(node: Node) -> str:
    [name] = re.findall(rf"({re.escape(node.name)}@\S+) ready\.", node.log())
    return name


def test_a_node_lacking_an_image_leaves_the_build_to_one_offering_it(cluster: Cluster) -> None:
    python310, tried = find_python310()
    assert python310 is not None, f"this test needs a Python 3.10 (tried {tried})"
    wide = [node for node in cluster.nodes.values() if node.process.poll() is None]
    # A node seeing no pyenv and no interpreter on its PATH but its own: no python3.10.
    narrow = cluster.start_node(
        "narrow",
        settings={
            "HOME": str(cluster.directory / "narrow"),
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        },
    )
    try:
        # The wide nodes stop taking builds for a while: the narrow one must take it.
        wide_names = ",".join(node_name(node) for node in wide)
        celery_control(cluster, "cancel_consumer", BUILD_QUEUE, "-d", wide_names)
        fn = Function(functions.double, name="py310-only-elsewhere", image="python3.10:latest")
        fn.save()
        wait_until(
            lambda: "left to a node offering python3.10:latest" in narrow.log(),
            timeout=RUN_SECONDS,
            describe=narrow.log,
        )
        celery_control(cluster, "add_consumer", BUILD_QUEUE, "-d", wide_names)

        def build_settled() -> bool:
            fn.refresh()
            return fn.status != FunctionStatus.BUILDING

        wait_until(build_settled, timeout=RUN_SECONDS, describe=lambda: fn.status)
        # Built by a node that can run it; the narrow node's lack failed nobody.
        assert fn.status != FunctionStatus.BUILD_FAILED, narrow.log()
    finally:
        stop_tree(narrow.process)
        del cluster.nodes["narrow"]
    job = fn(21)
    job.wait_for_completion(timeout=RUN_SECONDS, interval=0.2)
    assert job.result() == 42
