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
    # Which of the worker's job slots runs it (its pool process's index): jobs of other
    # slots are pinned to other CPUs where there are enough (`cpu_set`).
    slot: int = 0

    @property
    def whole_cpus(self) -> int:
        return max(1, math.ceil(self.cpus))

    def thread_environment(self) -> dict[str, str]:
        return {name: str(self.whole_cpus) for name in THREAD_VARIABLES}

    def cpu_set(self) -> set[int]:
        """The CPUs to pin the job to: `ceil(cpus)` of those this worker may use, the
        slot's own share of them, so that the jobs of a node's slots run side by side
        rather than all on its first CPUs."""
        available = sorted(os.sched_getaffinity(0))
        start = (self.slot * self.whole_cpus) % len(available)
        rotated = available[start:] + available[:start]
        return set(rotated[: self.whole_cpus])
