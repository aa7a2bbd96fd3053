"""The build log: what a function's owner reads to learn how its build went.

It says which image and interpreter were used, which requirements were installed,
whether the environment came from the cache, what the installer printed, and, when the
build failed, why, in the same words the owner would use to fix it. It never shows the
operator's secrets or the worker's paths: the whole text passes through a redactor.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .environments import Environment
from .images import Interpreter


class BuildReport:
    """Collects a build's log lines as the build proceeds.

    Args:
        image: the image the function asked for.
        redact: applied to the finished log; see `worker.redaction.Redactor`.
    """

    def __init__(self, image: str, redact: Callable[[str], str]) -> None:
        self._redact = redact
        self._started = time.monotonic()
        self._step_started = self._started
        stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        self._lines = [f"Build started {stamp}", f"Image: {image}"]

    def bundle(self, files: int, total_bytes: int) -> None:
        noun = "file" if files == 1 else "files"
        self._lines.append(f"Bundle: {files:,} {noun}, {total_bytes:,} bytes unpacked")

    def requirements(self, requirements: list[str]) -> None:
        if not requirements:
            self._lines.append("Requirements: none")
            return
        self._lines.append(f"Requirements ({len(requirements)}):")
        self._lines.extend(f"  {requirement}" for requirement in requirements)

    def interpreter(self, interpreter: Interpreter) -> None:
        # Its version, not its path: where Python is installed is the worker's business.
        self._lines.append(f"Interpreter: Python {interpreter.version}")

    def environment_started(self) -> None:
        self._step_started = time.monotonic()

    def environment(self, environment: Environment) -> None:
        if environment.cache_hit:
            self._lines.append(f"Environment {environment.key[:16]}: cache hit")
            return
        seconds = time.monotonic() - self._step_started
        self._lines.append(f"Environment {environment.key[:16]}: built in {seconds:.1f} s")
        self.installer_output(environment.installer_log)

    def installer_output(self, text: str) -> None:
        if text.strip():
            self._lines += ["--- installer output ---", text.rstrip("\n"), "--- end ---"]

    def succeeded(self) -> str:
        return self._finish(f"Build succeeded in {self._elapsed():.1f} s")

    def failed(self, reason: str) -> str:
        return self._finish(f"Build failed after {self._elapsed():.1f} s: {reason}")

    def _elapsed(self) -> float:
        return time.monotonic() - self._started

    def _finish(self, last_line: str) -> str:
        return self._redact("\n".join([*self._lines, last_line]) + "\n")
