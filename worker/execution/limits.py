"""The resources a job may use, and how this host enforces them.

Enforcement here is portable: CPU affinity for `cpus`, thread-count variables for the
numeric libraries, and a watcher of the process tree's resident memory for `memory`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


@dataclass(frozen=True)
class JobLimits:
    cpus: float
    memory_mb: int
    timeout_seconds: float
    kill_grace_seconds: float = 5.0

    @property
    def whole_cpus(self) -> int:
        return max(1, math.ceil(self.cpus))

    def thread_environment(self) -> dict[str, str]:
        return {name: str(self.whole_cpus) for name in THREAD_VARIABLES}

    def cpu_set(self) -> set[int]:
        """The CPUs to pin the job to: the first `ceil(cpus)` this worker may use."""
        available = sorted(os.sched_getaffinity(0))
        return set(available[: self.whole_cpus])


def describe_enforcement() -> dict[str, str]:
    """Which mechanism enforces each limit on this host, for the worker's start-up log."""
    return {
        "timeout": "SIGTERM, grace period, SIGKILL of the job's session and process tree",
        "memory": "resident-memory watch of the job's process tree (psutil), killed past the limit",
        "cpus": "CPU affinity of the job process, and thread-count variables",
    }
