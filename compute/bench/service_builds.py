"""Figure 7's service side: a function saved with requirements and waited on until it is
built, with what its build log says and the interpreter its environment was made from."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from compute import Function
from compute.statuses import FunctionStatus

from .functions import wait_until_built
from .noop import noop
from .service import Service, cached_work_dir

# worker/build/report.py's lines: the environment a build used (its key's first 16 digits)
# and whether it was found built; how long the worker took.
ENVIRONMENT = re.compile(r"^Environment ([0-9a-f]{16}): (cache hit|built in)", re.MULTILINE)
BUILD_SUCCEEDED = re.compile(r"^Build succeeded in ([0-9.]+) s$", re.MULTILINE)
# What uv prints when it downloaded and unpacked packages its cache did not hold.
DOWNLOADED = re.compile(r"^Prepared \d+ packages? in ", re.MULTILINE)
COMMAND = re.compile(r"^\$ (.*)$", re.MULTILINE)
# What worker/build/environments.py writes into every environment it builds.
INFO_FILE = "compute-environment.json"
WORK_DIR_VARIABLE = "COMPUTE_WORK_DIR"


class BuildFailed(RuntimeError):
    """The service's build of a function failed; the message ends with its build log's."""


@dataclass(frozen=True)
class ServiceBuild:
    """One function saved and built by the service, and its build log."""

    save_seconds: float  # `save()`: bundling, creating, uploading, asking for the build
    build_seconds: float  # from `save()` returning until the API said built
    log: str

    @property
    def seconds(self) -> float:
        return self.save_seconds + self.build_seconds

    @property
    def downloaded(self) -> bool:
        return DOWNLOADED.search(self.log) is not None

    def details(self) -> dict[str, object]:
        """Its times, and what its build log says: how long the worker took, whether it
        found the environment built, whether uv downloaded, and the commands it ran."""
        logged = BUILD_SUCCEEDED.search(self.log)
        environment = ENVIRONMENT.search(self.log)
        return {
            "save_seconds": self.save_seconds,
            "build_seconds": self.build_seconds,
            "worker_seconds": float(logged.group(1)) if logged else None,
            "cache_hit": environment is not None and environment.group(2) == "cache hit",
            "downloaded": self.downloaded,
            "commands": COMMAND.findall(self.log),
        }


def build(name: str, requirements: list[str], poll_seconds: float) -> ServiceBuild:
    """Save a new no-op function with `requirements`, wait until it is built, polling
    every `poll_seconds`, then delete it (its environment stays, for later builds).

    Raises:
        BuildFailed: The build failed.
        TimeoutError: It was not built in time.
    """
    function = Function(noop, name=name, requirements=requirements)
    started = time.perf_counter()
    function.save()
    saved = time.perf_counter()
    wait_until_built(function, poll_seconds)
    built = time.perf_counter()
    log = function.read_build_log()
    failed = function.status == FunctionStatus.BUILD_FAILED
    function.delete()
    if failed:
        raise BuildFailed(f"the service's build failed: {failure(log)}")
    return ServiceBuild(saved - started, built - saved, log)


def failure(log: str) -> str:
    """Why a build failed: its log's last line, after the installer's error if it printed one."""
    lines = log.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    return "; ".join([*errors[-1:], *lines[-1:]])


def interpreter(service: Service, function: Function) -> Path:
    """The interpreter the environment of a function the service built was made from:
    a copy of the worker's installation, should the job uids not reach that.

    Raises:
        FileNotFoundError: The build log names no environment, or it was not found.
    """
    found = ENVIRONMENT.search(function.read_build_log())
    if found is None:
        raise FileNotFoundError(f"the build log of {function.id} names no environment")
    for work_dir in work_dirs(service):
        for info in sorted((work_dir / "envs").glob(f"{found.group(1)}*/{INFO_FILE}")):
            return Path(json.loads(info.read_text())["interpreter"])
    raise FileNotFoundError(f"the environment {found.group(1)} is in no work directory")


def work_dirs(service: Service) -> list[Path]:
    """Where the service's worker may keep its work directory (compute/server/settings.py's
    `default_work_dir`, restated: the SDK side imports no part of the service)."""
    configured = service.env.get(WORK_DIR_VARIABLE)
    if configured:
        return [Path(configured)]
    return [service.data_dir / "work", cached_work_dir(service.data_dir)]
