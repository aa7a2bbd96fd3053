"""How one running job is held to its limits: in its cgroups, or by watching its process tree.

A `Confinement` is polled by `job_monitor.py`: it prepares the child before exec, says
when the job has run out of memory, and ends every process of the job.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import time
from typing import TYPE_CHECKING, Protocol

import psutil

from .cgroups import MIB, CgroupSupport, JobCgroup

if TYPE_CHECKING:
    from .job_limits import JobLimits

# Generous, because address space is not memory: each thread reserves a stack and each
# malloc arena 64 MB, so 64 threads need gigabytes of it. Only a single allocation far
# past the limit fails early, as a readable MemoryError; the watch does the rest.
ADDRESS_SPACE_FACTOR = 2
ADDRESS_SPACE_HEADROOM_MB = 4096
AFFINITY = "CPU affinity to ceil(cpus) CPUs, and thread-count variables"
NO_QUOTA = f"{AFFINITY} (no quota: fractions of a CPU are not enforced)"
NO_PROCESS_LIMIT = "not limited (RLIMIT_NPROC is per user and ignored for root)"


def _memory_watch(whose: str) -> str:
    return (
        f"resident-memory watch of {whose} (psutil), killed past the limit; RLIMIT_AS at "
        f"{ADDRESS_SPACE_FACTOR}x the limit + {ADDRESS_SPACE_HEADROOM_MB} MB per process"
    )


class WatchedProcess(Protocol):
    """What a confinement needs of a process: an executor's as well as a job's."""

    pid: int
    adopted: bool

    def poll(self) -> int | None: ...


class Confinement(Protocol):
    def child_setup(self) -> None:
        """Run in the job's process between fork and exec."""

    def attach(self, process: WatchedProcess) -> None:
        """Start watching the job's process once it exists (and confine it, if adopted)."""

    def out_of_memory(self) -> bool:
        """Whether the job has exceeded its memory limit (polled)."""

    def end(self, grace: float) -> None:
        """SIGTERM every process of the job, wait up to `grace` seconds, SIGKILL the rest."""

    def peak_memory_mb(self) -> float:
        """The most memory the job was seen to use."""


def address_space_ceiling(memory_mb: int) -> int:
    ceiling = (memory_mb * ADDRESS_SPACE_FACTOR + ADDRESS_SPACE_HEADROOM_MB) * MIB
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    return ceiling if hard == resource.RLIM_INFINITY else min(ceiling, hard)


def limit_address_space(memory_mb: int) -> None:
    ceiling = address_space_ceiling(memory_mb)
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))


def _rss_mb(processes: list[psutil.Process]) -> float:
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss
    return total / MIB


def _wait_gone(processes: list[psutil.Process], timeout: float) -> bool:
    """Wait for `processes` to end; a zombie has ended, whoever is yet to reap it."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in processes if _running(p)]
        if not alive or time.monotonic() >= deadline:
            return not alive
        time.sleep(0.02)


def _running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class TreeConfinement:
    """Portable: a psutil watch of the job's session and process tree.

    A process that leaves the tree (double fork) between two polls is not seen; without
    a cgroup there is no other record of it short of a process-wide subreaper.
    """

    def __init__(self, limits: JobLimits) -> None:
        self.limits = limits
        self.process: WatchedProcess | None = None
        self.known: dict[int, psutil.Process] = {}
        self.peak = 0.0

    @staticmethod
    def describe() -> dict[str, str]:
        return {
            "memory": _memory_watch("the job's process tree"),
            "cpus": NO_QUOTA,
            "processes": NO_PROCESS_LIMIT,
            "timeout": "SIGTERM, grace period, SIGKILL of the job's session and the processes "
            "seen in its tree (a process that double-forks between polls can escape)",
        }

    def child_setup(self) -> None:
        limit_address_space(self.limits.memory_mb)

    def attach(self, process: WatchedProcess) -> None:
        self.process = process
        if process.adopted:
            with contextlib.suppress(psutil.Error, ValueError):
                ceiling = address_space_ceiling(self.limits.memory_mb)
                psutil.Process(process.pid).rlimit(resource.RLIMIT_AS, (ceiling, ceiling))

    def _tree(self) -> list[psutil.Process]:
        assert self.process is not None
        try:
            root = psutil.Process(self.process.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            tree = []
        self.known.update((p.pid, p) for p in tree)
        return tree

    def out_of_memory(self) -> bool:
        rss = _rss_mb(self._tree())
        self.peak = max(self.peak, rss)
        return rss > self.limits.memory_mb

    def end(self, grace: float) -> None:
        if self.process is None:
            return
        self._tree()
        members = [p for p in self.known.values() if p.is_running()]
        if not members and self.process.poll() is not None:
            return
        self._signal_all(members, signal.SIGTERM)
        if _wait_gone(members, grace) and self.process.poll() is not None:
            return
        self._signal_all(members, signal.SIGKILL)
        _wait_gone(members, timeout=2)

    def _signal_all(self, members: list[psutil.Process], signum: int) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)
        for process in members:
            with contextlib.suppress(psutil.Error):
                process.send_signal(signum)

    def peak_memory_mb(self) -> float:
        return self.peak


class CgroupConfinement:
    """The job's own cgroups: every process it starts is counted, limited and killed there."""

    def __init__(self, cgroup: JobCgroup, limits: JobLimits, reused: bool = False) -> None:
        """`reused`: the cgroups held earlier jobs (an executor's, one job after another),
        so the kernel's counts so far are theirs: out of memory is a kill after this
        point, and the peak is counted again from here where the kernel allows, else
        sampled while this job runs."""
        self.cgroup = cgroup
        self.limits = limits
        self.memory_limited = cgroup.support.controller("memory") is not None
        self.peak = 0.0
        self.oom_kills_before = cgroup.oom_kills() if reused and self.memory_limited else 0
        self.kernel_peak = not reused or cgroup.reset_peak()

    @staticmethod
    def describe(support: CgroupSupport) -> dict[str, str]:
        memory, cpu, pids = (support.controller(n) for n in ("memory", "cpu", "pids"))
        tracker = support.tracker
        described = {"processes of a job": f"the job's {tracker.label} cgroup.procs"}
        if memory is None:
            described["memory"] = _memory_watch("the processes in the job's cgroup")
        elif memory.version == 2:
            described["memory"] = (
                "cgroup v2 memory.max and memory.swap.max=0 per job; out of memory read from "
                "memory.events oom_kill"
            )
        else:
            described["memory"] = (
                "cgroup v1 memory.limit_in_bytes (and memsw) per job; out of memory read from "
                "memory.oom_control oom_kill"
            )
        if cpu is None:
            described["cpus"] = NO_QUOTA
        else:
            quota = "cpu.max" if cpu.version == 2 else "cpu.cfs_quota_us"
            described["cpus"] = f"{cpu.label} cfs quota ({quota} = cpus x period), {AFFINITY}"
        described["processes"] = f"{pids.label} pids.max per job" if pids else NO_PROCESS_LIMIT
        if tracker.kill:
            kill = f"cgroup.kill of the job's {tracker.label} group"
        elif support.controller("freezer") or tracker.freeze:
            kill = "freeze of the job's cgroup, SIGKILL of every process in it, thaw"
        else:
            kill = "SIGKILL of every process in the job's cgroup, repeated until it is empty"
        described["timeout"] = f"SIGTERM to every process in the job's cgroup, grace, then {kill}"
        return described

    def child_setup(self) -> None:
        self.cgroup.enter()
        if not self.memory_limited:
            limit_address_space(self.limits.memory_mb)

    def attach(self, process: WatchedProcess) -> None:
        # A process forked by a warm executor is held at its gate until it is in here.
        if process.adopted:
            self.cgroup.add(process.pid)

    def out_of_memory(self) -> bool:
        if not self.memory_limited:
            members = []
            for pid in self.cgroup.members():
                with contextlib.suppress(psutil.Error):
                    members.append(psutil.Process(pid))
            rss = _rss_mb(members)
            self.peak = max(self.peak, rss)
            return rss > self.limits.memory_mb
        self.peak = max(self.peak, self.cgroup.memory_mb() or 0.0)
        return self.cgroup.oom_kills() > self.oom_kills_before

    def end(self, grace: float) -> None:
        if not self.cgroup.members():
            return
        if grace > 0:
            self.cgroup.signal(signal.SIGTERM)
            self.cgroup.wait_empty(grace)
        self.cgroup.kill()

    def peak_memory_mb(self) -> float:
        if not self.kernel_peak:
            return self.peak
        return max(self.peak, self.cgroup.peak_memory_mb() or 0.0)
