"""Limits end jobs: a timeout kills the whole process tree, a memory limit fails the job.

Harder cases (a grandchild out of memory, a daemon that ignores SIGTERM, a fork bomb, a
gigabyte of output, an oversized result) are in `test_resource_matrix.py`.
"""

from __future__ import annotations

import re

import psutil

from compute import Function
from tests.conftest import ApiClient
from tests.worker import functions
from tests.worker.conftest import KILL_GRACE_SECONDS
from tests.worker.support import job_log, parse_date, wait_for_job

TIMEOUT = 2
# Killed orphans (the child outlives the job's main process) stay zombies until PID 1 reaps
# them, and the runner waits for that: up to ~1.5 s in a container whose init reaps lazily.
REAPING_SLACK = 3.0


def _pids(lines: list[str], prefix: str) -> list[int]:
    for line in lines:
        if line.startswith(prefix + " "):
            return [int(pid) for pid in line.split()[1:]]
    raise AssertionError(f"no {prefix!r} line in the log: {lines}")


def _assert_gone(pids: list[int]) -> None:
    alive = [pid for pid in pids if psutil.pid_exists(pid) and _not_zombie(pid)]
    assert not alive, f"job processes survived: {alive}"


def _not_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_timeout_ends_the_job_and_its_children(exec_user: ApiClient) -> None:
    fn = Function(functions.sleep_with_stubborn_child, name="sleepy", timeout=TIMEOUT)
    fn.save()
    job = wait_for_job(exec_user, fn(60).id)
    assert job["status"] == "timeout", job
    elapsed = (parse_date(job["end_date"]) - parse_date(job["start_date"])).total_seconds()
    # The child ignores SIGTERM, so the end comes after the grace period, and soon after.
    ended = TIMEOUT + KILL_GRACE_SECONDS
    assert ended <= elapsed <= ended + REAPING_SLACK, f"ended {elapsed:.2f} s after its start"
    lines = job_log(exec_user, job["id"])
    assert f"[job timeout: exceeded its {TIMEOUT} s timeout]" in lines
    _assert_gone(_pids(lines, "pids"))
    assert job["runtime"] is not None


def test_memory_limit_fails_the_job(exec_user: ApiClient) -> None:
    fn = Function(functions.hog_memory, name="hog", memory=100, timeout=60)
    fn.save()
    job = wait_for_job(exec_user, fn(600).id)
    assert job["status"] == "failure", job
    text = "\n".join(job_log(exec_user, job["id"]))
    assert "exceeded its 100 MB memory limit" in text
    assert re.search(r"\[attempt 1\]", text)
