"""An interpreter under a folder the job uids cannot pass through is offered through a copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.capabilities import ROOT, missing_capability, requires
from worker.build.images import InterpreterRegistry
from worker.build.interpreter_copies import (
    NotCopyable,
    check_copyable,
    find_patchelf,
    reachable_installation,
)

from ..conftest import job_reachable_directory

pytestmark = requires(ROOT, "root (jobs switch uids only as root)")

JOB_UID = 200_990
MINOR = sys.version_info.minor
IMAGE = f"python3.{MINOR}:latest"
SOURCE = Path(sys.base_prefix).resolve()
EXECUTABLE = Path(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))


def run_as_job(python: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-I", "-c", code],
        user=JOB_UID,
        group=JOB_UID,
        extra_groups=[],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
    )


def patchelf(*arguments: str | Path) -> str:
    tool = find_patchelf()
    assert tool is not None, "patchelf is a dependency of the service on Linux"
    completed = subprocess.run([str(tool), *map(str, arguments)], capture_output=True, text=True)
    return completed.stdout.strip() if completed.returncode == 0 else ""


def runpath(binary: Path) -> str:
    return patchelf("--print-rpath", binary)


def set_runpath(binary: Path, value: str) -> None:
    patchelf("--set-rpath", value, binary)


@pytest.fixture
def closed_installation() -> Iterator[Path]:
    """This test run's base Python as if installed in a folder closed to other users.

    Hard links, but for the binaries naming their libraries' folder by absolute path,
    which are copied and made to name the new place, as an installation there would.
    """
    try:
        check_copyable(SOURCE, EXECUTABLE, MINOR)
    except NotCopyable as reason:
        missing_capability(f"a self-contained installation of the running Python ({reason})")
    with job_reachable_directory("closed-", mode=0o700) as closed:
        installation = closed / "python"
        subprocess.run(["cp", "-al", str(SOURCE), str(installation)], check=True)
        for binary in [*installation.glob("bin/python3*"), *installation.rglob("*.so*")]:
            found = runpath(binary) if binary.is_file() and not binary.is_symlink() else ""
            if str(SOURCE) in found:
                copied = binary.with_name(binary.name + ".tmp")
                shutil.copy2(binary, copied)
                copied.replace(binary)
                set_runpath(binary, found.replace(str(SOURCE), str(installation)))
        yield installation


@pytest.fixture
def copies_root() -> Iterator[Path]:
    with job_reachable_directory("copies-", mode=0o755) as root:
        yield root / "interpreters"


def test_an_unreachable_interpreter_runs_for_jobs_through_its_copy(
    closed_installation: Path, copies_root: Path
) -> None:
    closed_python = closed_installation / EXECUTABLE.relative_to(SOURCE)
    with pytest.raises(PermissionError):  # the job uid cannot reach it
        run_as_job(closed_python, "pass")
    registry = InterpreterRegistry(
        [closed_python], search_path=False, runs_as=(JOB_UID, JOB_UID), copies_root=copies_root
    )

    interpreter = registry.resolve(IMAGE)

    assert copies_root in interpreter.path.parents
    ran = run_as_job(interpreter.path, "import sys, ssl, sqlite3; print(sys.prefix)")
    assert ran.returncode == 0, ran.stderr
    assert Path(ran.stdout.strip()) == interpreter.path.parent.parent
    assert IMAGE in registry.images()


def test_a_copy_finds_its_libraries_beside_itself_and_leaves_the_original_alone(
    closed_installation: Path, copies_root: Path
) -> None:
    closed_python = closed_installation / EXECUTABLE.relative_to(SOURCE)
    original_runpath = runpath(closed_python)

    copy = reachable_installation(closed_installation, "test", copies_root)

    copied_python = copy / EXECUTABLE.relative_to(SOURCE)
    assert str(closed_installation) not in runpath(copied_python)
    if str(closed_installation) in original_runpath:
        assert runpath(copied_python).startswith("$ORIGIN/")
    assert runpath(closed_python) == original_runpath
    assert list((copy / "lib" / f"python3.{MINOR}" / "site-packages").iterdir()) == []


def test_a_copy_is_made_once(closed_installation: Path, copies_root: Path) -> None:
    first = reachable_installation(closed_installation, "test", copies_root)
    marker = (first / "bin").stat().st_ino

    again = reachable_installation(closed_installation, "test", copies_root)

    assert again == first
    assert (again / "bin").stat().st_ino == marker
    assert [path.name for path in copies_root.iterdir()] == [first.name]


@pytest.mark.parametrize("prefix", ["/", "/usr", "/usr/local"])
def test_system_prefixes_are_never_copied(prefix: str) -> None:
    with pytest.raises(NotCopyable, match="system prefix"):
        check_copyable(Path(prefix), Path(prefix) / "bin" / "python3", MINOR)
