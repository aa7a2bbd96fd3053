"""Choose, once per worker process, how job limits are enforced on this host, and say how.

`auto` confines each job in cgroups when the host offers any usable hierarchy (see
`cgroups.py`) and falls back, limit by limit, to portable means for what they lack;
`cgroup` insists on cgroups; `portable` never touches them (unprivileged containers, or
hosts where the operator prefers it).
"""

from __future__ import annotations

import contextlib
import enum
import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .cgroups import CgroupSupport, JobCgroup, probe_cgroups
from .confinement import CgroupConfinement, Confinement, TreeConfinement

if TYPE_CHECKING:
    from .job_limits import JobLimits


class EnforcementMode(str, enum.Enum):
    AUTO = "auto"
    CGROUP = "cgroup"
    PORTABLE = "portable"


class EnforcementUnavailable(RuntimeError):
    """Cgroup enforcement was required and this host offers no usable cgroup hierarchy."""


class Enforcement:
    """The mechanisms this worker uses: per-job cgroups where `support` is set, else portable."""

    def __init__(self, support: CgroupSupport | None) -> None:
        self.support = support

    @contextlib.contextmanager
    def confine(self, limits: JobLimits) -> Iterator[Confinement]:
        """A confinement for one job; on exit nothing of the job is left running or mounted."""
        if self.support is None:
            confinement: Confinement = TreeConfinement(limits)
            try:
                yield confinement
            finally:
                confinement.end(grace=0)
            return
        cgroup = JobCgroup(self.support)
        try:
            cgroup.limit(limits.memory_mb, limits.cpus, limits.max_processes)
            yield CgroupConfinement(cgroup, limits)
        finally:
            cgroup.remove()  # kills whatever is still in it first

    @contextlib.contextmanager
    def confine_in_turn(self, limits: JobLimits) -> Iterator[JobsInTurn]:
        """Confinements for jobs that run one after another under the same limits (a
        warm executor's): one set of cgroups made for all of them, emptied after each,
        removed on exit. Making and removing cgroups costs a no-op job more than its run.
        """
        if self.support is None:
            yield JobsInTurn(self, limits, None)
            return
        cgroup = JobCgroup(self.support)
        try:
            cgroup.limit(limits.memory_mb, limits.cpus, limits.max_processes)
            yield JobsInTurn(self, limits, cgroup)
        finally:
            cgroup.remove()  # kills whatever is still in it first

    def describe(self) -> dict[str, str]:
        """Which mechanism enforces each limit, for the worker's start-up log."""
        if self.support is None:
            return TreeConfinement.describe()
        return CgroupConfinement.describe(self.support)


@functools.cache
def select_enforcement(mode: str = EnforcementMode.AUTO) -> Enforcement:
    """Probe this host once per process and return the enforcement `mode` asks for.

    Raises:
        ValueError: `mode` is not one of `EnforcementMode`.
        EnforcementUnavailable: `cgroup` was asked for and none is usable.
    """
    mode = EnforcementMode(mode)
    if mode is EnforcementMode.PORTABLE:
        return Enforcement(None)
    support = probe_cgroups()
    if support is None and mode is EnforcementMode.CGROUP:
        raise EnforcementUnavailable(
            "no cgroup hierarchy is usable here: the worker needs write access to a "
            "delegated cgroup (v2 with memory, cpu and pids enabled, or v1 controllers)"
        )
    return Enforcement(support)


def describe_enforcement(mode: str = "auto") -> dict[str, str]:
    """Which mechanism enforces each limit on this host, for the worker's start-up log.

    Args:
        mode: `auto`, `cgroup` or `portable` (see `EnforcementMode`).

    Raises:
        EnforcementUnavailable: `cgroup` was asked for and this host has none usable.
    """
    return select_enforcement(mode).describe()


class JobsInTurn:
    """The confinement of each job of a series, in the series' cgroups when there are any."""

    def __init__(self, enforcement: Enforcement, limits: JobLimits, cgroup: JobCgroup | None):
        self.enforcement = enforcement
        self.limits = limits
        self.cgroup = cgroup
        self.spoiled = False

    @contextlib.contextmanager
    def confine(self) -> Iterator[Confinement]:
        """One job's confinement; on exit nothing of the job is left running."""
        if self.cgroup is None:
            with self.enforcement.confine(self.limits) as confinement:
                yield confinement
            return
        confinement = CgroupConfinement(self.cgroup, self.limits, reused=True)
        try:
            yield confinement
        finally:
            # The next job must find the cgroups empty: cgroups that could not be emptied
            # take no further job.
            confinement.end(grace=0)
            if self.cgroup.members():
                self.spoiled = True
