"""A live worker says so in the broker: its node, slots, images, warm executors and the
mechanisms enforcing its jobs' limits; the API lists them, and a stopped worker drops out.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import redis
import requests

from compute import Function
from compute.server.presence import WorkerPresence, live_workers
from tests.conftest import ApiClient
from tests.worker import functions
from tests.worker.conftest import (
    WORKER_PROCESSES,
    ExecutionStack,
    start_worker,
    stop_tree,
    wait_ready,
    worker_environment,
)
from tests.worker.support import wait_until

OWN_RELEASE = f"{sys.version_info.major}.{sys.version_info.minor}."
OWN_IMAGE = f"python{OWN_RELEASE[:-1]}:latest"
# A record is renewed every 5 s: a change shows within two renewals.
PRESENCE_WAIT_SECONDS = 15


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def broker(stack: ExecutionStack) -> redis.Redis:
    return redis.Redis.from_url(stack.server.app.config["REDIS_URL"])


def stack_worker(stack: ExecutionStack) -> WorkerPresence:
    """The presence record of the stack's own worker (its main process)."""
    return wait_until(
        lambda: next((w for w in live_workers(broker(stack)) if w.pid == stack.worker.pid), None),
        timeout=PRESENCE_WAIT_SECONDS,
    )


def test_a_live_worker_describes_itself(execution_stack: ExecutionStack) -> None:
    worker = stack_worker(execution_stack)
    assert worker.node.startswith("test-")
    assert worker.slots == WORKER_PROCESSES
    # This interpreter's version, served by it or by another of the same release.
    [own] = [image for image in worker.images if image.image == OWN_IMAGE]
    assert own.python.startswith(OWN_RELEASE), worker.images
    # The mechanisms the start-up log names, limit by limit.
    assert {"memory", "cpus", "timeout", "network", "job users", "disk"} <= set(worker.limits)
    assert all(mechanism for mechanism in worker.limits.values())
    log = execution_stack.worker_output()
    assert f"jobs run as: {worker.limits['job users']}" in log
    assert worker.limits["network"] in log


def test_the_api_lists_live_workers_and_their_images(
    exec_user: ApiClient, execution_stack: ExecutionStack
) -> None:
    worker = stack_worker(execution_stack)
    refused = requests.get(execution_stack.server.base_url + "/workers", timeout=30)
    assert refused.status_code == 401

    listed = exec_user.get("/workers")
    assert listed.status_code == 200
    [described] = [w for w in listed.json()["data"] if w["node"] == worker.node]
    assert described["slots"] == WORKER_PROCESSES
    assert described["limits"]["disk"] == worker.limits["disk"]

    images = exec_user.get("/images")
    assert images.status_code == 200
    [own] = [image for image in images.json()["data"] if image["image"] == OWN_IMAGE]
    assert own["python"].startswith(OWN_RELEASE) and own["workers"] == 1


def test_ready_with_a_live_worker_says_how_limits_are_enforced(
    execution_stack: ExecutionStack,
) -> None:
    worker = stack_worker(execution_stack)
    response = requests.get(execution_stack.server.root_url + "/readyz", timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok" and body["live_workers"] >= 1
    assert worker.limits["memory"] in body["limits"]["memory"]
    assert worker.limits["network"] in body["limits"]["network"]


def test_warm_executors_are_counted(exec_user: ApiClient, execution_stack: ExecutionStack) -> None:
    fn = Function(functions.double, name="presence-warm", timeout=60)
    fn.save()
    fn(2).wait_for_completion(timeout=120, interval=0.1)
    # The executor stays warm after its job, in the pool process that ran it.
    wait_until(
        lambda: stack_worker(execution_stack).warm_executors >= 1,
        timeout=PRESENCE_WAIT_SECONDS,
        describe=lambda: stack_worker(execution_stack),
    )


def test_a_stopped_worker_drops_out_at_once(
    execution_stack: ExecutionStack, tmp_path: Path
) -> None:
    server = execution_stack.server
    log_path = tmp_path / "second-worker.log"
    port = free_port()
    env = worker_environment(server, server.app.config["REDIS_URL"])
    env["COMPUTE_WORKER_METRICS_PORT"] = str(port)
    second = start_worker(env, log_path, processes=1)
    try:
        wait_ready(log_path, second)
        record = wait_until(
            lambda: next(
                (w for w in live_workers(broker(execution_stack)) if w.pid == second.pid), None
            ),
            timeout=PRESENCE_WAIT_SECONDS,
        )
        assert record.slots == 1 and record.metrics_port == port
        # A worker on a machine of its own serves its metrics itself, when asked to.
        served = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert served.status_code == 200
    finally:
        stop_tree(second)
    nodes = {w.node for w in live_workers(broker(execution_stack))}
    assert record.node not in nodes
    assert stack_worker(execution_stack).node in nodes
