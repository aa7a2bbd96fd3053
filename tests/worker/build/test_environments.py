from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import stat
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from worker.build import (
    EnvironmentBuildError,
    EnvironmentCache,
    InstallerOptions,
    Interpreter,
    InterpreterRegistry,
)
from worker.build.environments import environment_key

from .conftest import IMAGE


@pytest.fixture(scope="module")
def interpreter() -> Interpreter:
    return InterpreterRegistry(search_path=False).resolve(IMAGE)


@pytest.fixture
def cache(tmp_path: Path, installer_options: InstallerOptions) -> EnvironmentCache:
    return EnvironmentCache(tmp_path / "envs", installer_options)


def run_in(python: Path, code: str) -> str:
    return subprocess.run(
        [str(python), "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()


def entries(root: Path) -> list[str]:
    """What a cache root holds besides its lock files."""
    return sorted(p.name for p in root.iterdir() if p.name != ".locks")


def test_builds_from_the_wheelhouse_and_imports(
    cache: EnvironmentCache, interpreter: Interpreter
) -> None:
    environment = cache.get(interpreter, ["tinypkg"])
    assert not environment.cache_hit
    assert environment.python == cache.root / environment.key / "bin" / "python"
    assert run_in(environment.python, "import tinypkg; print(tinypkg.VALUE)") == "42"
    assert "tinypkg==1.0" in environment.installer_log
    # Built under a temporary name: its scripts must still run after the rename.
    script = environment.path / "bin" / "tinypkg-hello"
    assert subprocess.run([str(script)], capture_output=True, text=True).stdout == (
        "hello from tinypkg\n"
    )
    assert entries(cache.root) == [environment.key]


def test_second_build_is_a_fast_cache_hit(
    cache: EnvironmentCache, interpreter: Interpreter
) -> None:
    started = time.perf_counter()
    first = cache.get(interpreter, ["tinypkg"])
    building = time.perf_counter() - started
    started = time.perf_counter()
    second = cache.get(interpreter, ["tinypkg"])
    hitting = time.perf_counter() - started
    assert hitting < building / 10, {"building": building, "hitting": hitting}
    assert second.cache_hit and second.key == first.key and second.python == first.python


def test_key_depends_on_interpreter_and_requirements(interpreter: Interpreter) -> None:
    key = environment_key(interpreter, ["a", "b"])
    assert key == environment_key(interpreter, ["b", "a"])
    assert key != environment_key(interpreter, ["a"])
    other = dataclasses.replace(interpreter, identity=interpreter.identity + "-other")
    assert key != environment_key(other, ["a", "b"])


def test_environment_is_read_only(cache: EnvironmentCache, interpreter: Interpreter) -> None:
    environment = cache.get(interpreter, ["tinypkg"])
    for directory, _, files in os.walk(environment.path):
        for path in [directory, *(os.path.join(directory, name) for name in files)]:
            mode = os.lstat(path).st_mode
            if not stat.S_ISLNK(mode):
                assert mode & 0o222 == 0, path
    # The base interpreter the environment links to is left alone.
    assert os.stat(interpreter.path).st_mode & stat.S_IWUSR
    if os.geteuid() != 0:  # root ignores permission bits
        with pytest.raises(PermissionError):
            (environment.path / "poison.pth").write_text("import os")


def test_concurrent_builds_in_threads_build_once(
    cache: EnvironmentCache, interpreter: Interpreter
) -> None:
    with ThreadPoolExecutor(4) as pool:
        built = list(pool.map(lambda _: cache.get(interpreter, ["tinypkg"]), range(4)))
    assert sorted(e.cache_hit for e in built) == [False, True, True, True]
    assert len({e.python for e in built}) == 1


def _build_in_process(root: str, wheelhouse: str, interpreter: Interpreter) -> bool:
    cache = EnvironmentCache(Path(root), InstallerOptions(wheelhouse=Path(wheelhouse)))
    return cache.get(interpreter, ["tinypkg"]).cache_hit


def test_concurrent_builds_in_processes_build_once(
    tmp_path: Path, wheelhouse: Path, interpreter: Interpreter
) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        arguments = [(str(tmp_path / "envs"), str(wheelhouse), interpreter)] * 3
        hits = pool.starmap(_build_in_process, arguments)
    assert sorted(hits) == [False, True, True]


def test_missing_package_fails_with_a_readable_log(
    cache: EnvironmentCache, interpreter: Interpreter
) -> None:
    with pytest.raises(EnvironmentBuildError, match="installing the requirements failed") as failed:
        cache.get(interpreter, ["not-in-the-wheelhouse"])
    assert "not-in-the-wheelhouse" in failed.value.log
    assert entries(cache.root) == [], "a failed build caches nothing"


def test_build_timeout_kills_the_installer_session(
    tmp_path: Path, wheelhouse: Path, interpreter: Interpreter, slow_backend_pid_file: Path
) -> None:
    slow_backend_pid_file.unlink(missing_ok=True)
    options = InstallerOptions(wheelhouse=wheelhouse, timeout_seconds=3)
    cache = EnvironmentCache(tmp_path / "envs", options)
    started = time.monotonic()
    with pytest.raises(EnvironmentBuildError, match="build timed out after 3 s"):
        cache.get(interpreter, ["slowpkg"])
    assert time.monotonic() - started < 10
    # The hanging build backend, a grandchild of the installer, died with it.
    backend = int(slow_backend_pid_file.read_text())
    with contextlib.suppress(psutil.NoSuchProcess):
        psutil.Process(backend).wait(timeout=5)
    assert entries(cache.root) == []


def test_only_binary_refuses_to_run_sdist_builds(
    tmp_path: Path, wheelhouse: Path, interpreter: Interpreter, slow_backend_pid_file: Path
) -> None:
    slow_backend_pid_file.unlink(missing_ok=True)
    options = InstallerOptions(wheelhouse=wheelhouse, only_binary=True, timeout_seconds=30)
    cache = EnvironmentCache(tmp_path / "envs", options)
    with pytest.raises(EnvironmentBuildError, match="installing the requirements failed") as failed:
        cache.get(interpreter, ["slowpkg"])
    assert "slowpkg" in failed.value.log
    assert not slow_backend_pid_file.exists(), "the sdist's backend never ran"


def test_tiny_timeout_fails_cleanly(
    tmp_path: Path, wheelhouse: Path, interpreter: Interpreter
) -> None:
    options = InstallerOptions(wheelhouse=wheelhouse, timeout_seconds=0.001)
    cache = EnvironmentCache(tmp_path / "envs", options)
    with pytest.raises(EnvironmentBuildError, match="timed out"):
        cache.get(interpreter, ["tinypkg"])
    assert entries(cache.root) == []


def test_environment_without_requirements(
    cache: EnvironmentCache, interpreter: Interpreter
) -> None:
    environment = cache.get(interpreter, [])
    assert run_in(environment.python, "import sys; print(sys.prefix != sys.base_prefix)") == "True"


def test_pip_fallback_builds_the_same_environment(
    tmp_path: Path, wheelhouse: Path, interpreter: Interpreter
) -> None:
    options = InstallerOptions(wheelhouse=wheelhouse, installer="pip", timeout_seconds=120)
    environment = EnvironmentCache(tmp_path / "envs", options).get(interpreter, ["tinypkg"])
    assert run_in(environment.python, "import tinypkg; print(tinypkg.VALUE)") == "42"


def test_stale_partial_builds_are_cleared_and_removal_works(
    cache: EnvironmentCache, interpreter: Interpreter
) -> None:
    key = environment_key(interpreter, ["tinypkg"])
    stale = cache.root / f".{key}.dead.partial"
    (stale / "bin").mkdir(parents=True)
    stale.chmod(0o555)
    environment = cache.get(interpreter, ["tinypkg"])
    assert entries(cache.root) == [key]
    cache.remove(environment.key)
    assert entries(cache.root) == []
    assert cache.lookup(environment.key) is None
