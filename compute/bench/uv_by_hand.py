"""Figure 7's baseline: the environments the service builds, made by hand with uv.

`uv venv` and `uv pip install` with uv's own defaults, from the interpreter the service
makes environments from, in a directory of the run's, each install with the uv cache it
is given: a new one for a cold install, one that holds the packages already for a warm
one. Packages come from where the service's builds get them: the service's own
settings if any is set, else the environment `compute up` was given, whose `PIP_*`
index variables, which uv ignores, are handed to it as the `UV_*` ones the service's
builds would use (worker/build/sources.py, restated: the SDK side imports no part of the
service).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

# Far beyond a small install, short of holding up the run for long when the index hangs.
UV_TIMEOUT_SECONDS = 180.0
# The service's settings that, when any is set, are the only package sources.
SERVICE_INDEX = "COMPUTE_PACKAGE_INDEX_URL"
SERVICE_EXTRA_INDEXES = "COMPUTE_EXTRA_INDEX_URLS"
SERVICE_WHEELHOUSE = "COMPUTE_WHEELHOUSE"
# The pip variables the service's builds fall back on, each with the uv variables that
# take precedence over it; uv reads the first of them, and ignores the pip one.
PIP_FALLBACKS = {
    "PIP_INDEX_URL": ("UV_INDEX_URL", "UV_DEFAULT_INDEX"),
    "PIP_EXTRA_INDEX_URL": ("UV_EXTRA_INDEX_URL", "UV_INDEX"),
    "PIP_FIND_LINKS": ("UV_FIND_LINKS",),
}


class UvFailed(RuntimeError):
    """A uv command failed or timed out; the message ends with what it printed last."""


@dataclass(frozen=True)
class Install:
    """A new environment made by hand, and how long each command took."""

    environment: Path
    venv_seconds: float
    install_seconds: float

    @property
    def seconds(self) -> float:
        return self.venv_seconds + self.install_seconds


def find_uv() -> Path:
    """The uv the service's builds run: the `uv` package's, else the one on PATH."""
    with contextlib.suppress(ImportError, FileNotFoundError):
        import uv

        return Path(uv.find_uv_bin())
    found = shutil.which("uv")
    if found is None:
        raise UvFailed("uv is not installed: the service's builds would use pip")
    return Path(found)


def source_arguments(environment: Mapping[str, str]) -> list[str]:
    """uv's options for the service's own package sources, when any is set."""
    index = environment.get(SERVICE_INDEX)
    extras = environment.get(SERVICE_EXTRA_INDEXES, "").replace(",", " ").split()
    wheelhouse = environment.get(SERVICE_WHEELHOUSE)
    arguments = ["--find-links", wheelhouse] if wheelhouse else []
    if wheelhouse and not index and not extras:
        arguments.append("--no-index")
    if index:
        arguments += ["--index-url", index]
    for url in extras:
        arguments += ["--extra-index-url", url]
    return arguments


def uv_environment(environment: Mapping[str, str], cache: Path) -> dict[str, str]:
    """`environment` with `cache` as uv's cache, and the sources the service's builds use."""
    found = dict(environment)
    for pip_name, uv_names in PIP_FALLBACKS.items():
        if source_arguments(environment):
            # The service's settings are then the whole story, as for its builds.
            for name in (pip_name, *uv_names):
                found.pop(name, None)
            found["UV_NO_CONFIG"] = "1"
        elif environment.get(pip_name) and not any(environment.get(n) for n in uv_names):
            found[uv_names[0]] = environment[pip_name]
    found.update(UV_CACHE_DIR=str(cache), UV_PYTHON_DOWNLOADS="never")
    return found


class UvByHand:
    """Environments and uv caches in a directory of their own, removed on exit."""

    def __init__(self, parent: Path, environment: Mapping[str, str], interpreter: Path) -> None:
        """
        Args:
            parent: Where the directory is made.
            environment: The environment `compute up` was given.
            interpreter: What `uv venv` makes environments from.
        """
        self.root = Path(tempfile.mkdtemp(prefix="uv-by-hand-", dir=parent))
        self.environment = environment
        self.interpreter = interpreter
        self.uv = find_uv()

    def __enter__(self) -> UvByHand:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def cache(self, name: str) -> Path:
        """The uv cache called `name`: new on first use, shared by later ones."""
        return self.root / "caches" / name

    def install(self, requirements: Sequence[str], cache: Path) -> Install:
        """`uv venv` into a new directory, then `uv pip install` the requirements into it.

        Raises:
            UvFailed: Either command failed.
        """
        environment = Path(tempfile.mkdtemp(prefix="env-", dir=self.root))
        started = time.perf_counter()
        self.run(["venv", "--python", str(self.interpreter), str(environment)], cache)
        created = time.perf_counter()
        self.add(environment, requirements, cache)
        return Install(environment, created - started, time.perf_counter() - created)

    def add(self, environment: Path, requirements: Sequence[str], cache: Path) -> float:
        """Seconds `uv pip install` took to install the requirements into `environment`,
        or to find them there already.

        Raises:
            UvFailed: uv failed.
        """
        python = environment / "bin" / "python"
        arguments = source_arguments(self.environment)
        started = time.perf_counter()
        self.run(["pip", "install", "--python", str(python), *arguments, *requirements], cache)
        return time.perf_counter() - started

    def run(self, arguments: list[str], cache: Path) -> None:
        """Run uv with `arguments` in the run's directory, `cache` as its cache."""
        try:
            subprocess.run(
                [str(self.uv), *arguments],
                cwd=self.root,
                env=uv_environment(self.environment, cache),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=UV_TIMEOUT_SECONDS,
                check=True,
            )
        except subprocess.CalledProcessError as error:
            last = (error.stderr or error.stdout or "").strip().splitlines()[-1:]
            raise UvFailed(f"uv {arguments[0]} failed: {' '.join(last)}") from error
        except subprocess.TimeoutExpired as error:
            raise UvFailed(f"uv {arguments[0]} took over {UV_TIMEOUT_SECONDS:g} s") from error
