"""Hostile jobs through the real worker: each ends with a status and a reason, and leaves
nothing behind.

The worker enforces with cgroups where this host has them (`auto`); the same cases under
each enforcement mode, run directly, are in `execution/test_job_monitor.py`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil

from compute import Function
from tests.capabilities import requires
from tests.conftest import ApiClient
from tests.worker import functions
from tests.worker.conftest import KILL_GRACE_SECONDS, ExecutionStack
from tests.worker.support import job_blob_dir, job_log, parse_date, wait_for_job
from worker.execution.cgroups import probe_cgroups
from worker.execution.job_monitor import DEFAULT_MAX_RESULT_BYTES
from worker.execution.joblog import DEFAULT_MAX_BYTES, MAX_LINE_CHARS

# What the print test prints: a line of this many megabytes, then a gigabyte in short
# lines; through a pipe that takes seconds (three or four), not minutes.
LONG_LINE_MB = 256
PRINTED_BYTES = 2**30
PRINTED_LINE_BYTES = 1024
PRINTING_SECONDS_MAX = 60
# No process of the worker may grow this large meanwhile (they start near 100 MB): the
# output streams into the log, and the long line is not gathered whole.
WORKER_PROCESS_MAX_MB = 250
# Killed processes stay zombies until init reaps them (see test_limits).
REAPING_SLACK = 3.0

SUPPORT = probe_cgroups()
needs_pids_cgroup = requires(
    SUPPORT is not None and SUPPORT.controller("pids") is not None,
    "a pids cgroup (nothing else holds a fork bomb: RLIMIT_NPROC is per user)",
)


def _run(api: ApiClient, function, *args, **options):  # noqa: ANN001, ANN002, ANN003, ANN202
    fn = Function(function, name=function.__name__, **{"timeout": 120, **options})
    fn.save()
    job = wait_for_job(api, fn(*args).id, timeout=240)
    return job, job_log(api, job["id"])


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _with_marker(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if marker in (process.info["cmdline"] or []) and process.is_running():
            with contextlib.suppress(psutil.Error):
                if process.status() != psutil.STATUS_ZOMBIE:
                    found.append(process)
    return found


@contextlib.contextmanager
def _sampling(sample, interval: float = 0.1) -> Iterator[list]:  # noqa: ANN001
    """Call `sample()` every `interval` seconds until exit; yields the values seen."""
    values: list = []
    done = threading.Event()

    def loop() -> None:
        while not done.is_set():
            values.append(sample())
            done.wait(interval)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield values
    finally:
        done.set()
        thread.join()


def test_out_of_memory_in_a_grandchild_fails_the_job(exec_user: ApiClient) -> None:
    job, lines = _run(exec_user, functions.grandchild_hogs_memory, 600, memory=256)
    assert job["status"] == "failure", job
    assert job["error"] == "exceeded its 256 MB memory limit"
    assert "[job failure: exceeded its 256 MB memory limit]" in lines


def test_sixty_four_threads_under_a_generous_limit_succeed(exec_user: ApiClient) -> None:
    job, lines = _run(exec_user, functions.many_threads, 64, memory=2048)
    assert job["status"] == "success", lines
    assert exec_user.get(f"/jobs/{job['id']}/result").json() == 64


def test_timeout_leaves_no_process_of_a_job_that_ignores_sigterm_and_daemonizes(
    exec_user: ApiClient, tmp_path: Path
) -> None:
    timeout = 2
    job, lines = _run(exec_user, functions.stubborn_with_daemon, str(tmp_path), timeout=timeout)
    pids = {name: int((tmp_path / f"{name}.pid").read_text()) for name in ("job", "daemon")}
    try:
        assert job["status"] == "timeout", job
        assert "daemon started" in lines
        elapsed = (parse_date(job["end_date"]) - parse_date(job["start_date"])).total_seconds()
        assert elapsed <= timeout + KILL_GRACE_SECONDS + REAPING_SLACK, elapsed
        assert {name: pid for name, pid in pids.items() if _alive(pid)} == {}
    finally:
        for pid in pids.values():
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()


@needs_pids_cgroup
def test_a_fork_bomb_is_contained_and_leaves_nothing(exec_user: ApiClient) -> None:
    marker = f"compute-bomb-{uuid.uuid4().hex}"
    try:
        with _sampling(lambda: len(_with_marker(marker)), interval=0.2) as counts:
            job, _ = _run(exec_user, functions.fork_bomb, marker, timeout=3, memory=512)
        assert job["status"] in ("timeout", "failure"), job
        assert max(counts) > 1, "the bomb never forked"
        assert max(counts) <= 512, max(counts)  # the job's pids.max
        assert _with_marker(marker) == []
        # The machine is fine: a new process starts and runs at once.
        started = time.monotonic()
        assert subprocess.run([sys.executable, "-c", "print(1)"], timeout=10).returncode == 0
        assert time.monotonic() - started < 5
    finally:
        for process in _with_marker(marker):
            with contextlib.suppress(psutil.Error):
                process.kill()


def _worker_process_mb(worker: subprocess.Popen[bytes]) -> float:
    """The largest resident size among the worker's own processes (not the job's)."""
    try:
        root = psutil.Process(worker.pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    largest = 0
    for process in tree:
        with contextlib.suppress(psutil.Error):
            if process.uids().real == os.getuid():
                largest = max(largest, process.memory_info().rss)
    return largest / 2**20


def test_a_job_printing_a_gigabyte_keeps_a_capped_log(
    exec_user: ApiClient, execution_stack: ExecutionStack
) -> None:
    with _sampling(lambda: _worker_process_mb(execution_stack.worker)) as sizes:
        job, lines = _run(
            exec_user, functions.prints, PRINTED_BYTES, PRINTED_LINE_BYTES, LONG_LINE_MB
        )
    assert job["status"] == "success", job
    assert job["runtime"] < PRINTING_SECONDS_MAX, job
    assert max(sizes) < WORKER_PROCESS_MAX_MB, max(sizes)
    stored = job_blob_dir(execution_stack.server.data_dir, job["function_id"], job["id"])
    assert (stored / "log.ndjson").stat().st_size <= DEFAULT_MAX_BYTES + 4096
    assert lines[0] == "[attempt 1]"
    assert lines[1] == "x" * MAX_LINE_CHARS + " [line truncated]"
    assert lines[2] == "y" * (PRINTED_LINE_BYTES - 1)
    kept = lines.index(next(line for line in lines if line.startswith("[log truncated:")))
    assert lines[kept:] == [
        f"[log truncated: {PRINTED_BYTES // PRINTED_LINE_BYTES - (kept - 2)} more lines were "
        f"dropped after {DEFAULT_MAX_BYTES} bytes]"
    ]


def test_an_oversized_result_fails_the_job_with_the_reason(exec_user: ApiClient) -> None:
    size = DEFAULT_MAX_RESULT_BYTES + 1
    job, lines = _run(exec_user, functions.returns_bytes_of, size)
    reason = f"its result of {size} bytes exceeds the {DEFAULT_MAX_RESULT_BYTES} byte limit"
    assert job["status"] == "failure", job
    assert job["error"] == reason
    assert f"[job failure: {reason}]" in lines
    assert exec_user.get(f"/jobs/{job['id']}/result").content == b""  # nothing was stored
