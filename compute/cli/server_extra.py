"""The commands that run the service need the `server` extra; the client CLI does not.

`pip install opencompute` is the SDK and the client commands alone, for machines that
only submit work. The service commands (`compute up`, `compute db`, `compute token`)
import their server pieces inside the command, through :func:`server_imports`, so that a
missing extra is one clear line rather than a traceback, and `compute --help` still works.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

INSTALL_SERVER = 'pip install "opencompute[server]"'
# Modules of this project: one of them missing is a broken install or a bug, not a missing
# extra, and its traceback is the useful answer.
OWN_PACKAGES = frozenset({"compute", "api", "worker"})


class ServerMissing(click.ClickException):
    """A service command ran where only the SDK and the client CLI are installed."""


@contextmanager
def server_imports(command: str) -> Iterator[None]:
    """Turn the import of a library of the `server` extra that fails into a one-line
    error naming `command`, the missing module and how to install the extra."""
    try:
        yield
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if not missing or missing.split(".")[0] in OWN_PACKAGES:
            raise
        raise ServerMissing(
            f"{command} needs the service (no module named {missing!r}): {INSTALL_SERVER}"
        ) from None
