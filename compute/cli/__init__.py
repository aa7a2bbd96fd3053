"""The `compute` command line: run the service on one machine and administer it.

Each command group lives in its own module and is registered on :func:`main` here::

    compute up                      run API, worker and broker together
    compute token create            issue a token for a user
    compute db upgrade              apply the database migrations
    compute login                   save a service URL and token for the SDK
    compute functions list          list your functions
    compute jobs list               list your jobs
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
