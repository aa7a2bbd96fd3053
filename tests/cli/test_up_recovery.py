"""`compute up` heals: a killed worker, broker or API is started again, and no job is lost.

One `compute up` (the module's `service`) takes each kill in turn. The jobs submitted
just before the kill are caught wherever they were (running on the worker that dies,
waiting in the broker that dies); the service runs every job at least once, so they still
end in success, as does a job submitted after.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator

import psutil
import pytest
import requests

import compute
from compute import Function, Job, JobStatus

from .conftest import RunningUp, create_token

RECOVERY_SECONDS = 30
JOB_SECONDS = 240
CHILDREN = {"worker": "worker.celery_app", "broker": "redis-server", "api": "gunicorn"}
# What the log says once more each time a child serves again (the API: its health check).
SIGNS_OF_LIFE = {
    "worker": re.compile(r"celery@\S+ ready"),
    "broker": re.compile(r"Connected to redis://"),  # the worker has reconnected
}


def slow_double(x: int) -> int:
    import time

    time.sleep(2)
    return 2 * x


@pytest.fixture(scope="module")
def function(service: RunningUp) -> Iterator[Function]:
    compute.configure(url=service.base_url, token=create_token(service, "recovery"))
    try:
        fn = Function(slow_double, name="slow-double", timeout=120)
        fn.save()
        fn.wait_for_completion(timeout=JOB_SECONDS, interval=1)
        yield fn
    finally:
        compute.configure()


def healthy(service: RunningUp) -> bool:
    try:
        return requests.get(f"{service.root_url}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def signs_of_life(service: RunningUp, name: str) -> int:
    sign = SIGNS_OF_LIFE.get(name)
    return len(sign.findall(service.log())) if sign else 0


def serving_again(service: RunningUp, name: str, killed_pid: int, signs_before: int) -> bool:
    try:
        replaced = service.child(CHILDREN[name]).pid != killed_pid
    except (AssertionError, psutil.Error):  # between two runs; the dead one not yet reaped
        return False
    if name in SIGNS_OF_LIFE and signs_of_life(service, name) <= signs_before:
        return False
    return replaced and healthy(service)


def wait_until_one_runs(jobs: list[Job]) -> None:
    deadline = time.monotonic() + JOB_SECONDS
    while True:
        for job in jobs:
            job.refresh()
        if any(job.status == JobStatus.RUNNING for job in jobs):
            return
        assert time.monotonic() < deadline, [job.status for job in jobs]
        time.sleep(0.1)


@pytest.mark.parametrize("name", ["worker", "broker", "api"])
def test_a_killed_child_is_restarted_and_no_job_is_lost(
    service: RunningUp, function: Function, name: str
) -> None:
    # More jobs than the worker runs at once: some run, the rest wait in the broker.
    before = function.map([1, 2, 3, 4])
    wait_until_one_runs(before)
    killed = service.child(CHILDREN[name])
    signs_before = signs_of_life(service, name)

    killed.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + RECOVERY_SECONDS
    while not serving_again(service, name, killed.pid, signs_before):
        assert time.monotonic() < deadline, f"not serving again:\n{service.log()}"
        time.sleep(0.2)
    after = function(5)

    for job, result in zip([*before, after], [2, 4, 6, 8, 10]):
        job.wait_for_completion(timeout=JOB_SECONDS, interval=1)
        assert job.status == JobStatus.SUCCESS, service.log()
        assert job.result() == result
    assert re.search(
        rf"^The {name} process \(pid {killed.pid}\) was killed by SIGKILL at [\d:]+; "
        r"restarting it in 1 s\.$",
        service.log(),
        re.M,
    )
    assert service.process.poll() is None
