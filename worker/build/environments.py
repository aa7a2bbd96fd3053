"""Virtual environments cached by (interpreter, requirements), built once and then read-only.

An environment is built under a temporary name next to its final one, made read-only,
and renamed into place, so `<root>/<key>` existing means it is complete: readers need
no lock. Builders of the same key take an exclusive `flock` on `<root>/.locks/<key>`;
the second to arrive waits, then finds the first's environment ready. Jobs of every
function sharing an environment run from it, so it must be read-only or one job could
poison it for all later ones.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..execution.job_user import JobUser
from .errors import EnvironmentBuildError
from .images import Interpreter
from .installer import Installer, InstallerOptions
from .requirements import requirements_file_text

logger = logging.getLogger(__name__)

LOCK_POLL_SECONDS = 0.05
# A waiter may see the holder use its whole timeout, then fail and leave the build to it.
LOCK_WAIT_MARGIN_SECONDS = 60.0
INFO_FILE = "compute-environment.json"
WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


@dataclass(frozen=True)
class Environment:
    """A ready environment: run jobs with `python`."""

    key: str
    path: Path
    python: Path
    cache_hit: bool
    installer_log: str = ""  # the installer's output; empty on a cache hit


def environment_key(interpreter: Interpreter, requirements: Sequence[str]) -> str:
    """The cache key: a sha256 over the interpreter's identity and the normalized requirements."""
    document = {"interpreter": interpreter.identity, "requirements": sorted(requirements)}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


class EnvironmentCache:
    """The environments under one root directory (the worker passes `<data dir>/envs`)."""

    def __init__(self, root: Path, options: InstallerOptions | None = None) -> None:
        self.root = root
        self.options = options or InstallerOptions()

    def path(self, key: str) -> Path:
        return self.root / key

    def lookup(self, key: str) -> Environment | None:
        """The environment for `key` if it is built."""
        python = self.path(key) / "bin" / "python"
        if not python.exists():
            return None
        return Environment(key, self.path(key), python, cache_hit=True)

    def get(self, interpreter: Interpreter, requirements: Sequence[str]) -> Environment:
        """The environment for `requirements` on `interpreter`, built now if not cached.

        Raises:
            EnvironmentBuildError: the build failed or timed out; its `log` holds the
                installer's output. Nothing is cached.
        """
        key = environment_key(interpreter, requirements)
        if found := self.lookup(key):
            return found
        with self._locked(key):
            # Built by whoever held the lock before us.
            if found := self.lookup(key):
                return found
            return self._build(key, interpreter, requirements)

    def remove(self, key: str) -> None:
        """Delete the environment for `key`, e.g. when evicting; jobs using it will fail."""
        with self._locked(key):
            remove_tree(self.path(key))

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.options.timeout_seconds + LOCK_WAIT_MARGIN_SECONDS
        with open(locks / f"{key}.lock", "a+b") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as error:
                    if error.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                if time.monotonic() > deadline:
                    raise EnvironmentBuildError(
                        "another build of the same environment is still running"
                    )
                time.sleep(LOCK_POLL_SECONDS)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _build(
        self, key: str, interpreter: Interpreter, requirements: Sequence[str]
    ) -> Environment:
        # Left by a build that died holding this lock; ours now.
        for stale in self.root.glob(f".{key}.*.partial"):
            remove_tree(stale)
        started = time.monotonic()
        with self._builder() as user:
            # The build's directory is root's, open to the build's uid alone; what runs
            # as that uid writes only its scratch and the environment taking shape.
            build_dir = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".partial", dir=self.root))
            try:
                user.open_to(build_dir)
                scratch, staging = build_dir / "scratch", build_dir / "env"
                scratch.mkdir(mode=0o700)
                staging.mkdir(mode=0o755)
                user.give([scratch, staging])
                installer = Installer(
                    self.options,
                    scratch,
                    user,
                    log_path=build_dir / "installer.log",
                    visible=[staging, interpreter.path.parent],
                )
                try:
                    installer.create(interpreter.path, staging)
                    if requirements:
                        # In the scratch directory, which the build's namespace shows
                        # wherever the cache lies (under /tmp, the rest is private).
                        requirements_file = scratch / "requirements.txt"
                        requirements_file.write_text(requirements_file_text(list(requirements)))
                        requirements_file.chmod(0o644)
                        installer.install(staging / "bin" / "python", requirements_file)
                    # Nothing of the build may run while the worker takes over its output.
                    user.kill_all()
                    take_over(staging, user)
                    _write_info(staging, key, interpreter, requirements, installer.name)
                    make_read_only(staging, keep_top=True)
                    # Moving a directory to another parent needs its own write bit.
                    os.rename(staging, self.path(key))
                    make_read_only(self.path(key))
                finally:
                    log = installer.output()
            finally:
                remove_tree(build_dir)
        logger.info("built environment %s in %.1f s", key, time.monotonic() - started)
        return Environment(key, self.path(key), self.path(key) / "bin" / "python", False, log)

    @contextlib.contextmanager
    def _builder(self) -> Iterator[JobUser]:
        """The uid a build runs as: leased for it, or the worker's own."""
        if self.options.builds_as is None:
            yield JobUser(str(os.geteuid()), os.geteuid(), os.getegid(), switches=False)
            return
        with self.options.builds_as.lease() as user:
            yield user


def take_over(staging: Path, user: JobUser) -> None:
    """Make what the build's uid made the worker's, refusing anything but a directory.

    Raises:
        EnvironmentBuildError: the environment's directory was replaced by something else.
    """
    if not user.switches:
        return
    info = os.lstat(staging)
    if not stat.S_ISDIR(info.st_mode):
        raise EnvironmentBuildError("the build replaced its environment directory")
    for directory, names, files in os.walk(staging):  # links are not followed
        for path in (directory, *(os.path.join(directory, name) for name in (*names, *files))):
            os.chown(path, 0, 0, follow_symlinks=False)


def _write_info(
    target: Path, key: str, interpreter: Interpreter, requirements: Sequence[str], installer: str
) -> None:
    info = {
        "key": key,
        "image": interpreter.image,
        "interpreter": str(interpreter.path),
        "python_version": interpreter.version,
        "requirements": list(requirements),
        "installer": installer,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (target / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")


def make_read_only(root: Path, keep_top: bool = False) -> None:
    """Clear every write bit under `root` (but the owner's on `root` itself with
    `keep_top`); symbolic links (to the interpreter) are skipped."""
    for directory, _, files in os.walk(root):
        for path in [directory, *(os.path.join(directory, name) for name in files)]:
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                continue
            cleared = stat.S_IMODE(mode) & ~WRITE_BITS
            if keep_top and path == str(root):
                cleared |= stat.S_IWUSR
            os.chmod(path, cleared)


def remove_tree(root: Path) -> None:
    """Delete `root` even if it was made read-only."""
    if not os.path.lexists(root):
        return
    for directory, _, _ in os.walk(root):
        if not os.path.islink(directory):
            os.chmod(directory, stat.S_IMODE(os.lstat(directory).st_mode) | stat.S_IRWXU)
    shutil.rmtree(root, ignore_errors=True)
