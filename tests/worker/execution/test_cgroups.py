"""Job cgroups: made where the host allows, entered before exec, and never left behind."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import psutil
import pytest

from tests.worker.execution.conftest import cgroup_support
from worker.execution import cgroups
from worker.execution.cgroups import PARENT_NAME, JobCgroup, remove_stale


def test_probe_finds_a_hierarchy_that_tracks_processes() -> None:
    support = cgroup_support()
    assert support.tracker in support.hierarchies
    assert all(h.base.is_dir() for h in support.hierarchies)


def test_a_process_enters_every_hierarchy_before_it_runs() -> None:
    support = cgroup_support()
    cgroup = JobCgroup(support)
    try:
        shown = subprocess.run(
            [sys.executable, "-c", "print(open('/proc/self/cgroup').read())"],
            preexec_fn=cgroup.enter,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        cgroup.remove()
    assert shown.count(cgroup.name) == len(support.hierarchies)


def test_remove_kills_what_is_left_and_removes_every_directory() -> None:
    support = cgroup_support()
    cgroup = JobCgroup(support)
    sleeper = subprocess.Popen(["sleep", "60"], preexec_fn=cgroup.enter, start_new_session=True)
    directories = [cgroup.directory(h) for h in support.hierarchies]
    assert cgroup.members() == [sleeper.pid]
    cgroup.remove()
    assert sleeper.wait(timeout=5) == -signal.SIGKILL
    assert not [d for d in directories if d.exists()]


def test_stale_cgroups_of_a_stopped_worker_are_killed_and_removed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    support = cgroup_support()
    stopped = subprocess.Popen(["true"])
    stopped.wait()
    assert not psutil.pid_exists(stopped.pid)
    stale_name = f"{socket.gethostname()}-{stopped.pid}"
    monkeypatch.setattr(cgroups, "worker_parent_name", lambda: stale_name)
    cgroup = JobCgroup(support)
    orphan = subprocess.Popen(["sleep", "60"], preexec_fn=cgroup.enter, start_new_session=True)
    worker_dirs = [h.base / PARENT_NAME / stale_name for h in support.hierarchies]
    assert all(d.is_dir() for d in worker_dirs)
    remove_stale(support)
    assert orphan.wait(timeout=5) == -signal.SIGKILL
    assert not [d for d in worker_dirs if d.exists()]
