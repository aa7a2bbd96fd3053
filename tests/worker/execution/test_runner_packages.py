"""The runner's packages: the worker's cloudpickle, copied where every job uid can read it
and none can write, and found last on a job's `sys.path`, warm or cold."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import cloudpickle
import pytest

from worker.execution.executor import ExecutorPool
from worker.execution.job_limits import JobLimits
from worker.execution.job_monitor import Ending, ProcessOutcome, run_process
from worker.execution.joblog import JobLog
from worker.execution.runtime import PACKAGES, copy_package, scripts_directory

from .conftest import JOB_USER, job_python

REPORT = """
import os, sys

def main():
    import cloudpickle
    package = os.path.dirname(cloudpickle.__file__)
    try:
        open(os.path.join(package, "planted.py"), "w").close()
        planted = True
    except OSError:
        planted = False
    return {"version": cloudpickle.__version__, "package": package,
            "last_path": sys.path[-1], "planted": planted}
"""


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    directory = tmp_path / "bundle"
    directory.mkdir()
    (directory / "__dlentrypoint__.py").write_text(REPORT)
    return directory


@pytest.fixture
def pool() -> Iterator[ExecutorPool]:
    executors = ExecutorPool()
    yield executors
    executors.close_all()


def report(outcome: ProcessOutcome, log: JobLog) -> dict[str, object]:
    assert outcome.ending is Ending.EXITED and outcome.exit_code == 0, log.to_bytes().decode()
    with outcome:
        assert outcome.result is not None and outcome.result.tag == b"j"
        return json.loads(outcome.result.value_bytes())


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_a_job_imports_the_workers_cloudpickle_last_and_cannot_change_it(
    bundle: Path, pool: ExecutorPool, warm: bool
) -> None:
    log = JobLog()
    limits = JobLimits(1, 256, 30, 1.0)
    executors = pool if warm else None
    outcome = run_process(job_python(), bundle, [], {}, limits, log, executors=executors)
    found = report(outcome, log)
    packages = scripts_directory() / PACKAGES
    assert found["version"] == cloudpickle.__version__
    assert found["package"] == str(packages / "cloudpickle")
    assert found["last_path"] == str(packages)
    # A worker that is not root runs jobs as itself, the copy's owner.
    assert found["planted"] is not JOB_USER.switches


def test_the_copy_is_readable_by_all_and_writable_by_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Installed under a closed home, say: the copy must not keep the installation's modes.
    source = tmp_path / "site" / "closedpkg"
    (source / "sub").mkdir(parents=True)
    (source / "__pycache__").mkdir()
    for path in (source / "__init__.py", source / "sub" / "__init__.py"):
        path.write_text("VALUE = 1\n")
    (source / "__pycache__" / "stale.pyc").write_bytes(b"")
    for path in (source / "__init__.py", source / "sub" / "__init__.py", source / "sub", source):
        path.chmod(0o700)
    monkeypatch.syspath_prepend(str(source.parent))

    copy = copy_package("closedpkg", tmp_path / "packages")

    assert sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*")) == [
        "__init__.py",
        "sub",
        "sub/__init__.py",
    ]
    for path in [copy.parent, copy, *copy.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o755 if path.is_dir() else 0o644), (path, oct(mode))


def test_a_missing_package_is_named() -> None:
    with pytest.raises(ModuleNotFoundError, match="no_such_runner_package"):
        copy_package("no_such_runner_package", Path("/nonexistent"))
