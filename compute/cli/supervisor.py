"""Starting, watching, restarting and stopping the processes of `compute up`.

Each child runs in its own session, hence its own process group: Ctrl-C reaches only
the supervisor, which then stops the children in reverse start order. Each child gets
SIGTERM to its main process alone (gunicorn and Celery then shut their own workers down
gracefully, letting running tasks finish), a grace period, then SIGKILL to its group and
to whatever of its tree is left. As a child subreaper the supervisor also adopts, and
finally kills, descendants that escaped their group.

A child that dies is started again as it was first started, after the delay its
`RestartHistory` gives; what is left of its process group is stopped first (a SIGKILLed
gunicorn master's workers would keep the port its successor must bind). A child that
keeps dying stops the service with a `CrashLoop`. The children's output reaches the
supervisor through pipes read in the same loop (`child_output`): it runs no threads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import click
import psutil

from .child_output import FilterFactory, OutputPump
from .prctl import become_subreaper, terminate_with_parent
from .restarts import RestartHistory, RestartPolicy

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.2
DEFAULT_GRACE_SECONDS = 10.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class ServiceError(click.ClickException):
    """The service could not start or keep running."""


class CrashLoop(ServiceError):
    """A child died too often in too short a time to be worth starting again."""


class StopRequested(Exception):
    """A stop signal arrived; not an error."""


@dataclass(frozen=True)
class ChildSpec:
    """How a child is started, the first time and after each death."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path | None = None
    executable: str | None = None
    stdin_data: bytes | None = None
    user: tuple[int, int] | None = None
    output: FilterFactory | None = None


@dataclass
class Child:
    """One supervised process: its current incarnation and its record of deaths."""

    name: str
    spec: ChildSpec
    process: subprocess.Popen[bytes]
    history: RestartHistory
    started_at: float = field(default_factory=time.monotonic)
    # When it is dead and waiting out its delay: the monotonic time it starts again.
    restart_at: float | None = None

    @property
    def pid(self) -> int:
        return self.process.pid


class Supervisor:
    """Owns the children: starts them, restarts those that die, stops them all."""

    def __init__(
        self,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        policy: RestartPolicy | None = None,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.grace_seconds = grace_seconds
        self.policy = policy or RestartPolicy()
        self.children: list[Child] = []
        self.stop_signal: int | None = None
        self.adopts_orphans = False
        self.output = OutputPump()
        self.report = report or _report

    def install_signal_handlers(self) -> None:
        """Turn SIGINT, SIGTERM and SIGHUP into a stop request; adopt orphans."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._request_stop)
        self.adopts_orphans = become_subreaper()

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
        output: FilterFactory | None = None,
    ) -> Child:
        """Start `argv` as the child `name` in a new session.

        Args:
            cwd: the directory the child starts in, entered before it gives up root.
            executable: the file to run, when not `argv[0]`; a relative path (`./name`)
                starts from `cwd`.
            stdin_data: what the child reads on its stdin (else nothing); a pipe's worth
                at most, since it is written whole before this returns.
            user: the uid and gid the child runs as, with no supplementary groups.
            output: makes, for each run, the filter of the lines the child writes (to
                stdout or stderr); without one, they pass unchanged.

        Raises:
            ServiceError: the child could not be started.
        """
        self.checkpoint()
        spec = ChildSpec(argv, env, cwd, executable, stdin_data, user, output)
        child = Child(name, spec, self._spawn(name, spec), RestartHistory(self.policy))
        self.children.append(child)
        return child

    def _spawn(self, name: str, spec: ChildSpec) -> subprocess.Popen[bytes]:
        logger.info("starting %s: %s", name, spec.argv[0])
        identity: dict[str, Any] = {}
        if spec.user is not None:
            identity = {"user": spec.user[0], "group": spec.user[1], "extra_groups": []}
        try:
            # preexec_fn is safe here: the supervisor runs no other threads. It runs after
            # the switch of user, which would otherwise clear the parent-death signal.
            process = subprocess.Popen(
                spec.argv,
                executable=spec.executable,
                cwd=spec.cwd,
                env=spec.env,
                stdin=subprocess.DEVNULL if spec.stdin_data is None else subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=terminate_with_parent,
                **identity,
            )
        except OSError as error:
            raise ServiceError(f"cannot start the {name}: {error}") from error
        assert process.stdout is not None
        self.output.watch(process.stdout, spec.output() if spec.output else None)
        if process.stdin is not None:
            # A child that died at once is reported by the next checkpoint.
            with contextlib.suppress(BrokenPipeError), process.stdin:
                process.stdin.write(spec.stdin_data or b"")
        return process

    def checkpoint(self) -> None:
        """Act on what happened since the last look: a stop signal, a death, a restart due.

        Raises:
            StopRequested: a stop signal arrived.
            CrashLoop: a child died too often to be started again.
            ServiceError: a child could not be started again.
        """
        if self.stop_signal is not None:
            raise StopRequested(signal.Signals(self.stop_signal).name)
        for child in self.children:
            if child.restart_at is None:
                code = child.process.poll()
                if code is not None:
                    self._died(child, code)
            elif time.monotonic() >= child.restart_at:
                child.process = self._spawn(child.name, child.spec)
                child.started_at = time.monotonic()
                child.restart_at = None

    def _died(self, child: Child, code: int) -> None:
        now = time.monotonic()
        how = describe_exit(code)
        delay = child.history.next_delay(now, now - child.started_at)
        if delay is None:
            raise CrashLoop(
                f"the {child.name} process died {child.history.describe_loop()}, "
                f"the last time it {how}"
            )
        self.report(
            f"The {child.name} process (pid {child.pid}) {how} at {time.strftime('%H:%M:%S')}; "
            f"restarting it in {delay:g} s."
        )
        self._stop_tree(child)
        child.restart_at = time.monotonic() + delay

    def wait(self, seconds: float = POLL_SECONDS) -> None:
        """Pass on the children's output for `seconds`, reap adopted orphans, then run a
        checkpoint."""
        self.output.pump(seconds)
        self._reap_orphans()
        self.checkpoint()

    def run_forever(self) -> None:
        """Watch the children until a stop signal (StopRequested) or a crash loop."""
        while True:
            self.wait()

    def stop_all(self) -> None:
        """Stop every child, last started first, then anything else left in our tree."""
        for child in reversed(self.children):
            self._stop_tree(child)
        if self.adopts_orphans:
            self._reap_orphans()  # what ended with its parent (a worker's job executors)
            leftovers = [p for p in psutil.Process().children(recursive=True) if _alive(p)]
            if leftovers:
                self.report(f"Killing {len(leftovers)} leftover processes.")
                _kill_and_reap(leftovers)
        self.output.drain()

    def _stop_tree(self, child: Child) -> None:
        """SIGTERM the child, then SIGKILL its group and what of its tree outlives the grace.

        A child that is already dead may have left processes in its group (a killed
        gunicorn master's workers): they get the same treatment.
        """
        tree = _tree_and_group(child.pid)
        if child.process.poll() is None:
            child.process.terminate()
        else:
            _signal_group(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_seconds
        while time.monotonic() < deadline and not _all_gone(child, tree):
            self.output.pump(0.05)
        if not _all_gone(child, tree):
            self.report(
                f"The {child.name} process did not stop within {self.grace_seconds:g} s; "
                "killing it."
            )
            _signal_group(child.pid, signal.SIGKILL)
            _kill_and_reap(tree)
        child.process.wait()

    def _reap_orphans(self) -> None:
        if not self.adopts_orphans:
            return
        own = {child.pid for child in self.children}
        for process in psutil.Process().children():
            if process.pid in own:
                continue
            try:
                if process.status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(process.pid, os.WNOHANG)
            except (psutil.Error, ChildProcessError):
                pass


def describe_exit(code: int) -> str:
    """What a Popen return code says happened: `exited with code 1`, `was killed by SIGKILL`."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"


def _report(message: str) -> None:
    click.echo(message, err=True)


def _tree_and_group(pid: int) -> list[psutil.Process]:
    """The process `pid`, its descendants, and every process of its process group (whose
    id is `pid`: each child leads a session of its own), even once `pid` itself is gone."""
    found: dict[int, psutil.Process] = {}
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        found = {process.pid: process for process in [root, *root.children(recursive=True)]}
    for process in psutil.process_iter():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if process.pid not in found and os.getpgid(process.pid) == pid:
                found[process.pid] = process
    return list(found.values())


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
