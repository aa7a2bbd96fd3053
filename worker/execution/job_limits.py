"""The resources a job may use.

Thread-count variables for the numeric libraries and CPU affinity apply everywhere; the
rest depends on what the worker found at start (`host_enforcement.py`).
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
    max_processes: int = 512  # processes and threads of the job, where cgroups count them
    # What the job may write to its scratch space: home, bundle copy, /tmp.
    disk_mb: int = 10240

    @property
    def whole_cpus(self) -> int:
        return max(1, math.ceil(self.cpus))

    def thread_environment(self) -> dict[str, str]:
        return {name: str(self.whole_cpus) for name in THREAD_VARIABLES}

    def cpu_set(self) -> set[int]:
        """The CPUs to pin the job to: the first `ceil(cpus)` this worker may use."""
        available = sorted(os.sched_getaffinity(0))
        return set(available[: self.whole_cpus])
