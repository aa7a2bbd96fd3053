"""Start the job's process in its function's environment, watch it, and end it on a limit.

Only this parent decides the outcome. The child sees a scrubbed environment (no
database, broker or signing secrets) and runs in its own session, confined as the
worker's enforcement decides (`enforcement.py`): in cgroups of its own where the host
offers them, else under a watch of its process tree.
"""

from __future__ import annotations

import enum
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .confinement import Confinement
from .enforcement import EnforcementMode, select_enforcement
from .joblog import JobLog
from .limits import JobLimits

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
POLL_SECONDS = 0.05
PUMP_JOIN_SECONDS = 5.0


class Ending(enum.Enum):
    EXITED = "exited"
    TIMED_OUT = "timed_out"
    OUT_OF_MEMORY = "out_of_memory"


@dataclass
class ProcessOutcome:
    ending: Ending
    exit_code: int | None
    result: bytes | None  # tag byte + encoded value, when the call returned
    runtime: float
    peak_rss_mb: float


def job_environment(limits: JobLimits, env_python: str, home: str) -> dict[str, str]:
    """Everything the job process may see of its environment, and nothing else."""
    env_bin = str(Path(env_python).parent)
    return {
        "PATH": f"{env_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        **limits.thread_environment(),
    }


def _pump(stream: IO[bytes], log: JobLog) -> None:
    for raw in iter(stream.readline, b""):
        log.add(raw.decode("utf-8", errors="replace"))
    stream.close()


def run_process(
    env_python: str,
    bundle_dir: Path,
    args: list[Any] | None,
    kwargs: dict[str, Any] | None,
    limits: JobLimits,
    log: JobLog,
    enforcement: str = EnforcementMode.AUTO,
) -> ProcessOutcome:
    """Run `main(*args, **kwargs)` of the bundle under `limits`, logging its output.

    Args:
        enforcement: an `EnforcementMode` value; the host is probed once per process.

    Raises:
        EnforcementUnavailable: `cgroup` enforcement was asked for and the host has none.
    """
    with (
        tempfile.TemporaryDirectory(prefix="compute-job-") as scratch,
        select_enforcement(enforcement).confine(limits) as confinement,
    ):
        call_file = Path(scratch, "call.json")
        result_file = Path(scratch, "result.bin")
        call_file.write_text(json.dumps({"args": args or [], "kwargs": kwargs or {}}))
        home = Path(scratch, "home")
        home.mkdir()
        # Each job works in its own copy, so one job's files never reach the next.
        work_dir = Path(scratch, "bundle")
        shutil.copytree(bundle_dir, work_dir, symlinks=False)
        cpu_set = limits.cpu_set()

        def child_setup() -> None:
            os.sched_setaffinity(0, cpu_set)
            confinement.child_setup()

        started = time.monotonic()
        popen = subprocess.Popen(
            [env_python, "-I", str(BOOTSTRAP), str(work_dir), str(call_file), str(result_file)],
            cwd=work_dir,
            env=job_environment(limits, env_python, str(home)),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=child_setup,
        )
        confinement.attach(popen)
        pumps = [
            threading.Thread(target=_pump, args=(stream, log), daemon=True)
            for stream in (popen.stdout, popen.stderr)
        ]
        for pump in pumps:
            pump.start()
        ending = _watch(popen, confinement, limits, started)
        peak = confinement.peak_memory_mb()
        # Output still held open by an escaped process must not hold up the outcome.
        pumps_deadline = time.monotonic() + PUMP_JOIN_SECONDS
        for pump in pumps:
            pump.join(timeout=max(0.0, pumps_deadline - time.monotonic()))
        runtime = time.monotonic() - started
        result = result_file.read_bytes() if result_file.exists() else None
        exit_code = popen.returncode
    if ending is Ending.EXITED and exit_code != 0:
        result = None
    return ProcessOutcome(ending, exit_code, result, runtime, peak)


def _watch(
    popen: subprocess.Popen[bytes], confinement: Confinement, limits: JobLimits, started: float
) -> Ending:
    while popen.poll() is None:
        if confinement.out_of_memory():
            confinement.end(grace=0)
            popen.wait()
            return Ending.OUT_OF_MEMORY
        if time.monotonic() - started > limits.timeout_seconds:
            confinement.end(limits.kill_grace_seconds)
            popen.wait()
            return Ending.TIMED_OUT
        time.sleep(POLL_SECONDS)
    # The main process is gone: a child of it may have been killed for memory, and
    # anything it left running (a daemon, a stray child) ends with it.
    out_of_memory = confinement.out_of_memory()
    confinement.end(grace=0)
    return Ending.OUT_OF_MEMORY if out_of_memory else Ending.EXITED
