"""Start the job's process in its function's environment, watch it, and end it on a limit.

Only this parent decides the outcome. The child sees a scrubbed environment (no
database, broker or signing secrets) and runs in its own session so the whole tree can
be signalled; processes that escape the session are found through psutil's tree walk.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil

from .joblog import JobLog
from .limits import JobLimits

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
POLL_SECONDS = 0.05


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


def _tree(process: psutil.Process) -> list[psutil.Process]:
    try:
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return []


def _tree_rss_mb(processes: list[psutil.Process]) -> float:
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss
    return total / (1024 * 1024)


def kill_tree(popen: subprocess.Popen[bytes], known: list[psutil.Process], grace: float) -> None:
    """SIGTERM the session and every known descendant, then SIGKILL whatever is left."""
    members = {p.pid: p for p in [*known, *_tree(psutil.Process(popen.pid))] if p.is_running()}

    def signal_all(signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signum)
        for process in members.values():
            with contextlib.suppress(psutil.Error):
                process.send_signal(signum)

    signal_all(signal.SIGTERM)
    _, alive = psutil.wait_procs(list(members.values()), timeout=grace)
    if alive or popen.poll() is None:
        signal_all(signal.SIGKILL)
        psutil.wait_procs(list(members.values()), timeout=2)
    popen.wait()


def run_process(
    env_python: str,
    bundle_dir: Path,
    args: list[Any] | None,
    kwargs: dict[str, Any] | None,
    limits: JobLimits,
    log: JobLog,
) -> ProcessOutcome:
    """Run `main(*args, **kwargs)` of the bundle under `limits`, logging its output."""
    with tempfile.TemporaryDirectory(prefix="compute-job-") as scratch:
        call_file = Path(scratch, "call.json")
        result_file = Path(scratch, "result.bin")
        call_file.write_text(json.dumps({"args": args or [], "kwargs": kwargs or {}}))
        home = Path(scratch, "home")
        home.mkdir()
        # Each job works in its own copy, so one job's files never reach the next.
        work_dir = Path(scratch, "bundle")
        shutil.copytree(bundle_dir, work_dir, symlinks=False)
        cpu_set = limits.cpu_set()
        started = time.monotonic()
        popen = subprocess.Popen(
            [env_python, "-I", str(BOOTSTRAP), str(work_dir), str(call_file), str(result_file)],
            cwd=work_dir,
            env=job_environment(limits, env_python, str(home)),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=lambda: os.sched_setaffinity(0, cpu_set),
        )
        pumps = [
            threading.Thread(target=_pump, args=(stream, log), daemon=True)
            for stream in (popen.stdout, popen.stderr)
        ]
        for pump in pumps:
            pump.start()
        ending, peak = _watch(popen, limits, started)
        for pump in pumps:
            pump.join(timeout=5)
        runtime = time.monotonic() - started
        result = result_file.read_bytes() if result_file.exists() else None
        exit_code = popen.returncode
    if ending is Ending.EXITED and exit_code != 0:
        result = None
    return ProcessOutcome(ending, exit_code, result, runtime, peak)


def _watch(
    popen: subprocess.Popen[bytes], limits: JobLimits, started: float
) -> tuple[Ending, float]:
    root = psutil.Process(popen.pid)
    known: list[psutil.Process] = []
    peak = 0.0
    while popen.poll() is None:
        tree = _tree(root)
        known = list({p.pid: p for p in [*known, *tree]}.values())
        rss = _tree_rss_mb(tree)
        peak = max(peak, rss)
        if rss > limits.memory_mb:
            kill_tree(popen, known, grace=0)
            return Ending.OUT_OF_MEMORY, peak
        if time.monotonic() - started > limits.timeout_seconds:
            kill_tree(popen, known, limits.kill_grace_seconds)
            return Ending.TIMED_OUT, peak
        time.sleep(POLL_SECONDS)
    # The main process is gone; reap anything it left running in its tree.
    leftovers = [p for p in known if p.pid != popen.pid and p.is_running()]
    if leftovers:
        kill_tree(popen, leftovers, grace=0)
    return Ending.EXITED, peak
