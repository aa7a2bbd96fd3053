"""A failed job says why: its exception's last traceback line, cold and warm, as clean text
the job cannot turn against the worker or a reader."""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.worker.execution.conftest import Ran, Runner, returned
from worker.execution.executor import ExecutorPool
from worker.execution.job_files import MAX_REASON_CHARS, clean_reason
from worker.execution.job_monitor import Ending

FAILS = """
import os, sys

FAILURE_FILE = os.path.join("..", "out", "failure.txt")


class TileError(Exception):
    pass


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no text for you")


def main(action, *args):
    if action == "raise":
        raise ValueError("bad tile 17")
    if action == "raise-own":
        raise TileError()
    if action == "raise-unprintable":
        raise Unprintable()
    if action == "exit":
        sys.exit(*args)
    if action == "return-object":
        return object()
    if action == "raise-hostile":
        raise ValueError("\\x1b[31mred\\x1b[0m\\nnext line\\u202e" + "x" * 100_000)
    if action == "forge":
        with open(FAILURE_FILE, "w") as handle:
            handle.write("\\x1b]0;owned\\x07" + "\\n" * 10 + "y" * 10_000_000)
        os._exit(1)
    if action == "forge-link":
        os.symlink(args[0], FAILURE_FILE)
        os._exit(1)
    if action == "forge-and-exit":
        with open(FAILURE_FILE, "w") as handle:
            handle.write("ValueError: not what happened")
        os._exit(3)
    return "fine"
"""


@pytest.fixture(params=["cold", "warm"])
def run_failing(request: pytest.FixtureRequest, run: Runner) -> Iterator[Runner]:
    """Run `FAILS` with the given arguments in a fresh interpreter, or in a warm
    executor's child (checked: a failed import would have fallen back to cold)."""
    if request.param == "cold":
        yield lambda *args, **options: run(FAILS, *args, **options)
        return
    pool = ExecutorPool()

    def warm(*args: object, **options: object) -> Ran:
        ran = run(FAILS, *args, executors=pool, **options)
        assert pool._executors, "the job did not run in a warm executor"
        return ran

    yield warm
    pool.close_all()


def test_an_exception_is_summarized_and_its_traceback_logged(run_failing: Runner) -> None:
    ran = run_failing("raise")
    assert (ran.outcome.ending, ran.outcome.exit_code) == (Ending.EXITED, 1)
    assert ran.outcome.failure == "ValueError: bad tile 17"
    assert "Traceback (most recent call last)" in ran.log
    assert ran.outcome.result is None


def test_an_exception_of_the_functions_own_class_is_named_by_its_module(
    run_failing: Runner,
) -> None:
    assert run_failing("raise-own").outcome.failure == "__dlentrypoint__.TileError"
    assert run_failing("raise-unprintable").outcome.failure == (
        "__dlentrypoint__.Unprintable: <exception str() failed>"
    )


def test_a_value_that_cannot_be_stored_is_a_type_error(run_failing: Runner) -> None:
    failure = run_failing("return-object").outcome.failure
    assert failure is not None
    assert failure.startswith("TypeError: The return value of type object is not JSON-serialisable")


@pytest.mark.parametrize(("code", "exit_code"), [(3, 3), (None, 0), (0, 0), (-1, 255)])
def test_sys_exit_ends_the_job_with_its_code_and_no_summary(
    run_failing: Runner, code: int | None, exit_code: int
) -> None:
    ran = run_failing("exit", code)
    assert (ran.outcome.ending, ran.outcome.exit_code) == (Ending.EXITED, exit_code)
    assert ran.outcome.failure is None and ran.outcome.result is None


def test_sys_exit_with_a_message_fails_with_it(run_failing: Runner) -> None:
    ran = run_failing("exit", "stopped: no tiles")
    assert ran.outcome.exit_code == 1
    assert ran.outcome.failure == "SystemExit: stopped: no tiles"
    assert "stopped: no tiles" in ran.log


def test_a_hostile_message_becomes_one_bounded_line_of_text(run_failing: Runner) -> None:
    failure = run_failing("raise-hostile").outcome.failure
    assert failure is not None
    assert failure.startswith("ValueError: [31mred[0m next line")
    assert len(failure) == MAX_REASON_CHARS and failure.endswith("x…")
    assert_printable(failure)


def test_a_forged_summary_is_read_bounded_and_cleaned(run_failing: Runner) -> None:
    started = time.monotonic()
    ran = run_failing("forge", disk_mb=64)
    assert ran.outcome.exit_code == 1
    failure = ran.outcome.failure
    assert failure is not None and failure.startswith("]0;owned y")
    assert len(failure) == MAX_REASON_CHARS
    assert_printable(failure)
    assert time.monotonic() - started < 20  # ten megabytes are never read


def test_a_summary_linked_to_another_file_is_not_followed(
    run_failing: Runner, tmp_path: Path
) -> None:
    secret = tmp_path / "worker-only"
    secret.write_text("the worker's secret")
    secret.chmod(0o600)
    ran = run_failing("forge-link", str(secret))
    assert ran.outcome.exit_code == 1 and ran.outcome.failure is None


def test_a_summary_is_read_only_after_an_exception(run_failing: Runner) -> None:
    ran = run_failing("forge-and-exit")
    assert ran.outcome.exit_code == 3 and ran.outcome.failure is None


def test_a_success_has_no_failure(run_failing: Runner) -> None:
    ran = run_failing("fine")
    assert ran.outcome.exit_code == 0 and ran.outcome.failure is None
    assert returned(ran.outcome) == b'j"fine"'


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("ValueError: bad tile 17", "ValueError: bad tile 17"),
        ("  two\r\nlines\tand\x0bmore  ", "two lines and more"),
        ("\x1b[2J\x07bell\x00nul\x7fdel\x9bcsi", "[2Jbellnuldelcsi"),
        ("bidi\u202eesrever\u2066 zero\u200bwidth", "bidiesrever zerowidth"),
        ("sep\u2028line\u2029para", "sep line para"),
        ("", ""),
    ],
)
def test_clean_reason_keeps_one_line_of_printable_text(text: str, clean: str) -> None:
    assert clean_reason(text) == clean


def test_clean_reason_cuts_a_long_text_at_the_bound() -> None:
    assert clean_reason("abc " * 10, max_chars=10) == "abc abc a…"
    assert clean_reason("a" * 10, max_chars=10) == "a" * 10


def assert_printable(text: str) -> None:
    assert "\n" not in text
    bad = [c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn")]
    assert not bad, bad
