"""Starting, watching and stopping the processes of `compute up`.

Each child runs in its own session, hence its own process group: Ctrl-C reaches only
the supervisor, which then stops the children in reverse start order. Each child gets
SIGTERM to its main process alone (gunicorn and Celery then shut their own workers down
gracefully, letting running tasks finish), a grace period, then SIGKILL to its group and
to whatever of its tree is left. As a child subreaper the supervisor also adopts, and
finally kills, descendants that escaped their group.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import click
import psutil

from .prctl import become_subreaper, terminate_with_parent

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.2
DEFAULT_GRACE_SECONDS = 10.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class ServiceError(click.ClickException):
    """The service could not start or keep running."""


class ChildExited(ServiceError):
    """A child process ended while the service was meant to be running."""


class StopRequested(Exception):
    """A stop signal arrived; not an error."""


@dataclass
class Child:
    """One supervised process."""

    name: str
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid


class Supervisor:
    """Owns the children: starts them, notices when one dies, stops them all."""

    def __init__(self, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> None:
        self.grace_seconds = grace_seconds
        self.children: list[Child] = []
        self.stop_signal: int | None = None

    def install_signal_handlers(self) -> None:
        """Turn SIGINT, SIGTERM and SIGHUP into a stop request; adopt orphans."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._request_stop)
        become_subreaper()

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_signal = signum

    def start(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        *,
        cwd: Path | None = None,
        executable: str | None = None,
        stdin_data: bytes | None = None,
        user: tuple[int, int] | None = None,
    ) -> Child:
        """Start `argv` as the child `name` in a new session.

        Args:
            cwd: the directory the child starts in, entered before it gives up root.
            executable: the file to run, when not `argv[0]`; a relative path (`./name`)
                starts from `cwd`.
            stdin_data: what the child reads on its stdin (else nothing); a pipe's worth
                at most, since it is written whole before this returns.
            user: the uid and gid the child runs as, with no supplementary groups.
        """
        self.checkpoint()
        logger.info("starting %s: %s", name, argv[0])
        identity: dict[str, Any] = {}
        if user is not None:
            identity = {"user": user[0], "group": user[1], "extra_groups": []}
        # preexec_fn is safe here: the supervisor runs no other threads. It runs after
        # the switch of user, which would otherwise clear the parent-death signal.
        process = subprocess.Popen(
            argv,
            executable=executable,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL if stdin_data is None else subprocess.PIPE,
            start_new_session=True,
            preexec_fn=terminate_with_parent,
            **identity,
        )
        child = Child(name, process)
        self.children.append(child)
        if process.stdin is not None:
            # A child that died at once is reported by the next checkpoint.
            with contextlib.suppress(BrokenPipeError), process.stdin:
                process.stdin.write(stdin_data or b"")
        return child

    def checkpoint(self) -> None:
        """Raise StopRequested after a stop signal, ChildExited if a child has ended."""
        if self.stop_signal is not None:
            raise StopRequested(signal.Signals(self.stop_signal).name)
        for child in self.children:
            code = child.process.poll()
            if code is not None:
                how = f"was killed by {_signal_name(-code)}" if code < 0 else f"exited ({code})"
                raise ChildExited(f"the {child.name} process {how} unexpectedly")

    def wait(self, seconds: float = POLL_SECONDS) -> None:
        """Sleep briefly, reaping adopted orphans, then run a checkpoint."""
        time.sleep(seconds)
        self._reap_orphans()
        self.checkpoint()

    def run_forever(self) -> None:
        """Watch the children until a stop signal (StopRequested) or a death (ChildExited)."""
        while True:
            self.wait()

    def stop_all(self) -> None:
        """Stop every child, last started first, then anything else left in our tree."""
        for child in reversed(self.children):
            _stop_tree(child, self.grace_seconds)
        leftovers = psutil.Process().children(recursive=True)
        if leftovers:
            logger.warning("killing %d leftover processes", len(leftovers))
            _kill_and_reap(leftovers)

    def _reap_orphans(self) -> None:
        own = {child.pid for child in self.children}
        for process in psutil.Process().children():
            if process.pid in own:
                continue
            try:
                if process.status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(process.pid, os.WNOHANG)
            except (psutil.Error, ChildProcessError):
                pass


def _stop_tree(child: Child, grace_seconds: float) -> None:
    """SIGTERM the child, then SIGKILL its group and what of its tree outlives the grace."""
    tree = _tree(child.pid)
    if child.process.poll() is None:
        child.process.terminate()
    else:
        # The leader is gone; its group may not be (a killed gunicorn master's workers).
        _signal_group(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline and not _all_gone(child, tree):
        time.sleep(0.05)
    if not _all_gone(child, tree):
        logger.warning("%s did not stop within %.0f s; killing it", child.name, grace_seconds)
        _signal_group(child.pid, signal.SIGKILL)
        _kill_and_reap(tree)
    child.process.wait()


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _all_gone(child: Child, tree: list[psutil.Process]) -> bool:
    if child.process.poll() is None:
        return False
    return not any(_alive(process) for process in tree if process.pid != child.pid)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _kill_and_reap(processes: list[psutil.Process]) -> None:
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(processes, timeout=5)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
