"""Create a virtual environment and install requirements into it, with `uv` or pip.

Every command runs in its own session under one deadline, in a scratch directory the
build owns, with a scrubbed environment: installing an sdist runs its build backend,
code the function's owner chose, which must not see the worker's secrets. Package
sources, proxies and TLS trust come only from the operator (the service's settings and
the worker's own environment: `sources.py`); configuration files found near the scratch
directory or in the bundle are ignored, so nothing there can redirect the build.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from compute.server.redaction import Redactor, secret_values

from ..execution.job_user import JobIdentities, JobUser, build_identities, job_identities
from ..execution.runtime import reachable_copy
from ..execution.sandbox import JobSandbox
from .errors import EnvironmentBuildError
from .operator_files import closed_to_others, readable_copies
from .sources import InstallerName, PackageSources, package_sources

if TYPE_CHECKING:
    from compute.server.settings import Settings

logger = logging.getLogger(__name__)

MAX_LOG_BYTES = 1024 * 1024
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"
# Where the operator's CA bundles and uv.toml are copied for a build, beside its log.
FILES_DIRECTORY = "operator-files"
UV_PROBE_SECONDS = 30


@dataclass(frozen=True)
class InstallerOptions:
    """How this worker installs packages; set by the operator, never by a function.

    Attributes:
        index_url: the package index to use instead of PyPI.
        extra_index_urls: indexes searched besides it.
        wheelhouse: a directory of wheels. Alone it is the only source (`--no-index
            --find-links`); with an index it is searched first.
        timeout_seconds: the deadline for creating and installing one environment.
        installer: `uv`, `pip` (`python -m venv` and pip), or `auto` (uv when found).
        only_binary: install wheels only. An sdist's build backend is code the
            function's owner chose, run on the worker at build time; this refuses it.
        uv_cache_dir: uv's cache; uv's default (under HOME) when None.
        environment: the worker's environment (what of it concerns installers). Its
            proxies and TLS trust always reach the installer; its index settings
            (`UV_INDEX_URL`, `PIP_INDEX_URL`...) are used when none of `index_url`,
            `extra_index_urls` and `wheelhouse` is set (see `sources.py`).
        builds_as: uids to lease one from for each build, which then runs unprivileged
            in a namespace of its own (`sandbox.py`); None runs builds as the worker.
    """

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    wheelhouse: Path | None = None
    timeout_seconds: float = 900.0
    installer: Literal["auto", "uv", "pip"] = "auto"
    only_binary: bool = False
    uv_cache_dir: Path | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    builds_as: JobIdentities | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> InstallerOptions:
        """Options of the service's settings (`PACKAGE_INDEX_URL`, `EXTRA_INDEX_URLS`,
        `WHEELHOUSE`, `INSTALLER_ENVIRONMENT`, ...).

        Raises:
            ValueError: the job uid range is invalid (see `job_identities`).
        """
        jobs = job_identities(settings)
        return cls(
            index_url=settings.package_index_url,
            extra_index_urls=settings.extra_index_urls,
            wheelhouse=Path(settings.wheelhouse) if settings.wheelhouse else None,
            timeout_seconds=settings.build_timeout_seconds,
            only_binary=settings.only_binary_packages,
            environment=settings.installer_environment,
            builds_as=build_identities(settings) if jobs.switches else None,
        )

    def sources(self) -> PackageSources:
        """Where packages come from and how they are reached."""
        return package_sources(
            self.environment, self.index_url, self.extra_index_urls, self.wheelhouse
        )

    def source_arguments(
        self, installer: InstallerName = "uv", sources: PackageSources | None = None
    ) -> list[str]:
        """The install command's options that say where packages come from (`sources`,
        by default this worker's) and which kinds it may install."""
        arguments = (sources or self.sources()).arguments(installer)
        if self.only_binary:
            arguments += ["--only-binary", ":all:"]
        return arguments

    def network_urls(self) -> list[str]:
        """Every index, find-links URL and proxy builds connect to (for the network policy)."""
        return self.sources().network_urls()

    def secrets(self) -> list[str]:
        """What no log may show: the index URLs' credentials and those among `environment`."""
        urls = {f"index_url_{n}": url for n, url in enumerate(self.extra_index_urls)}
        return secret_values({"index_url": self.index_url, **urls, **self.environment})


def find_uv() -> Path | None:
    """The uv binary: the one the `uv` package ships, else `uv` on PATH."""
    with contextlib.suppress(ImportError, FileNotFoundError):
        import uv

        return Path(uv.find_uv_bin())
    found = shutil.which("uv")
    return Path(found) if found else None


class Installer:
    """Runs one environment's commands and collects their output for the build log.

    The output names the directories the installer works in by placeholders
    (`<environment>`, `<temp>`): they are the worker's, and only it knows them.
    """

    def __init__(
        self,
        options: InstallerOptions,
        scratch: Path,
        user: JobUser | None = None,
        log_path: Path | None = None,
        visible: Sequence[Path] = (),
    ) -> None:
        """
        Args:
            scratch: the build's own directory (its HOME, TMPDIR and caches); `user`'s.
            user: who the commands run as; the worker itself when None.
            log_path: where the commands' output is kept, somewhere `user` cannot write.
            visible: what the commands must see besides `scratch` and the sources'
                directories when they run in a namespace (the environment's directory,
                the interpreter).
        """
        self.options = options
        self.scratch = scratch
        self.user = user if user is not None and user.switches else None
        self._placeholders: dict[Path, str] = {scratch: "<temp>"}
        if log_path is not None:
            self._placeholders[log_path.parent] = "<build>"
        self.log_path = log_path or scratch / "installer.log"
        self.deadline = time.monotonic() + options.timeout_seconds
        uv = find_uv() if options.installer != "pip" else None
        if uv is None and options.installer == "uv":
            raise EnvironmentBuildError("the uv installer is not available on this worker")
        if uv is not None and self.user is not None:
            uv = reachable_copy(uv)  # the service's installation may be closed to the build
        self.uv = uv
        self.sources = options.sources()
        self.sandbox = self._prepare(self.user, visible) if self.user is not None else None

    def _prepare(self, user: JobUser, visible: Sequence[Path]) -> JobSandbox:
        """Lay out what `user` needs (its own /tmp, its copies of the operator's files)
        and return the namespace its commands run in."""
        private_tmp = self.scratch / "tmp"
        private_tmp.mkdir(mode=0o700, exist_ok=True)
        user.give([private_tmp])
        files = self.log_path.parent / FILES_DIRECTORY
        self.sources = self.sources.with_files(readable_copies(self.sources.files(), files, user))
        directories = self.sources.directories()
        self._note_closed(directories)
        tools = [self.uv.parent] if self.uv is not None else []
        return JobSandbox(private_tmp, [self.scratch, *visible, files, *directories, *tools])

    @property
    def name(self) -> InstallerName:
        return "uv" if self.uv else "pip"

    def create(self, interpreter: Path, target: Path) -> None:
        """Create an empty environment at `target` from the base `interpreter`."""
        self._placeholders[target] = "<environment>"
        self._placeholders[interpreter] = "<python>"
        if self.uv:
            # Relocatable: the environment is built under a temporary name and renamed.
            # The directory exists already, made for the build's uid.
            command = [
                str(self.uv),
                "venv",
                *self.sources.config_arguments(),
                "--allow-existing",
                "--relocatable",
                "--no-python-downloads",
                "--python",
                str(interpreter),
                str(target),
            ]
        else:
            command = [str(interpreter), "-m", "venv", str(target)]
        self.run(command, "creating the environment")

    def install(self, python: Path, requirements_file: Path) -> None:
        """Install the requirements listed in `requirements_file` into `python`'s environment."""
        sources = self.options.source_arguments(self.name, self.sources)
        if self.uv:
            # Copies, not hard links into uv's cache, so the read-only environment shares
            # no inode with anything a later build writes.
            command = [
                str(self.uv),
                "pip",
                "install",
                *self.sources.config_arguments(),
                "--python",
                str(python),
                "--link-mode",
                "copy",
                "--compile-bytecode",
                *sources,
                "-r",
                str(requirements_file),
            ]
        else:
            command = [
                str(python),
                "-m",
                "pip",
                "install",
                "--isolated",
                "--no-input",
                "--disable-pip-version-check",
                *sources,
                "-r",
                str(requirements_file),
            ]
        self.run(command, "installing the requirements")

    def run(self, command: list[str], step: str) -> None:
        """Run `command` to completion before the deadline, or end its whole session."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise self._timed_out()
        with self.log_path.open("ab") as log:
            log.write(f"$ {' '.join(self._shown(command))}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command,
                cwd=self.scratch,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=self._confine if self.user is not None else None,
            )
            try:
                code = process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                _kill_session(process)
                raise self._timed_out() from None
        if code != 0:
            raise EnvironmentBuildError(f"{step} failed (exit status {code})", self.output())

    def _note_closed(self, directories: list[Path]) -> None:
        # Left as they are (copying a wheelhouse per build is no option): the installer's
        # error would only say it found nothing, so the log says why first.
        closed = [directory for directory in directories if closed_to_others(directory)]
        if not closed:
            return
        with self.log_path.open("ab") as log:
            for directory in closed:
                logger.warning("builds cannot read %s: let other users read it", directory)
                log.write(f"note: the build cannot read {directory}\n".encode())

    def _confine(self) -> None:
        # In the child, as root: its own /tmp and no service's socket, then the build's uid.
        assert self.sandbox is not None and self.user is not None
        self.sandbox.enter()
        self.user.become()

    def output(self) -> str:
        """Everything the commands printed so far, or its tail if it is very long.

        Secrets are left in: the build log redacts them with the rest of its text.
        """
        try:
            with self.log_path.open("rb") as log:
                size = log.seek(0, os.SEEK_END)
                log.seek(max(0, size - MAX_LOG_BYTES))
                text = log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""
        text = Redactor(paths=self._placeholders, urls=False)(text)
        return text if size <= MAX_LOG_BYTES else "[... earlier output omitted ...]\n" + text

    def _shown(self, command: list[str]) -> list[str]:
        # Where the service is installed is the worker's business: uv is just `uv`.
        if self.uv and command[0] == str(self.uv):
            return ["uv", *command[1:]]
        return command

    def _timed_out(self) -> EnvironmentBuildError:
        seconds = self.options.timeout_seconds
        return EnvironmentBuildError(f"build timed out after {seconds:g} s", self.output())

    def _environment(self) -> dict[str, str]:
        environment = {
            "PATH": BASE_PATH,
            "HOME": str(Path.home()),
            "LANG": "C.UTF-8",
            "TMPDIR": str(self.scratch),
            "UV_PYTHON_DOWNLOADS": "never",
        }
        if self.user is not None:
            # Nothing of the worker's: a cache shared between builds of different owners
            # would let one build's code poison another's packages.
            environment.update(HOME=str(self.scratch), UV_CACHE_DIR=str(self.scratch / "cache"))
        elif self.options.uv_cache_dir is not None:
            environment["UV_CACHE_DIR"] = str(self.options.uv_cache_dir)
        environment.update(self.sources.environment(self.name))
        if self.uv and self.sources.system_certs:
            # A TLS-intercepting proxy's CA is usually in the system's store, not uv's own.
            environment[system_certs_variable(self.uv)] = "true"
        return environment


@functools.cache
def system_certs_variable(uv: Path) -> str:
    """What tells this uv to trust the system's certificate store: `UV_SYSTEM_CERTS`, or
    the older `UV_NATIVE_TLS` for a uv that predates it (newer ones warn about that one)."""
    try:
        shown = subprocess.run(
            [str(uv), "pip", "install", "--help"],
            capture_output=True,
            text=True,
            timeout=UV_PROBE_SECONDS,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        shown = ""
    return "UV_SYSTEM_CERTS" if "UV_SYSTEM_CERTS" in shown else "UV_NATIVE_TLS"


def _kill_session(process: subprocess.Popen[bytes]) -> None:
    # The installer's children (build backends, compilers) share its session.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
