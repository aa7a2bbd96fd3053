"""Job cgroups: made where the host allows, entered before exec, and never left behind."""

from __future__ import annotations

import dataclasses
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from tests.capabilities import missing_capability
from tests.worker.execution.conftest import cgroup_support
from worker.execution import cgroups
from worker.execution.cgroups import PARENT_NAME, CgroupSupport, JobCgroup, remove_stale


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


FORKING = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
while True:
    try:
        if os.fork() == 0:
            os.setsid()
    except OSError:
        time.sleep(0.01)
"""


def _without_cgroup_kill(support: CgroupSupport, freezer: str) -> CgroupSupport:
    """The host's support as a kernel without `cgroup.kill` would have it."""
    if freezer == "v1 freezer":
        kept = tuple(h for h in support.hierarchies if h.version == 1)
        if not any("freezer" in h.controllers for h in kept):
            missing_capability("a cgroup v1 freezer hierarchy")
    else:
        kept = tuple(
            dataclasses.replace(h, kill=False) if h.version == 2 else h
            for h in support.hierarchies
            if h.version == 2 or "freezer" not in h.controllers
        )
        if not any(h.freeze for h in kept):
            missing_capability("a cgroup v2 hierarchy with cgroup.freeze")
    return CgroupSupport(kept)


@pytest.mark.parametrize("freezer", ["v1 freezer", "v2 cgroup.freeze"])
def test_without_cgroup_kill_a_frozen_forking_tree_is_killed(freezer: str) -> None:
    support = _without_cgroup_kill(cgroup_support("pids"), freezer)
    cgroup = JobCgroup(support)
    try:
        cgroup.limit(memory_mb=512, cpus=1, max_processes=32)
        forking = subprocess.Popen([sys.executable, "-c", FORKING], preexec_fn=cgroup.enter)
        time.sleep(0.5)
        assert len(cgroup.members()) > 1
        assert cgroup.kill(timeout=5)
        assert cgroup.members() == []
        assert forking.wait(timeout=5) == -signal.SIGKILL
    finally:
        cgroup.remove()
