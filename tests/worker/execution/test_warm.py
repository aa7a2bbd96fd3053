"""Warm executors: a function's code is imported once and each job runs in a forked child."""

from __future__ import annotations

import json
import statistics
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from worker.execution.confinement import CgroupConfinement, TreeConfinement
from worker.execution.executor import ExecutorPool
from worker.execution.job_limits import JobLimits
from worker.execution.job_monitor import Ending, ProcessOutcome, run_process
from worker.execution.joblog import JobLog

from .conftest import SUPPORT, job_python, survivors

ENTRYPOINT = """
import os, sys, time
IMPORTED_AT = time.time()
IMPORTER = os.getpid()
print("importing", file=sys.stderr)

def main(action, *args):
    if action == "identity":
        print("job in", os.getcwd())
        return {"imported_at": IMPORTED_AT, "importer": IMPORTER, "pid": os.getpid(),
                "cwd": os.getcwd(), "home": os.environ.get("HOME")}
    if action == "write":
        open("scratch.txt", "w").write("mine")
        return os.path.exists("scratch.txt")
    if action == "read":
        return os.path.exists("scratch.txt")
    if action == "litter":
        # Everything a job can leave behind in the places it may write.
        home, tmp = os.environ["HOME"], os.environ.get("TMPDIR", "/tmp")
        open(os.path.join(home, "left.txt"), "w").write("mine")
        os.makedirs(os.path.join(home, "deep", "er"))
        os.symlink("/etc/passwd", os.path.join(home, "link"))
        open("/tmp/left.txt", "w").write("mine")
        with open("__dlentrypoint__.py", "a") as source:
            source.write("# changed by a job\\n")
        os.chmod("__dlentrypoint__.py", 0o777)
        os.mkdir("made_here")
        return sorted(os.listdir(home))
    if action == "look":
        home = os.environ["HOME"]
        source = open("__dlentrypoint__.py").read()
        return {"home": sorted(os.listdir(home)), "cwd": sorted(os.listdir(".")),
                "tmp": os.path.exists("/tmp/left.txt"),
                "changed": source.endswith("# changed by a job\\n"),
                "mode": oct(os.stat("__dlentrypoint__.py").st_mode & 0o777)}
    if action == "measure":
        return [len(args[0]), args[0][-8:]]
    if action == "raise":
        raise KeyError("nope")
    if action == "sleep":
        import subprocess
        subprocess.Popen(["sleep", "60", args[0]], start_new_session=True)
        time.sleep(60)
    if action == "allocate":
        block = bytearray(args[0] * 1024 * 1024)
        return len(block)
"""


SLOW_IMPORT = """
import time
time.sleep(0.3)

def main():
    return "done"
"""


@pytest.fixture
def pool() -> Iterator[ExecutorPool]:
    executors = ExecutorPool()
    yield executors
    executors.close_all()


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    directory = tmp_path / "bundle"
    directory.mkdir()
    (directory / "__dlentrypoint__.py").write_text(textwrap.dedent(ENTRYPOINT))
    return directory


def run_job(
    pool: ExecutorPool | None,
    bundle: Path,
    *args: object,
    timeout: float = 30,
    memory_mb: int = 256,
) -> tuple[ProcessOutcome, str]:
    """Run the bundle's `main(*args)` warm, through `pool`, or cold (a fresh interpreter)
    when `pool` is None: its outcome and log."""
    log = JobLog()
    limits = JobLimits(1, memory_mb, timeout, 1.0)
    outcome = run_process(job_python(), bundle, list(args), {}, limits, log, executors=pool)
    return outcome, log.to_bytes().decode()


def value(outcome: ProcessOutcome) -> object:
    with outcome:
        assert outcome.result is not None and outcome.result.tag == b"j"
        return json.loads(outcome.result.value_bytes())


def test_jobs_share_one_import_and_run_in_separate_children(
    pool: ExecutorPool, bundle: Path
) -> None:
    first, first_log = run_job(pool, bundle, "identity")
    second, _ = run_job(pool, bundle, "identity")
    one, two = value(first), value(second)
    assert first.ending is Ending.EXITED and first.exit_code == 0
    assert one["imported_at"] == two["imported_at"] and one["importer"] == two["importer"]
    assert len({one["pid"], two["pid"], one["importer"]}) == 3
    assert "job in" in first_log


def test_a_jobs_files_do_not_reach_the_next_job(pool: ExecutorPool, bundle: Path) -> None:
    assert value(run_job(pool, bundle, "write")[0]) is True
    assert value(run_job(pool, bundle, "read")[0]) is False


def test_the_next_job_finds_its_directory_as_the_first_one_did(
    pool: ExecutorPool, bundle: Path
) -> None:
    first = value(run_job(pool, bundle, "look")[0])
    assert value(run_job(pool, bundle, "litter")[0]) == ["deep", "left.txt", "link"]
    assert value(run_job(pool, bundle, "look")[0]) == first
    assert first == {
        "home": [],
        "cwd": ["__dlentrypoint__.py"],
        "tmp": False,
        "changed": False,
        "mode": first["mode"],
    }


def test_megabytes_of_arguments_reach_the_job_whole(pool: ExecutorPool, bundle: Path) -> None:
    # Far past what a pipe holds: the request is written to the executor in pieces.
    text = "x" * (8 * 1024 * 1024) + "the end."
    assert value(run_job(pool, bundle, "measure", text)[0]) == [len(text), "the end."]
    assert value(run_job(pool, bundle, "measure", "short")[0]) == [5, "short"]


def test_a_child_the_worker_could_not_confine_never_runs_the_job(
    pool: ExecutorPool, bundle: Path, marker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: object, process: object) -> None:
        raise RuntimeError("could not confine")

    assert value(run_job(pool, bundle, "measure", "warm")[0]) == [4, "warm"]
    for confinement in (CgroupConfinement, TreeConfinement):
        monkeypatch.setattr(confinement, "attach", refuse)
    with pytest.raises(RuntimeError, match="could not confine"):
        run_job(pool, bundle, "sleep", marker)
    # Left at its gate, the child finds it closed and exits before any user code runs:
    # the executor is free for the next job at once (a child running the job would hold
    # it for the job's minute of sleep), and nothing the job would have started appears.
    monkeypatch.undo()
    started = time.monotonic()
    assert value(run_job(pool, bundle, "measure", "next")[0]) == [4, "next"]
    assert time.monotonic() - started < 20
    assert not survivors(marker)


def test_an_exception_is_a_failure_with_its_traceback(pool: ExecutorPool, bundle: Path) -> None:
    outcome, log = run_job(pool, bundle, "raise")
    assert outcome.ending is Ending.EXITED and outcome.exit_code == 1
    assert outcome.result is None
    assert "KeyError: 'nope'" in log


def test_a_warm_job_past_its_timeout_ends_with_its_children(
    pool: ExecutorPool, bundle: Path, marker: str
) -> None:
    started = time.monotonic()
    outcome, _ = run_job(pool, bundle, "sleep", marker, timeout=1.5)
    assert outcome.ending is Ending.TIMED_OUT
    assert time.monotonic() - started < 1.5 + 1.0 + 2.0
    assert not survivors(marker)
    # The executor survives a killed job and serves the next one.
    assert run_job(pool, bundle, "read")[0].exit_code == 0


def test_a_warm_job_past_its_memory_ends_out_of_memory(pool: ExecutorPool, bundle: Path) -> None:
    outcome, _ = run_job(pool, bundle, "allocate", 400, memory_mb=150)
    assert outcome.ending is Ending.OUT_OF_MEMORY
    # The next job of the same executor runs in the same cgroups: the kill before it is
    # not its own, and it starts with the memory it has.
    again, _ = run_job(pool, bundle, "allocate", 40, memory_mb=150)
    assert again.ending is Ending.EXITED and value(again) == 40 * 1024 * 1024
    memory = SUPPORT.controller("memory") if SUPPORT else None
    if memory is not None and memory.version == 1:  # elsewhere the peak is only sampled
        assert again.peak_rss_mb >= 40


def test_an_import_error_falls_back_to_a_cold_start_that_logs_it(
    pool: ExecutorPool, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "__dlentrypoint__.py").write_text("import no_such_module_here\nmain = print\n")
    outcome, log = run_job(pool, broken)
    assert outcome.exit_code == 1
    assert "ModuleNotFoundError" in log


def test_a_warm_job_takes_under_half_the_time_of_a_cold_one(
    pool: ExecutorPool, tmp_path: Path
) -> None:
    # The bundle's import takes a while, as real code's does (numpy, a model); a warm job
    # forks from the executor that imported it once, a cold one imports it again. Warm and
    # cold jobs alternate, so a busy machine slows both alike.
    bundle = tmp_path / "slow-import"
    bundle.mkdir()
    (bundle / "__dlentrypoint__.py").write_text(SLOW_IMPORT)
    run_job(pool, bundle)
    warm: list[float] = []
    cold: list[float] = []
    for _ in range(5):
        for executors, durations in ((pool, warm), (None, cold)):
            started = time.monotonic()
            outcome, log = run_job(executors, bundle)
            durations.append(time.monotonic() - started)
            assert value(outcome) == "done", log
    assert statistics.median(warm) < statistics.median(cold) / 2, {"warm": warm, "cold": cold}
