"""Per-job control groups: find what this host offers, then confine, limit and end one job.

`probe_cgroups()` looks at the cgroup hierarchies mounted here, at the cgroup this worker
runs in, and keeps those where it can create a child and write its limit files:

- cgroup v2 with `memory`, `cpu` and `pids` enabled in a delegated subtree: one
  directory per job carries every limit, plus `cgroup.kill` and `cgroup.freeze`;
- cgroup v1, one hierarchy per controller (`memory`, `cpu`, `pids`, `freezer`);
- a v2 hierarchy without controllers still tracks a job's processes wherever they
  fork or `setsid` to, and kills them all at once through `cgroup.kill`.

A job's directories are `<worker cgroup>/compute/<hostname>-<pid>/job-<hex>` in each
hierarchy kept. The job process writes its own pid into them before it execs, so the
user's code never runs outside them. They are removed when the job ends; a worker that
died mid-job leaves them behind, and the next probe on this host kills and removes them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

logger = logging.getLogger(__name__)

PARENT_NAME = "compute"
JOB_CONTROLLERS = frozenset({"memory", "cpu", "pids", "freezer"})
V2_LIMIT_CONTROLLERS = frozenset({"memory", "cpu", "pids"})
MIB = 1024 * 1024
REMOVE_RETRY_SECONDS = 2.0
SETTLE_SECONDS = 0.01


@dataclass(frozen=True)
class Hierarchy:
    """One mounted cgroup hierarchy, seen from the cgroup this worker runs in."""

    base: Path  # the worker's own cgroup in this hierarchy
    version: int
    controllers: frozenset[str]  # the job controllers a child cgroup gets here
    kill: bool = False  # v2 `cgroup.kill` (Linux 5.14)
    freeze: bool = False  # v2 `cgroup.freeze` (Linux 5.2)

    @property
    def label(self) -> str:
        return f"cgroup v{self.version}"


@dataclass(frozen=True)
class CgroupSupport:
    """The hierarchies a job's cgroups are made in, and which one serves each purpose."""

    hierarchies: tuple[Hierarchy, ...]

    def controller(self, name: str) -> Hierarchy | None:
        return next((h for h in self.hierarchies if name in h.controllers), None)

    @property
    def tracker(self) -> Hierarchy:
        """The hierarchy whose `cgroup.procs` lists the job's processes: v2 if any."""
        return max(self.hierarchies, key=lambda h: h.version)


def _read(path: Path) -> str:
    return path.read_text().strip()


def _write(path: Path, value: str) -> None:
    # One write() call per value: cgroup files take a whole value per write.
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _keyed(path: Path) -> dict[str, int]:
    """Parse a `key value` per line file such as `memory.events` or `memory.oom_control`."""
    fields: dict[str, int] = {}
    for line in _read(path).splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            fields[key] = int(value)
    return fields


def _own_cgroups() -> tuple[dict[frozenset[str], str], str | None]:
    """This process's cgroup path per v1 controller set, and its v2 path."""
    v1: dict[frozenset[str], str] = {}
    v2 = None
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        hierarchy_id, controllers, path = line.split(":", 2)
        if hierarchy_id == "0" and not controllers:
            v2 = path
        else:
            v1[frozenset(controllers.split(","))] = path
    return v1, v2


def _mounted_hierarchies() -> list[Hierarchy]:
    v1_paths, v2_path = _own_cgroups()
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        before, _, after = line.partition(" - ")
        fields, (fstype, _source, options) = before.split(), after.split()[:3]
        root, mount_point = fields[3], Path(fields[4])
        if fstype == "cgroup2" and v2_path is not None:
            found.append(Hierarchy(_join(mount_point, root, v2_path), 2, frozenset()))
        elif fstype == "cgroup":
            names = frozenset(options.split(","))
            own = next((path for key, path in v1_paths.items() if key & names), None)
            if own is not None and names & JOB_CONTROLLERS:
                found.append(Hierarchy(_join(mount_point, root, own), 1, names & JOB_CONTROLLERS))
    return found


def _join(mount_point: Path, mount_root: str, cgroup_path: str) -> Path:
    # A mount of a sub-tree (a container's view) shows paths from the host's root.
    if mount_root != "/" and cgroup_path.startswith(mount_root):
        cgroup_path = cgroup_path[len(mount_root) :]
    return mount_point / cgroup_path.lstrip("/")


def _enable_v2_controllers(hierarchy: Hierarchy) -> Hierarchy:
    """Enable memory, cpu and pids for children of the worker's v2 cgroup where allowed."""
    available = set(_read(hierarchy.base / "cgroup.controllers").split())
    wanted = V2_LIMIT_CONTROLLERS & available
    control = hierarchy.base / "cgroup.subtree_control"
    for name in wanted - set(_read(control).split()):
        # Refused when the worker's own cgroup holds processes (the no-internal-process
        # rule); the operator then starts the worker in a delegated leaf instead.
        with contextlib.suppress(OSError):
            _write(control, f"+{name}")
    enabled = frozenset(_read(control).split()) & wanted
    return Hierarchy(hierarchy.base, 2, enabled)


def _usable(hierarchy: Hierarchy) -> Hierarchy | None:
    """The hierarchy, with what its job cgroups offer, if one can be made and limited."""
    try:
        if hierarchy.version == 2:
            hierarchy = _enable_v2_controllers(hierarchy)
        probe = JobCgroup(CgroupSupport((hierarchy,)))
        try:
            probe.limit(memory_mb=64, cpus=1, max_processes=8)
            directory = probe.directory(hierarchy)
            if hierarchy.version == 2:
                kill, freeze = (
                    (directory / "cgroup.kill").exists(),
                    (directory / "cgroup.freeze").exists(),
                )
                hierarchy = Hierarchy(hierarchy.base, 2, hierarchy.controllers, kill, freeze)
        finally:
            probe.remove()
    except OSError as error:
        logger.info("cgroup hierarchy %s is not usable: %s", hierarchy.base, error)
        return None
    return hierarchy


def probe_cgroups() -> CgroupSupport | None:
    """The cgroup hierarchies this worker can confine jobs in, or None if there are none."""
    try:
        candidates = _mounted_hierarchies()
    except OSError:
        return None
    usable = tuple(h for h in map(_usable, candidates) if h is not None)
    if not usable:
        return None
    support = CgroupSupport(usable)
    if not _can_enter(support):
        return None
    remove_stale(support)
    return support


def _can_enter(support: CgroupSupport) -> bool:
    """Whether a new process can place itself in every hierarchy before it execs."""
    probe = JobCgroup(support)
    try:
        subprocess.run([sys.executable, "-c", ""], preexec_fn=probe.enter, check=True)
    except (OSError, subprocess.SubprocessError) as error:
        logger.info("cannot place a job process in its cgroups: %s", error)
        return False
    finally:
        probe.remove()
    return True


def worker_parent_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class JobCgroup:
    """One job's cgroup in each hierarchy of `support`, created on construction."""

    def __init__(self, support: CgroupSupport) -> None:
        self.support = support
        self.name = f"job-{uuid.uuid4().hex}"
        self._parent = worker_parent_name()
        self._dirs: dict[Hierarchy, Path] = {}
        try:
            for hierarchy in support.hierarchies:
                self._dirs[hierarchy] = self._create(hierarchy)
        except OSError:
            self.remove()
            raise
        self._procs = [d / "cgroup.procs" for d in self._dirs.values()]

    def _create(self, hierarchy: Hierarchy) -> Path:
        directory = hierarchy.base / PARENT_NAME / self._parent / self.name
        for _ in range(3):
            try:
                directory.parent.mkdir(parents=True, exist_ok=True)
                if hierarchy.version == 2 and hierarchy.controllers:
                    enable = " ".join(f"+{name}" for name in sorted(hierarchy.controllers))
                    for level in (directory.parent.parent, directory.parent):
                        _write(level / "cgroup.subtree_control", enable)
                directory.mkdir()
                return directory
            except FileNotFoundError:
                continue  # another worker's clean-up removed an empty parent meanwhile
        raise FileNotFoundError(f"could not create {directory}")

    def directory(self, hierarchy: Hierarchy) -> Path:
        return self._dirs[hierarchy]

    def _file(self, controller: str, v1_name: str, v2_name: str) -> Path | None:
        hierarchy = self.support.controller(controller)
        if hierarchy is None:
            return None
        return self._dirs[hierarchy] / (v2_name if hierarchy.version == 2 else v1_name)

    def limit(self, memory_mb: int, cpus: float, max_processes: int) -> None:
        """Write the job's limits into every controller this host offers."""
        memory = self.support.controller("memory")
        if memory is not None:
            directory, size = self._dirs[memory], str(memory_mb * MIB)
            if memory.version == 2:
                _write(directory / "memory.max", size)
                for name, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):
                    if (directory / name).exists():
                        _write(directory / name, value)
            else:
                _write(directory / "memory.limit_in_bytes", size)
                if (directory / "memory.memsw.limit_in_bytes").exists():
                    _write(directory / "memory.memsw.limit_in_bytes", size)
        cpu = self.support.controller("cpu")
        if cpu is not None:
            directory = self._dirs[cpu]
            if cpu.version == 2:
                period = int(_read(directory / "cpu.max").split()[1])
                _write(directory / "cpu.max", f"{max(1000, round(cpus * period))} {period}")
            else:
                period = int(_read(directory / "cpu.cfs_period_us"))
                _write(directory / "cpu.cfs_quota_us", str(max(1000, round(cpus * period))))
        pids = self._file("pids", "pids.max", "pids.max")
        if pids is not None:
            _write(pids, str(max_processes))

    def enter(self) -> None:
        """Move the calling process into the job's cgroups: run in the child before exec."""
        self.add(os.getpid())

    def add(self, pid: int) -> None:
        """Move process `pid` into the job's cgroups (a warm executor's job child)."""
        for procs in self._procs:
            _write(procs, str(pid))

    def members(self) -> list[int]:
        """The pids of every process in the job's cgroup, however it was started."""
        directory = self._dirs.get(self.support.tracker)
        with contextlib.suppress(FileNotFoundError):
            if directory is not None:
                return [int(pid) for pid in _read(directory / "cgroup.procs").split()]
        return []

    def oom_kills(self) -> int:
        """How many of the job's processes the kernel killed for exceeding its memory."""
        events = self._file("memory", "memory.oom_control", "memory.events")
        return 0 if events is None else _keyed(events).get("oom_kill", 0)

    def memory_mb(self) -> float | None:
        """The job's charged memory now, or None without a memory controller."""
        usage = self._file("memory", "memory.usage_in_bytes", "memory.current")
        return None if usage is None else int(_read(usage)) / MIB

    def peak_memory_mb(self) -> float | None:
        peak = self._file("memory", "memory.max_usage_in_bytes", "memory.peak")
        return int(_read(peak)) / MIB if peak is not None and peak.exists() else None

    def reset_peak(self) -> bool:
        """Start the kernel's peak memory count over (v1 only: v2's memory.peak restarts
        only for the file handle that asks); whether it did."""
        memory = self.support.controller("memory")
        if memory is None or memory.version != 1:
            return False
        try:
            _write(self._dirs[memory] / "memory.max_usage_in_bytes", "0")
        except OSError:
            return False
        return True

    def signal(self, signum: int) -> None:
        for pid in self.members():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def kill(self, timeout: float = 5.0) -> bool:
        """SIGKILL every process of the job, forks in flight included; True once none is left."""
        deadline = time.monotonic() + timeout
        tracker = self.support.tracker
        while self.members() and time.monotonic() < deadline:
            if tracker.kill:
                _write(self._dirs[tracker] / "cgroup.kill", "1")
            else:
                with self._frozen():
                    self.signal(signal.SIGKILL)
            self.wait_empty(min(0.5, max(0.0, deadline - time.monotonic())))
        return not self.members()

    def _freeze_control(self) -> tuple[Path, str, str] | None:
        """The file that freezes the job, with its freeze and thaw values: v1 or v2."""
        freezer, tracker = self.support.controller("freezer"), self.support.tracker
        if freezer is not None:
            return self._dirs[freezer] / "freezer.state", "FROZEN", "THAWED"
        if tracker.freeze:
            return self._dirs[tracker] / "cgroup.freeze", "1", "0"
        return None

    def _is_frozen(self, control: Path) -> bool:
        if control.name == "freezer.state":
            return _read(control) == "FROZEN"
        return _keyed(control.with_name("cgroup.events")).get("frozen") == 1

    @contextlib.contextmanager
    def _frozen(self) -> Iterator[None]:
        """Freeze the job, so no process forks between our reading the list and signalling."""
        control = self._freeze_control()
        if control is None:
            yield  # nothing to freeze with: pids.max and repeated rounds must do
            return
        path, freeze, thaw = control
        _write(path, freeze)
        deadline = time.monotonic() + 1.0
        while not self._is_frozen(path) and time.monotonic() < deadline:
            time.sleep(SETTLE_SECONDS)
        try:
            yield
        finally:
            _write(path, thaw)

    def wait_empty(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for every process of the job to end."""
        deadline = time.monotonic() + timeout
        while self.members():
            if time.monotonic() >= deadline:
                return False
            time.sleep(SETTLE_SECONDS)
        return True

    def remove(self) -> None:
        """Kill what is left and remove the job's directories, and its parents once empty."""
        if self.members():
            self.kill()
        for directory in self._dirs.values():
            _remove_directory(directory)
            for parent in (directory.parent, directory.parent.parent):
                with contextlib.suppress(OSError):
                    parent.rmdir()  # fails while another job or worker still uses it
        self._dirs.clear()


def _remove_directory(directory: Path) -> None:
    deadline = time.monotonic() + REMOVE_RETRY_SECONDS
    while True:
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            # EBUSY for a moment after the last process exits, until the kernel lets go.
            if time.monotonic() >= deadline:
                logger.error("could not remove the job cgroup %s", directory)
                return
            time.sleep(SETTLE_SECONDS)


def remove_stale(support: CgroupSupport) -> None:
    """Kill and remove the job cgroups of workers on this host that are no longer running."""
    host = socket.gethostname()
    removed: set[str] = set()  # a job's cgroups, one per hierarchy, are one job
    for hierarchy in support.hierarchies:
        parents = hierarchy.base / PARENT_NAME
        for worker_dir in parents.glob(f"{host}-*") if parents.is_dir() else []:
            pid = worker_dir.name.rpartition("-")[2]
            if not pid.isdigit() or psutil.pid_exists(int(pid)):
                continue
            for job_dir in worker_dir.glob("job-*"):
                logger.debug("removing the job cgroup %s left by a stopped worker", job_dir)
                _kill_stale(job_dir)
                _remove_directory(job_dir)
                removed.add(job_dir.name)
            with contextlib.suppress(OSError):
                worker_dir.rmdir()
    if removed:
        logger.warning(
            "removed the cgroups of %d jobs left by stopped workers (their processes killed)",
            len(removed),
        )


def _kill_stale(job_dir: Path) -> None:
    kill_file = job_dir / "cgroup.kill"
    for _ in range(50):
        procs = _read(job_dir / "cgroup.procs").split()
        if not procs:
            return
        if kill_file.exists():
            _write(kill_file, "1")
        else:
            for pid in procs:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
        time.sleep(SETTLE_SECONDS * 5)
