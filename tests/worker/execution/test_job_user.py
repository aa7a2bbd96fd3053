"""The job user: who a root worker's jobs become, how, and what the worker checks for it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.capabilities import ROOT, requires
from tests.worker.execution.conftest import job_python
from worker.build import InterpreterRegistry
from worker.execution.job_user import (
    DEFAULT_FIRST_UID,
    JobIdentities,
    describe_job_identities,
    resolve_job_identities,
)

pytestmark = requires(ROOT, "root (only root switches users)")

IDENTITY = (
    "import json, os\n"
    "status = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
    "print(json.dumps([os.getuid(), os.getgid(), os.getgroups(), status['NoNewPrivs'].strip()]))"
)


def test_the_default_range_holds_no_user_of_the_machine_and_a_taken_one_is_refused() -> None:
    identities = resolve_job_identities()
    assert (identities.first_uid, identities.switches) == (DEFAULT_FIRST_UID, True)
    with pytest.raises(ValueError, match="holds users of this machine"):
        resolve_job_identities.__wrapped__(1, 10)  # daemon, bin, sys ...
    with pytest.raises(ValueError, match="must be positive"):
        resolve_job_identities.__wrapped__(DEFAULT_FIRST_UID, 0)


def test_leases_never_share_a_uid_and_end_what_ran_as_it(tmp_path: Path) -> None:
    identities = JobIdentities(310_000, 2, switches=True, lock_dir=tmp_path / "locks")
    with identities.lease() as first, identities.lease() as second:
        assert first.uid != second.uid
        assert {first.uid, second.uid} == {310_000, 310_001}
        assert (first.gid, second.gid) == (first.uid, second.uid)
        with pytest.raises(RuntimeError, match="all 2 job uids"), identities.lease():
            pass
        # Something left running as the first uid (a daemon that escaped its job)...
        stray = subprocess.Popen(["sleep", "600"], preexec_fn=first.become, start_new_session=True)
    # ...is gone once the uid is given back, so its next holder never meets it.
    assert stray.wait(timeout=10) == -9
    with identities.lease() as again:
        assert again.uid in (310_000, 310_001)


def test_a_process_that_becomes_the_job_user_keeps_no_group_and_gains_nothing() -> None:
    user = resolve_job_identities().representative()
    shown = subprocess.run(
        [job_python(), "-I", "-c", IDENTITY],
        preexec_fn=user.become,
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(shown) == [user.uid, user.gid, [], "1"]


def test_the_start_up_line_warns_when_the_work_directory_is_out_of_reach(
    tmp_path: Path,
) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    identities = resolve_job_identities()
    described = describe_job_identities(identities, tmp_path / "work", tmp_path / "jobs")
    assert described == (
        f"uids {DEFAULT_FIRST_UID}-{DEFAULT_FIRST_UID + 999}, one per running job or warm "
        "executor (no two share one)"
    )
    warned = describe_job_identities(identities, closed / "work", tmp_path / "jobs")
    assert f"WARNING: jobs cannot pass through to the work directory {closed / 'work'}" in warned
    assert "every job fails" in describe_job_identities("a bad range", tmp_path)


def test_builds_offer_no_interpreter_the_job_user_cannot_run(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    # A copy of an interpreter in a directory only root may enter (its standard library
    # stays where it was): root can run it, the job user cannot.
    shutil.copy2(os.path.realpath(job_python()), closed / "python3")
    user = resolve_job_identities().representative()

    def offered(runs_as: tuple[int, int] | None) -> set[Path]:
        registry = InterpreterRegistry(
            [closed / "python3"], search_path=False, pyenv_root=tmp_path, runs_as=runs_as
        )
        return {interpreter.path for interpreter in registry.interpreters().values()}

    assert closed / "python3" in offered(None)
    assert closed / "python3" not in offered((user.uid, user.gid))
