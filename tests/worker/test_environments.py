"""What a job can import and read: requirements, shipped modules and data, pickled code."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from compute import Function, FunctionStatus, JobStatus
from tests.conftest import ApiClient
from tests.worker import functions

pytestmark = pytest.mark.usefixtures("stack_wheelhouse")

SHIPPED_MODULES = ("helperpkg", "helperpkg.sub", "helpermod")


def _environment_line(log: str) -> str:
    match = re.search(r"^Environment (\w+): .*$", log, re.MULTILINE)
    assert match, log
    return match.group(0)


def test_a_wheelhouse_requirement_is_importable_and_environments_are_shared(
    exec_user: ApiClient,
) -> None:
    first = Function(functions.uses_tinypkg, name="tiny-1", requirements=["tinypkg"], timeout=60)
    first.save()
    job = first()
    job.wait_for_completion(timeout=120, interval=0.1)
    assert job.status == JobStatus.SUCCESS, job.log()
    assert job.result() == {"value": 42, "hello": "hello from tinypkg"}

    second = Function(functions.uses_tinypkg, name="tiny-2", requirements=["tinypkg"], timeout=60)
    second.save()
    second.map([()])
    second.wait_for_completion(timeout=120, interval=0.1)
    assert second.results() == [{"value": 42, "hello": "hello from tinypkg"}]
    first_line = _environment_line(first.read_build_log())
    second_line = _environment_line(second.read_build_log())
    assert second_line.endswith(": cache hit"), second.read_build_log()
    assert first_line.split(":")[0] == second_line.split(":")[0]


@pytest.fixture
def shipped_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A package, a single-file module and a data file on sys.path, in the working directory."""
    (tmp_path / "helperpkg").mkdir()
    (tmp_path / "helperpkg" / "__init__.py").write_text('NAME = "helperpkg"\n')
    (tmp_path / "helperpkg" / "sub.py").write_text("def twice(x):\n    return 2 * x\n")
    (tmp_path / "helpermod.py").write_text('GREETING = "hello from helpermod"\n')
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "info.txt").write_text("shipped data\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        for name in SHIPPED_MODULES:
            sys.modules.pop(name, None)


def test_included_modules_and_data_are_reachable(exec_user: ApiClient, shipped_code: Path) -> None:
    fn = Function(
        functions.uses_included_code_and_data,
        name="included",
        include_modules=["helperpkg", "helpermod"],
        include_data=["data/*.txt"],
        timeout=60,
    )
    fn.save()
    job = fn()
    job.wait_for_completion(timeout=120, interval=0.1)
    assert job.status == JobStatus.SUCCESS, job.log()
    assert job.result() == {
        "pkg": "helperpkg",
        "sub": 42,
        "mod": "hello from helpermod",
        "data": "shipped data\n",
    }


def _adder(offset: int):  # noqa: ANN202 - returns a closure on purpose
    def add(x: int) -> int:
        return x + offset

    return add


def test_pickled_lambda_and_closure_run(exec_user: ApiClient) -> None:
    lam = Function(lambda x: x * 3, name="lambda", timeout=60)
    closure = Function(_adder(10), name="closure", timeout=60)
    for fn in (lam, closure):
        fn.save()
        fn.map([1, 2])
    for fn in (lam, closure):
        fn.wait_for_completion(timeout=120, interval=0.1)
        assert fn.status == FunctionStatus.SUCCESS, fn.read_build_log()
        assert "Requirements: none" in fn.read_build_log()
    assert lam.results() == [3, 6]
    assert closure.results() == [11, 12]
