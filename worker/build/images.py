"""Map a function's `image` (`python3.11:latest`) to a Python interpreter on this worker.

The original service ran each image as a container; here an image names a base Python
version, served by whichever interpreter of that version the worker finds: the
operator's configured list first, then the worker's own interpreter, then `python3.X`
on PATH, then pyenv's versions. When jobs run as another user than the worker, every
interpreter is probed as that user, so none is offered that its jobs could not run; one
it cannot reach (under root's home, say) is offered through a linked copy of its
installation under the work directory (`interpreter_copies.py`).
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
from .interpreter_copies import NotCopyable, check_copyable, reachable_installation

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
    " 'prefix': os.path.realpath(sys.base_prefix),"
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

    `runs_as` is the uid and gid jobs run as, when they are not the worker's own;
    `copies_root`, where interpreters they cannot reach are given a reachable copy (none
    is made when it is None).
    """

    def __init__(
        self,
        configured: Sequence[str | Path] = (),
        *,
        search_path: bool = True,
        pyenv_root: Path | None = None,
        runs_as: tuple[int, int] | None = None,
        copies_root: Path | None = None,
    ) -> None:
        self._configured = [Path(p) for p in configured]
        self._search_path = search_path
        self._pyenv_root = pyenv_root if pyenv_root is not None else Path.home() / ".pyenv"
        self._runs_as = runs_as
        self._copies_root = copies_root
        self._found: dict[int, Interpreter] | None = None
        # Interpreters only the worker can run, by minor version: copied when first needed.
        self._copyable: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def interpreters(self) -> dict[int, Interpreter]:
        """Interpreters jobs can run now, by Python 3 minor version."""
        with self._lock:
            if self._found is None:
                self._found = self._discover()
            return self._found

    def images(self) -> list[str]:
        """The image names this worker serves, oldest Python first."""
        minors = {*self.interpreters(), *self._copyable}
        return [image_name(minor) for minor in sorted(minors)]

    def releases(self) -> dict[str, str]:
        """The Python release serving each image this worker serves: for one its job
        users cannot run yet, the release of the installation it will copy for them."""
        found = self.interpreters()
        with self._lock:
            releases = {minor: str(facts["version"]) for minor, facts in self._copyable.items()}
        releases.update((minor, interpreter.version) for minor, interpreter in found.items())
        return {image_name(minor): releases[minor] for minor in sorted(releases)}

    def resolve(self, image: str) -> Interpreter:
        """The interpreter for `image`; `ImageError` lists the available images otherwise."""
        available = ", ".join(self.images()) or "none"
        try:
            minor = parse_image(image)
        except ImageError as error:
            raise ImageError(f"{error}; available images: {available}") from None
        found = self.interpreters().get(minor) or self._copied(minor)
        if found is None:
            hint = ""
            if self._runs_as is not None:
                hint = (
                    f" (only interpreters the job user, uid {self._runs_as[0]}, can run are "
                    "offered: one it cannot reach is offered through a copy, if it can be made)"
                )
            raise ImageError(
                f"image {image!r} is not available; available images: {available}{hint}"
            )
        return found

    def _discover(self) -> dict[int, Interpreter]:
        candidates = [*self._configured, *_unique(self._candidates())]
        own = _running()
        if self._runs_as is not None:
            candidates.append(own.path)  # trusted only once the job user ran it too
        # Probing starts an interpreter (a pyenv shim, a shell script, is slow): in parallel.
        with ThreadPoolExecutor(max_workers=PROBE_WORKERS) as pool:
            probed = list(pool.map(self._probe_for_jobs, candidates))
        running: Interpreter | dict[str, Any] | None = own
        if self._runs_as is not None:
            running = probed.pop()
        found: dict[int, Interpreter] = {}
        # Order is preference: the operator's list, this worker's Python, PATH, pyenv.
        ordered = [*probed[: len(self._configured)], running, *probed[len(self._configured) :]]
        for interpreter in ordered:
            if isinstance(interpreter, Interpreter) and interpreter.minor >= MIN_MINOR:
                found.setdefault(interpreter.minor, interpreter)
        for facts in ordered:
            if isinstance(facts, dict) and int(facts["minor"]) >= MIN_MINOR:
                self._copyable.setdefault(int(facts["minor"]), facts)
        for minor in found:
            self._copyable.pop(minor, None)
        return found

    def _probe_for_jobs(self, path: Path) -> Interpreter | dict[str, Any] | None:
        """`path` as jobs would run it, else what it says of itself when only the worker
        can run it (a candidate for a copy), else None."""
        found = probe(path, self._runs_as)
        if found is not None or self._runs_as is None or self._copies_root is None:
            return found
        return probe_facts(path)

    def _copied(self, minor: int) -> Interpreter | None:
        """A reachable copy of the copyable interpreter of `minor`, made once."""
        with self._lock:
            facts = self._copyable.get(minor)
            if facts is None or self._copies_root is None or self._runs_as is None:
                return None
            try:
                found = self._reachable_copy(facts)
            except (NotCopyable, OSError) as error:
                logger.warning(
                    "not offering %s: the job user (uid %d) cannot run it, and no copy it "
                    "can run could be made (%s)",
                    facts["base"],
                    self._runs_as[0],
                    error,
                )
                del self._copyable[minor]
                return None
            assert self._found is not None
            self._found[minor] = found
            del self._copyable[minor]
            return found

    def _reachable_copy(self, facts: dict[str, Any]) -> Interpreter:
        assert self._copies_root is not None
        prefix, base = Path(str(facts["prefix"])), Path(str(facts["base"]))
        check_copyable(prefix, base, int(facts["minor"]))
        copy = reachable_installation(prefix, str(facts["version"]), self._copies_root)
        found = probe(copy / base.relative_to(prefix), self._runs_as)
        if found is None:
            raise NotCopyable(f"its copy at {copy} does not run as the job user")
        if found.version != facts["version"]:
            # It loaded another libpython than its own: one its RUNPATH does not name.
            raise NotCopyable(f"its copy at {copy} runs as Python {found.version}")
        logger.info("offering %s to jobs through its copy at %s", base, copy)
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
    facts = probe_facts(path, runs_as)
    return _interpreter(facts) if facts is not None else None


def probe_facts(path: Path, runs_as: tuple[int, int] | None = None) -> dict[str, Any] | None:
    """What `path` says of itself (version, base executable, prefix), run as `runs_as`."""
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
    if not isinstance(facts, dict) or facts.get("major") != 3:
        return None
    return facts


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
