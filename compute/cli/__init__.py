"""The `compute` command line: use a compute service, or run one on this machine.

Each command group lives in its own module and is registered on :func:`main` here::

    compute login                   check a service URL and token, then save them for the SDK
    compute whoami                  the user the saved token names
    compute images                  the images the service's workers offer
    compute functions list|get      your functions, newest first; one with its job counts
    compute functions build-log F   a function's build log
    compute functions cancel F      cancel a function's pending and running jobs
    compute functions delete F      delete a function with its jobs (asks unless --yes)
    compute jobs list|get           your jobs, newest first; one with why it failed
    compute jobs logs [-f] JOB      what a job printed; -f follows it while it runs
    compute jobs result JOB         the value a job returned
    compute jobs rerun --function F resubmit a function's failed jobs
    compute jobs cancel JOB...      cancel jobs
    compute up                      run API, worker and broker together
    compute serve                   run the API alone (a deployment's web machine)
    compute worker                  run one worker node (a deployment's worker machine)
    compute token create|list|revoke  issue, list and revoke tokens
    compute admin-link              a one-time URL signing a user in to the admin pages
    compute db upgrade              apply the database migrations

The commands down to `jobs cancel` are the client: they need the SDK alone. The others
run or administer the service and need the `server` extra, which they import only when
they run (see `server_extra`), so that `compute --help` and the client work without it.
Every command exits with a code of `exit_codes`.
"""

from __future__ import annotations

import click

from .admin_link import admin_link
from .db import db
from .functions import functions
from .images import images
from .jobs import jobs
from .login import login
from .nodes import serve, worker
from .token import token
from .up import up
from .whoami import whoami

__all__ = ["main"]

DISTRIBUTION = "opencompute"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name=DISTRIBUTION, prog_name="compute")
def main() -> None:
    """Run and use a self-hosted batch compute service."""


for command in (up, serve, worker, token, admin_link, db, login, whoami, images, functions, jobs):
    main.add_command(command)
