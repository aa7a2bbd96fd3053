"""Jobs are held to their limits: memory, CPU share, processes and timeout, whole tree
included, and the size of their log and result."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import tracemalloc
import types
from pathlib import Path
from typing import Any

import pytest

from tests.worker.execution.conftest import (
    PATTERN_PERIOD,
    Runner,
    cgroup_support,
    pattern,
    returned,
    survivors,
)
from worker.execution import job_monitor
from worker.execution.job_monitor import DEFAULT_MAX_RESULT_BYTES, Ending
from worker.execution.job_result import COPY_CHUNK_BYTES, SPOOL_MEMORY_BYTES

ALLOCATE = """
def main(megabytes):
    chunks = []
    for _ in range(megabytes // 16):
        chunks.append(bytearray(16 * 1024 * 1024))
    return len(chunks)
"""

GRANDCHILD_ALLOCATES = """
import subprocess, sys

ALLOCATE = "chunks = [bytearray(16 * 2**20) for _ in range(40)]; import time; time.sleep(5)"
CHILD = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {ALLOCATE!r}])"

def main():
    subprocess.run([sys.executable, "-c", CHILD])
    return "survived"
"""

CHILDREN_UNDER_RLIMIT = """
import subprocess, sys

CHILD = '''
import resource, time
resource.setrlimit(resource.RLIMIT_AS, (256 * 2**20, 256 * 2**20))
chunk = bytearray(150 * 2**20)
time.sleep(5)
'''

def main():
    children = [subprocess.Popen([sys.executable, "-c", CHILD]) for _ in range(4)]
    return [child.wait() for child in children]
"""

THREADS = """
import threading, time

def work():
    block = bytearray(2**20)
    time.sleep(0.5)

def main():
    threads = [threading.Thread(target=work) for _ in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(threads)
"""

BUSY_PAIR = """
import subprocess, sys, time

BUSY = '''
import time
end = time.monotonic() + 3
while time.monotonic() < end:
    pass
print(time.process_time())
'''

def main():
    started = time.monotonic()
    children = [
        subprocess.Popen([sys.executable, "-c", BUSY], stdout=subprocess.PIPE) for _ in range(2)
    ]
    cpu = sum(float(child.communicate()[0]) for child in children)
    return {"cpu": cpu, "wall": time.monotonic() - started}
"""

STUBBORN_DAEMON = """
import os, signal, sys, time

DAEMON = '''
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
while True:
    time.sleep(0.1)
'''

def main(marker):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c", DAEMON, marker])
        os._exit(0)
    os.wait()
    print("daemon started", flush=True)
    while True:
        time.sleep(0.1)
"""

DAEMON_LEFT_BEHIND = """
import subprocess, sys

def main(marker):
    subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", marker], start_new_session=True
    )
    return "done"
"""

FORK_BOMB = """
import os, sys, time

def main(marker):
    os.execv(sys.executable, [sys.executable, "-c", BOMB, marker])

BOMB = '''
import os, time
while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.01)
'''
"""


def test_memory_past_the_limit_is_out_of_memory(run: Runner, mode: str) -> None:
    ran = run(ALLOCATE, 1024, mode=mode, memory_mb=256)
    assert ran.outcome.ending is Ending.OUT_OF_MEMORY
    assert ran.outcome.result is None


def test_memory_under_the_limit_runs_to_the_end(run: Runner, mode: str) -> None:
    ran = run(ALLOCATE, 64, mode=mode, memory_mb=256)
    assert ran.outcome.ending is Ending.EXITED
    assert returned(ran.outcome) == b"j4"
    if mode == "cgroup":  # the kernel's peak; the portable watch samples and may miss it
        assert ran.outcome.peak_rss_mb >= 64


def test_grandchild_out_of_memory_is_out_of_memory(run: Runner, mode: str) -> None:
    ran = run(GRANDCHILD_ALLOCATES, mode=mode, memory_mb=256)
    assert ran.outcome.ending is Ending.OUT_OF_MEMORY


def test_children_each_under_a_process_limit_are_held_to_the_job_limit(run: Runner) -> None:
    cgroup_support("memory")
    ran = run(CHILDREN_UNDER_RLIMIT, mode="cgroup", memory_mb=400)
    assert ran.outcome.ending is Ending.OUT_OF_MEMORY


def test_many_threads_under_a_generous_limit_are_not_killed(run: Runner, mode: str) -> None:
    ran = run(THREADS, mode=mode, memory_mb=512)
    assert ran.outcome.ending is Ending.EXITED, ran.log
    assert returned(ran.outcome) == b"j64"


def test_half_a_cpu_holds_two_busy_processes_to_half_a_cpu(run: Runner) -> None:
    cgroup_support("cpu")
    ran = run(BUSY_PAIR, mode="cgroup", cpus=0.5)
    usage = json.loads(ran.outcome.result.value_bytes())
    assert usage["cpu"] / usage["wall"] <= 0.6, usage


def test_without_a_quota_affinity_holds_half_a_cpu_to_one(run: Runner) -> None:
    ran = run(BUSY_PAIR, mode="portable", cpus=0.5)
    usage = json.loads(ran.outcome.result.value_bytes())
    assert usage["cpu"] / usage["wall"] <= 1.1, usage


def test_timeout_kills_a_double_forked_daemon_that_ignores_sigterm(
    run: Runner, marker: str
) -> None:
    cgroup_support()
    started = time.monotonic()
    ran = run(STUBBORN_DAEMON, marker, mode="cgroup", timeout=2, grace=1)
    elapsed = time.monotonic() - started
    assert ran.outcome.ending is Ending.TIMED_OUT
    assert "daemon started" in ran.log
    assert elapsed <= 2 + 1 + 1, elapsed
    assert survivors(marker) == []


def test_a_daemon_left_by_a_finished_job_is_killed(run: Runner, marker: str) -> None:
    cgroup_support()
    ran = run(DAEMON_LEFT_BEHIND, marker, mode="cgroup")
    assert ran.outcome.ending is Ending.EXITED
    assert returned(ran.outcome) == b'j"done"'
    assert survivors(marker) == []


def test_fork_bomb_is_held_to_its_process_limit_and_killed(run: Runner, marker: str) -> None:
    cgroup_support("pids")
    counts: list[int] = []
    finished = threading.Event()

    def count() -> None:
        while not finished.is_set():
            counts.append(len(survivors(marker)))
            time.sleep(0.2)

    counter = threading.Thread(target=count)
    counter.start()
    started = time.monotonic()
    try:
        ran = run(FORK_BOMB, marker, mode="cgroup", timeout=3, grace=0.5, max_processes=64)
    finally:
        finished.set()
        counter.join()
    assert ran.outcome.ending is Ending.TIMED_OUT
    assert time.monotonic() - started < 3 + 0.5 + 2
    assert 1 < max(counts) <= 64, counts
    assert survivors(marker) == []
    # The machine is fine: a new process starts and runs at once.
    assert subprocess.run([sys.executable, "-c", "print(1)"], timeout=10).returncode == 0


RETURNS_BYTES = """
def main(size):
    return bytes(size)
"""

# The worker reads the result from ../out/result.bin, beside the job's copy of the
# bundle; a job can put anything there and exit without a value of its own.
PLANTS_RESULT = """
import os

def main(kind, target):
    path = os.path.join("..", "out", "result.bin")
    if kind == "sparse":
        with open(path, "wb") as handle:
            handle.truncate(target)
    elif kind == "link":
        os.symlink(target, path)
    elif kind == "fifo":
        os.mkfifo(path)
    os._exit(0)
"""

PRINTS_LINES = """
def main(count, length):
    line = "z" * (length - 1)
    for _ in range(count):
        print(line)
"""


def test_a_result_past_the_limit_is_refused(run: Runner, mode: str) -> None:
    ran = run(RETURNS_BYTES, 2048, mode=mode, max_result_bytes=1024)
    assert ran.outcome.ending is Ending.EXITED and ran.outcome.exit_code == 0
    assert ran.outcome.result is None
    assert ran.outcome.refused_result == "its result of 2048 bytes exceeds the 1024 byte limit"


def test_a_result_at_the_limit_is_kept(run: Runner) -> None:
    ran = run(RETURNS_BYTES, 1024, max_result_bytes=1024)
    assert returned(ran.outcome) == b"b" + bytes(1024)
    assert ran.outcome.refused_result is None


def test_a_terabyte_result_file_is_refused_without_reading_it(run: Runner) -> None:
    size = 2**40  # sparse: it takes no disk, but reading it would take hours
    started = time.monotonic()
    # A disk limit past its apparent size: the file holds no data, so it costs none.
    ran = run(PLANTS_RESULT, "sparse", size, disk_mb=2 * size // 2**20)
    assert ran.outcome.refused_result == (
        f"its result of {size - 1} bytes exceeds the {DEFAULT_MAX_RESULT_BYTES} byte limit"
    )
    assert time.monotonic() - started < 10


def test_a_result_linked_to_another_file_is_not_followed(run: Runner, tmp_path: Path) -> None:
    secret = tmp_path / "worker-only"
    secret.write_text("the worker's secret")
    secret.chmod(0o600)
    ran = run(PLANTS_RESULT, "link", str(secret))
    assert ran.outcome.result is None
    assert ran.outcome.refused_result == "its result is not a regular file"


def test_a_fifo_for_a_result_does_not_block_the_worker(run: Runner) -> None:
    started = time.monotonic()
    ran = run(PLANTS_RESULT, "fifo", "")
    assert ran.outcome.refused_result == "its result is not a regular file of its own"
    assert time.monotonic() - started < 10


RETURNS_PATTERN = f"""
def main(size):
    period = bytes(range({PATTERN_PERIOD}))
    return (period * (size // len(period) + 1))[:size]
"""


def test_a_large_result_comes_back_whole_from_disk_not_memory(
    run: Runner, spools: list[Any]
) -> None:
    size = 20 * 2**20
    tracemalloc.start()
    try:
        ran = run(RETURNS_PATTERN, size)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    result = ran.outcome.result
    assert result is not None and (result.tag, result.size) == (b"b", size), ran.log
    assert not result.in_memory and spools[0]._rolled
    # The worker held a piece of it at a time: never the whole value, nor a second copy.
    assert peak < 8 * COPY_CHUNK_BYTES, peak
    assert result.value_bytes() == pattern(size)


def test_a_large_result_past_the_limit_is_refused_without_being_read(
    run: Runner, spools: list[Any]
) -> None:
    size, limit = 20 * 2**20, 16 * 2**20
    ran = run(RETURNS_PATTERN, size, max_result_bytes=limit)
    assert ran.outcome.ending is Ending.EXITED and ran.outcome.exit_code == 0
    assert ran.outcome.result is None
    assert (
        ran.outcome.refused_result == f"its result of {size} bytes exceeds the {limit} byte limit"
    )
    assert spools == []  # not a byte of it was copied


def test_a_result_read_is_let_go_of_when_cleaning_up_after_the_job_fails(
    run: Runner, spools: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(path: str, **_: object) -> None:
        shutil.rmtree(path, ignore_errors=True)
        raise OSError("the job's directory would not go")

    monkeypatch.setattr(job_monitor, "shutil", types.SimpleNamespace(rmtree=fail))
    with pytest.raises(OSError, match="would not go"):
        run(RETURNS_PATTERN, 2 * SPOOL_MEMORY_BYTES)
    assert len(spools) == 1 and spools[0]._rolled and spools[0].closed


@pytest.mark.parametrize("length", [100, 300_000])
def test_output_past_the_log_cap_is_counted_not_kept(run: Runner, mode: str, length: int) -> None:
    count, cap = (50_000, 2**20) if length == 100 else (40, 256 * 1024)
    ran = run(PRINTS_LINES, count, length, mode=mode, log_bytes=cap)
    assert ran.outcome.ending is Ending.EXITED and ran.outcome.exit_code == 0
    lines = [json.loads(line)["log"] for line in ran.log.splitlines()]
    kept = len(lines) - 1
    assert 0 < kept < count
    assert len(ran.log.encode()) <= cap + 1024
    assert lines[-1] == f"[log truncated: {count - kept} more lines were dropped after {cap} bytes]"
    if length > 64 * 1024:  # each line read is cut to the longest a log line may be
        assert lines[0].endswith(" [line truncated]")
