"""The job user: who a root worker's jobs become, how, and what the worker checks for it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.worker.execution.conftest import job_python
from worker.build import InterpreterRegistry
from worker.execution.job_user import (
    NOBODY_ID,
    describe_job_user,
    resolve_job_user,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only root switches users")

IDENTITY = (
    "import json, os\n"
    "status = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
    "print(json.dumps([os.getuid(), os.getgid(), os.getgroups(), status['NoNewPrivs'].strip()]))"
)


def test_nobody_is_the_default_and_root_is_refused() -> None:
    user = resolve_job_user()
    assert (user.name, user.switches) == ("nobody", True)
    assert (user.uid, user.gid) == (NOBODY_ID, NOBODY_ID)
    for root in ("root", "0", 0):
        with pytest.raises(ValueError, match="not root"):
            resolve_job_user.__wrapped__(root)
    with pytest.raises(ValueError, match="is not a user of this machine"):
        resolve_job_user.__wrapped__("no-such-user-here")


def test_a_uid_without_a_passwd_entry_is_its_own_group() -> None:
    user = resolve_job_user.__wrapped__("54321")
    assert (user.name, user.uid, user.gid) == ("54321", 54321, 54321)


def test_a_process_that_becomes_the_job_user_keeps_no_group_and_gains_nothing() -> None:
    user = resolve_job_user()
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
    assert describe_job_user("nobody", tmp_path / "work") == "nobody (uid 65534, gid 65534)"
    warned = describe_job_user("nobody", closed / "work")
    assert f"WARNING: it cannot pass through to the work directory {closed / 'work'}" in warned
    assert "every job fails" in describe_job_user("root", tmp_path)


def test_builds_offer_no_interpreter_the_job_user_cannot_run(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    # A copy of an interpreter in a directory only root may enter (its standard library
    # stays where it was): root can run it, the job user cannot.
    shutil.copy2(os.path.realpath(job_python()), closed / "python3")
    user = resolve_job_user()

    def offered(runs_as: tuple[int, int] | None) -> set[Path]:
        registry = InterpreterRegistry(
            [closed / "python3"], search_path=False, pyenv_root=tmp_path, runs_as=runs_as
        )
        return {interpreter.path for interpreter in registry.interpreters().values()}

    assert closed / "python3" in offered(None)
    assert closed / "python3" not in offered((user.uid, user.gid))
