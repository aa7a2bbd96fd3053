"""The `compute` command line: use a compute service, or run one on this machine.

Each command group lives in its own module and is registered on :func:`main` here::

    compute login                   save a service URL and token for the SDK
    compute functions list          list your functions
    compute jobs list               list your jobs
    compute up                      run API, worker and broker together
    compute token create            issue a token for a user
    compute db upgrade              apply the database migrations

The first three are the client: they need the SDK alone. The others run or administer
the service and need the `server` extra, which they import only when they run (see
`server_extra`), so that `compute --help` and the client work without it.
"""

from __future__ import annotations

import click

from .db import db
from .login import login
from .resources import functions, jobs
from .token import token
from .up import up

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Run and use a self-hosted batch compute service."""


for command in (up, token, db, login, functions, jobs):
    main.add_command(command)
