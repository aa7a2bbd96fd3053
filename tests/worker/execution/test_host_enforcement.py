"""The enforcement mode: chosen once, reported per limit, and its clean-up always runs."""

from __future__ import annotations

import subprocess

import pytest

from tests.worker.execution.conftest import cgroup_support
from worker.execution import host_enforcement
from worker.execution.host_enforcement import (
    EnforcementMode,
    EnforcementUnavailable,
    describe_enforcement,
    select_enforcement,
)
from worker.execution.job_limits import JobLimits
from worker.execution.process_handle import ColdProcess

LIMITS = JobLimits(cpus=1, memory_mb=256, timeout_seconds=10)
LIMITED = {"memory", "cpus", "processes", "timeout"}


def test_every_limit_is_described_in_every_mode() -> None:
    for mode in EnforcementMode:
        if mode is EnforcementMode.CGROUP:
            cgroup_support()
        assert set(describe_enforcement(mode)) >= LIMITED


def test_cgroup_mode_describes_the_cgroup_mechanisms() -> None:
    support = cgroup_support("memory", "cpu", "pids")
    described = describe_enforcement("cgroup")
    label = support.controller("memory").label
    assert described["memory"].startswith(label)
    assert "quota" in described["cpus"]
    assert "pids.max" in described["processes"]


def test_portable_mode_never_uses_cgroups() -> None:
    assert select_enforcement("portable").support is None
    assert "psutil" in describe_enforcement("portable")["memory"]


def test_cgroup_mode_without_cgroups_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host_enforcement, "probe_cgroups", lambda: None)
    with pytest.raises(EnforcementUnavailable):
        select_enforcement.__wrapped__("cgroup")
    assert select_enforcement.__wrapped__("auto").support is None


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError):
        select_enforcement("containers")


@pytest.mark.parametrize("mode", ["cgroup", "portable"])
def test_the_job_is_ended_when_its_handling_raises(mode: str) -> None:
    if mode == "cgroup":
        cgroup_support()
    chosen = select_enforcement(mode)
    with pytest.raises(RuntimeError), chosen.confine(LIMITS) as confinement:
        sleeper = subprocess.Popen(
            ["sleep", "60"], preexec_fn=confinement.child_setup, start_new_session=True
        )
        confinement.attach(ColdProcess(sleeper))
        raise RuntimeError("the worker failed while the job ran")
    assert sleeper.wait(timeout=5) < 0  # ended by a signal
