"""The progress bar of `fn.map` and `fn.wait_for_completion`, over jobs that really run.

Each test maps `tile` (which fails for 17) over three inputs on the execution stack: the
real API over HTTP and a real Celery worker. Where the output is a terminal, it is a
pseudo-terminal made for the test, so the automatic choice sees a real one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import struct
import sys
import termios
import threading
from collections.abc import Iterator

import pytest

from compute import ConfigurationError, Function, FunctionStatus
from compute._config import ENV_PROGRESS
from compute._progress import progress_wanted
from tests.worker import functions

INPUTS = [1, 17, 3]  # tile(17) fails
TERMINAL_COLUMNS = 200  # wide enough that the bar's counts are never cut off
WAIT_SECONDS = 120


class Screen:
    """What a pseudo-terminal standing in for standard error showed, complete once closed."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode("utf-8", errors="replace")


@contextlib.contextmanager
def terminal_as_stderr() -> Iterator[Screen]:
    """Make `sys.stderr` a pseudo-terminal for the block, recording what it shows."""
    controller, terminal_fd = pty.openpty()
    size = struct.pack("HHHH", 50, TERMINAL_COLUMNS, 0, 0)
    fcntl.ioctl(terminal_fd, termios.TIOCSWINSZ, size)
    screen = Screen()

    def read_all() -> None:
        # Drained as it is written, so a long output never blocks the writer; reading
        # fails with EIO once the terminal side is closed.
        with contextlib.suppress(OSError):
            while chunk := os.read(controller, 65536):
                screen.chunks.append(chunk)

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    terminal = os.fdopen(terminal_fd, "w", encoding="utf-8")
    saved = sys.stderr
    sys.stderr = terminal
    try:
        yield screen
    finally:
        sys.stderr = saved
        terminal.close()
        reader.join(timeout=10)
        os.close(controller)


def map_and_wait(progress: bool | None = None) -> Function:
    """Map `tile` over `INPUTS` and wait for the jobs, passing `progress` to both calls."""
    fn = Function(functions.tile, name="tile", timeout=60)
    fn.save()
    fn.map(INPUTS, progress=progress)
    fn.wait_for_completion(timeout=WAIT_SECONDS, interval=0.1, progress=progress)
    assert fn.status == FunctionStatus.FAILURE  # every job final, one failed
    return fn


def last_bar_state(output: str, description: str) -> str:
    """The last state the bar `description` drew: the line it leaves on screen."""
    states = [part.strip() for part in re.split(r"[\r\n]", output) if part.startswith(description)]
    assert states, f"no {description!r} bar in {output!r}"
    return states[-1]


def assert_no_bar(output: str, fn: Function) -> None:
    # Only the status lines `wait_for_completion` always prints, one per line; that they
    # are there shows the output was captured, so its silence is the bar's.
    assert f"Function {fn.name} starting status" in output
    assert "\r" not in output.replace("\r\n", "\n")
    assert "job/s" not in output and "%|" not in output
    for line in output.splitlines():
        assert line.startswith(f"Function {fn.name} "), output


@pytest.fixture(autouse=True)
def no_progress_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_PROGRESS, raising=False)


@pytest.mark.usefixtures("exec_user")
def test_a_forced_bar_counts_jobs_submitted_then_done_by_status(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fn = map_and_wait(progress=True)  # forced, though captured output is no terminal

    output = capsys.readouterr().err
    submitted = last_bar_state(output, "tile submitted:")
    assert "100%" in submitted and "3/3" in submitted
    assert submitted.endswith("pending=3]")
    done = last_bar_state(output, "tile done:")
    assert "100%" in done and "3/3" in done
    assert done.endswith("success=2, failure=1]")
    assert fn.job_statistics is not None and fn.job_statistics["success"] == 2
    # The status changes are still printed, on lines of their own above the bar.
    assert f"Function {fn.name} starting status" in output


@pytest.mark.usefixtures("exec_user")
def test_the_bar_shows_by_itself_on_a_terminal() -> None:
    with terminal_as_stderr() as screen:
        map_and_wait()

    assert "3/3" in last_bar_state(screen.text, "tile submitted:")
    done = last_bar_state(screen.text, "tile done:")
    assert "3/3" in done and done.endswith("success=2, failure=1]")


@pytest.mark.usefixtures("exec_user")
def test_no_bar_when_the_output_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    fn = map_and_wait()

    assert_no_bar(capsys.readouterr().err, fn)


@pytest.mark.usefixtures("exec_user")
def test_no_bar_on_a_terminal_when_the_call_says_so() -> None:
    with terminal_as_stderr() as screen:
        fn = map_and_wait(progress=False)

    assert_no_bar(screen.text, fn)


@pytest.mark.usefixtures("exec_user")
def test_no_bar_on_a_terminal_with_the_setting_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_PROGRESS, "0")
    with terminal_as_stderr() as screen:
        fn = map_and_wait()

    assert_no_bar(screen.text, fn)


def test_the_call_outranks_the_setting_which_outranks_the_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_PROGRESS, "off")
    assert progress_wanted(True) is True
    assert progress_wanted(None) is False
    monkeypatch.setenv(ENV_PROGRESS, "1")
    assert progress_wanted(None) is True  # though pytest's captured output is no terminal
    assert progress_wanted(False) is False
    monkeypatch.setenv(ENV_PROGRESS, "maybe")
    with pytest.raises(ConfigurationError, match=ENV_PROGRESS):
        progress_wanted(None)
