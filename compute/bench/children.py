"""The processes a benchmark run starts, and stopping all of them however the run ends.

Each child leads a session of its own, so a Ctrl-C in the terminal reaches the bench
alone, which then stops the children itself, last started first. Each also gets SIGTERM
should the bench die without stopping it (the parent-death signal), so even a SIGKILLed
run leaves nothing behind for long.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

import psutil

from compute.cli.prctl import terminate_with_parent

STOP_GRACE_SECONDS = 30.0
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


class ChildDied(RuntimeError):
    """A child the run needs has exited."""


class Children:
    """Starts children with their output in log files, and stops them all on exit."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def __enter__(self) -> Children:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop_all()

    def start(
        self, name: str, argv: list[str], env: dict[str, str], stdin_data: bytes | None = None
    ) -> subprocess.Popen[bytes]:
        """Start `argv` as `name`, its stdout and stderr in `<log dir>/<name>.log`."""
        with self.log_path(name).open("ab") as log:
            # preexec_fn is safe: the bench starts its children from its only thread.
            process = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL if stdin_data is None else subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=terminate_with_parent,
            )
        self.started.append((name, process))
        if process.stdin is not None:
            with contextlib.suppress(BrokenPipeError), process.stdin:
                process.stdin.write(stdin_data or b"")
        return process

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def log_tail(self, name: str, lines: int = 30) -> str:
        """The last lines `name` wrote, for an error message."""
        try:
            text = self.log_path(name).read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check(self, name: str, process: subprocess.Popen[bytes]) -> None:
        """Raise ChildDied, with the end of its log, if `process` has exited."""
        code = process.poll()
        if code is not None:
            raise ChildDied(f"the {name} exited with code {code}:\n{self.log_tail(name)}")

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        """SIGTERM `process` (and wake it, should it be stopped), then SIGKILL what is left
        of its tree and process group after the grace period."""
        tree = _tree_and_group(process.pid)
        for member in tree:
            with contextlib.suppress(psutil.Error):
                member.resume()
        if process.poll() is None:
            process.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while time.monotonic() < deadline and _any_alive(tree, process):
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        leftovers = [member for member in tree if _alive(member)]
        for member in leftovers:
            with contextlib.suppress(psutil.Error):
                member.kill()
        psutil.wait_procs(leftovers, timeout=5)
        process.wait()

    def stop_all(self) -> None:
        """Stop every child, last started first.

        Stop signals wait until it is done (and then end the run): one arriving halfway
        would leave the remaining children to the parent-death signal alone.
        """
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            while self.started:
                _, process = self.started.pop()
                self.stop(process)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _tree_and_group(pid: int) -> list[psutil.Process]:
    """`pid`, its descendants, and every process of its process group."""
    found: dict[int, psutil.Process] = {}
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        found = {member.pid: member for member in [root, *root.children(recursive=True)]}
    for member in psutil.process_iter():
        with contextlib.suppress(ProcessLookupError, PermissionError, psutil.Error):
            if member.pid not in found and os.getpgid(member.pid) == pid:
                found[member.pid] = member
    return list(found.values())


def _any_alive(tree: list[psutil.Process], process: subprocess.Popen[bytes]) -> bool:
    if process.poll() is None:
        return True
    return any(_alive(member) for member in tree if member.pid != process.pid)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
