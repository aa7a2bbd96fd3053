"""Figure 8: idle memory. The worker `compute up` runs, its main process and its pool
processes, against the raw Celery worker with as many processes; and each warm executor
of the no-op function against a bare interpreter of the same environment's Python.

It runs after the figures that send jobs to the run's service, so both workers have
served jobs, and each pool process keeps the no-op function's executor warm (the run's
warm-up saw to that in any case). The no-op function imports nothing, so an executor may
hold no more than the bare interpreter and the allowance.
"""

from __future__ import annotations

import subprocess
import time

import psutil

from compute.cli.prctl import terminate_with_parent

from .context import Bench
from .raw_worker import RawCelery, worker_command
from .report import Row
from .service import Service

TARGET_RATIO = 1.25
EXECUTOR_ALLOWANCE_MB = 5.0
# The script every warm executor runs (worker/execution/runtime.py's `EXECUTOR_MAIN`,
# restated: the SDK side imports no part of the service).
EXECUTOR_MARKER = "executor_main"
MB = 1024 * 1024  # as the service counts its memory limits
# Idle is once the last figure's last job has been cleaned up after.
SETTLE_SECONDS = 1.0
# Waits at stdin, as an idle executor does; it says when it has started.
BARE_SCRIPT = "import sys; print('ready', flush=True); sys.stdin.read()"


def measure(bench: Bench) -> list[Row]:
    time.sleep(SETTLE_SECONDS)
    host, executors = service_processes(bench.service)
    if not executors:
        raise RuntimeError("the run's worker keeps no warm executor")
    return [host_row(host, raw_processes(bench.raw)), executor_row(executors)]


def host_row(host: list[psutil.Process], raw: list[psutil.Process]) -> Row:
    """The service's worker against the raw one, each summed over its processes."""
    service = [memory_mb(process) for process in host]
    baseline = [memory_mb(process) for process in raw]
    row = Row(
        figure=8,
        label=f"idle worker host: main and {len(host) - 1} pool processes, PSS",
        unit="MB",
        service=sum(pss for pss, _ in service),
        baseline=sum(pss for pss, _ in baseline),
        target=f"<= {TARGET_RATIO:g}x",
        details={
            "metric": "PSS, summed over the main and pool processes",
            "service_pss_mb": [pss for pss, _ in service],
            "baseline_pss_mb": [pss for pss, _ in baseline],
            "service_uss_mb": [uss for _, uss in service],
            "baseline_uss_mb": [uss for _, uss in baseline],
        },
    )
    row.met = row.ratio is not None and row.ratio <= TARGET_RATIO
    return row


def executor_row(executors: list[psutil.Process]) -> Row:
    """The largest executor against a bare interpreter of the executors' Python."""
    python = executors[0].cmdline()[0]
    each = [uss for _, uss in map(memory_mb, executors)]
    bare = bare_interpreter_mb(python)
    return Row(
        figure=8,
        label=f"each of {len(executors)} warm executors of the no-op function, USS",
        unit="MB",
        service=max(each),
        baseline=bare,
        target=f"<= bare + {EXECUTOR_ALLOWANCE_MB:g} MB",
        met=max(each) <= bare + EXECUTOR_ALLOWANCE_MB,
        details={
            "metric": "USS of the largest executor",
            "executors_uss_mb": each,
            "python": python,
        },
    )


# Why PSS for the workers and USS for the executors: RSS counts a page shared after a
# fork in every process that maps it, so a prefork worker of N processes would count its
# main process's imports N + 1 times. PSS splits each shared page among the processes
# mapping it, so summed over one worker it counts the worker's own pages once each: what
# the whole worker costs. An executor is a fresh interpreter, not a fork of the worker:
# it shares little but the interpreter's binary and libraries, which every Python on the
# machine maps too, so its USS (the pages that would be freed were it to exit) is what
# one more executor costs, and the bare interpreter's USS is the same measure for it.
def memory_mb(process: psutil.Process) -> tuple[float, float]:
    """The process's PSS and USS."""
    memory = process.memory_full_info()
    return memory.pss / MB, memory.uss / MB


def service_processes(service: Service) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """The worker's main and pool processes; and its warm executors, the pool's children
    that run `executor_main`."""
    main, *_ = service.worker_tree()
    pool = main.children()
    executors = [child for process in pool for child in process.children() if is_executor(child)]
    return [main, *pool], executors


def is_executor(process: psutil.Process) -> bool:
    return EXECUTOR_MARKER in " ".join(process.cmdline())


def raw_processes(raw: RawCelery) -> list[psutil.Process]:
    """The raw Celery worker's main and pool processes: the bench's child that runs its
    command."""
    command = worker_command(raw.processes)
    for child in psutil.Process().children():
        if child.cmdline() == command:
            return [child, *child.children()]
    raise RuntimeError("the raw Celery worker is not running")


def bare_interpreter_mb(python: str) -> float:
    """The USS of `python` started isolated, waiting at stdin, having imported nothing."""
    # preexec_fn is safe: the bench starts its children from its only thread.
    with subprocess.Popen(
        [python, "-I", "-c", BARE_SCRIPT],
        env={},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        preexec_fn=terminate_with_parent,
    ) as process:
        try:
            assert process.stdout is not None
            if process.stdout.readline() != b"ready\n":
                raise RuntimeError(f"{python} -I did not start")
            _, uss = memory_mb(psutil.Process(process.pid))
            return uss
        finally:
            process.kill()
            process.communicate()
