"""Map a function's `image` (`python3.11:latest`) to a Python interpreter on this worker.

The original service ran each image as a container; here an image names a base Python
version, served by whichever interpreter of that version the worker finds: the
operator's configured list first, then the worker's own interpreter, then `python3.X`
on PATH, then pyenv's versions. When jobs run as another user than the worker, every
interpreter is probed as that user, so none is offered that its jobs could not run (one
under root's home, say).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ImageError

logger = logging.getLogger(__name__)

IMAGE = re.compile(r"^python3\.(?P<minor>\d{1,2})(:latest)?$")
EXECUTABLE = re.compile(r"^python3\.(?P<minor>\d{1,2})$")
MIN_MINOR = 8
PROBE_TIMEOUT_SECONDS = 15
PROBE_WORKERS = 8
PROBE = (
    "import json, os, platform, sys;"
    "print(json.dumps({'version': platform.python_version(),"
    " 'implementation': sys.implementation.name, 'machine': platform.machine(),"
    " 'base': os.path.realpath(getattr(sys, '_base_executable', sys.executable)),"
    " 'minor': sys.version_info[1], 'major': sys.version_info[0]}))"
)


@dataclass(frozen=True)
class Interpreter:
    """A base interpreter that environments for one image are created from."""

    image: str  # canonical image name, `python3.11:latest`
    path: Path  # the base executable given to `uv venv --python`
    version: str  # `3.11.7`
    identity: str  # everything an environment built from it depends on; part of the cache key

    @property
    def minor(self) -> int:
        return parse_image(self.image)


def parse_image(image: str) -> int:
    """The Python 3 minor version `image` names, or `ImageError` if it names none."""
    match = IMAGE.match(image.strip()) if isinstance(image, str) else None
    if not match:
        raise ImageError(f"image {image!r} is not of the form 'python3.X:latest'")
    return int(match["minor"])


def image_name(minor: int) -> str:
    return f"python3.{minor}:latest"


class InterpreterRegistry:
    """The interpreters this worker can build environments from, found once and kept.

    `runs_as` is the uid and gid jobs run as, when they are not the worker's own.
    """

    def __init__(
        self,
        configured: Sequence[str | Path] = (),
        *,
        search_path: bool = True,
        pyenv_root: Path | None = None,
        runs_as: tuple[int, int] | None = None,
    ) -> None:
        self._configured = [Path(p) for p in configured]
        self._search_path = search_path
        self._pyenv_root = pyenv_root if pyenv_root is not None else Path.home() / ".pyenv"
        self._runs_as = runs_as
        self._found: dict[int, Interpreter] | None = None
        self._lock = threading.Lock()

    def interpreters(self) -> dict[int, Interpreter]:
        """Interpreters by Python 3 minor version."""
        with self._lock:
            if self._found is None:
                self._found = self._discover()
            return self._found

    def images(self) -> list[str]:
        """The image names this worker serves, oldest Python first."""
        return [self.interpreters()[minor].image for minor in sorted(self.interpreters())]

    def resolve(self, image: str) -> Interpreter:
        """The interpreter for `image`; `ImageError` lists the available images otherwise."""
        available = ", ".join(self.images()) or "none"
        try:
            minor = parse_image(image)
        except ImageError as error:
            raise ImageError(f"{error}; available images: {available}") from None
        if minor not in self.interpreters():
            hint = ""
            if self._runs_as is not None:
                hint = (
                    f" (only interpreters the job user, uid {self._runs_as[0]}, can run are "
                    "offered: one under a home directory closed to other users is not)"
                )
            raise ImageError(
                f"image {image!r} is not available; available images: {available}{hint}"
            )
        return self.interpreters()[minor]

    def _discover(self) -> dict[int, Interpreter]:
        candidates = [*self._configured, *_unique(self._candidates())]
        own = _running()
        if self._runs_as is not None:
            candidates.append(own.path)  # trusted only once the job user ran it too
        # Probing starts an interpreter (a pyenv shim, a shell script, is slow): in parallel.
        with ThreadPoolExecutor(max_workers=PROBE_WORKERS) as pool:
            probed = list(pool.map(lambda path: probe(path, self._runs_as), candidates))
        running: Interpreter | None = own
        if self._runs_as is not None:
            running = probed.pop()
            if running is None:
                logger.info(
                    "not offering %s: the job user (uid %d) cannot run it",
                    own.path,
                    self._runs_as[0],
                )
        found: dict[int, Interpreter] = {}
        # Order is preference: the operator's list, this worker's Python, PATH, pyenv.
        ordered = [*probed[: len(self._configured)], running, *probed[len(self._configured) :]]
        for interpreter in ordered:
            if interpreter is not None and interpreter.minor >= MIN_MINOR:
                found.setdefault(interpreter.minor, interpreter)
        return found

    def _candidates(self) -> Iterable[Path]:
        if self._search_path:
            for directory in os.get_exec_path():
                yield from _sorted_glob(Path(directory), "python3.*")
        yield from _sorted_glob(self._pyenv_root / "versions", "3.*/bin/python3.*")


def probe(path: Path, runs_as: tuple[int, int] | None = None) -> Interpreter | None:
    """Run `path` to learn its version; None if it is not a working Python 3.

    Args:
        runs_as: the uid and gid to run it as, to learn whether that user can.
    """
    as_user: dict[str, Any] = {}
    if runs_as is not None:
        # From "/": the worker's own directory may be closed to that user.
        as_user = {"user": runs_as[0], "group": runs_as[1], "extra_groups": [], "cwd": "/"}
    try:
        completed = subprocess.run(
            [str(path), "-I", "-c", PROBE],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_SECONDS,
            check=True,
            **as_user,
        )
        facts = json.loads(completed.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as error:
        logger.debug("not an interpreter: %s (%s)", path, error)
        return None
    if facts.get("major") != 3:
        return None
    return _interpreter(facts)


def _running() -> Interpreter:
    facts = {
        "version": platform.python_version(),
        "implementation": sys.implementation.name,
        "machine": platform.machine(),
        "base": os.path.realpath(getattr(sys, "_base_executable", sys.executable)),
        "minor": sys.version_info[1],
    }
    return _interpreter(facts)


def _interpreter(facts: dict[str, object]) -> Interpreter:
    # The base executable, not a venv's or pyenv shim's: environments link to it directly.
    base = Path(str(facts["base"]))
    identity = "{implementation}-{version}-{machine}:{base}".format(**facts)
    return Interpreter(image_name(int(str(facts["minor"]))), base, str(facts["version"]), identity)


def _unique(paths: Iterable[Path]) -> list[Path]:
    seen: set[str] = set()
    unique = []
    for path in paths:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            unique.append(path)
    return unique


def _sorted_glob(directory: Path, pattern: str) -> list[Path]:
    try:
        return sorted(p for p in directory.glob(pattern) if EXECUTABLE.match(p.name))
    except OSError:
        return []
