"""`compute serve` and `compute worker`: one part of the service each, for deployments
that run the API and the workers on separate machines (`compute up` runs both here).

Each is configured by the environment alone, as on every machine of a deployment:
`DATABASE_URL`, `REDIS_URL`, `COMPUTE_BLOB_URL`, `COMPUTE_SECRET_KEY`,
`COMPUTE_WORK_DIR`, ... (see the README's Configuration). Both become the process they
start (gunicorn, Celery), so a process manager's signals reach it directly. Neither
migrates: run `compute db upgrade` first; the API refuses a schema that is behind and a
worker waits for it.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import click

from .server_extra import server_imports
from .service import DEFAULT_HOST, DEFAULT_PORT, data_dir_option, resolve_data_dir

BROKER_NEEDED = (
    "{command} needs REDIS_URL: the broker the API and every worker share "
    "(redis://[:password@]host:6379/0)"
)


@click.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address the API binds.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, help="Port the API listens on.")
@data_dir_option
def serve(host: str, port: int, data_dir: Path | None) -> None:
    """Run the API alone (gunicorn), for workers elsewhere to serve."""
    with server_imports("compute serve"):
        from .commands import api_command, child_environment

    broker = _required_broker("compute serve")
    _become(api_command(host, port), child_environment(resolve_data_dir(data_dir), broker))


@click.command()
@click.option(
    "--concurrency",
    default=None,
    type=click.IntRange(min=1),
    help="How many jobs this node runs at once [default: one per CPU].",
)
@click.option(
    "--name",
    default=None,
    help="The node's name, unique in the deployment [default: this machine's host name].",
)
@data_dir_option
def worker(concurrency: int | None, name: str | None, data_dir: Path | None) -> None:
    """Run one worker node: a Celery worker taking the service's jobs."""
    with server_imports("compute worker"):
        from compute.server.app import service_app
        from compute.server.settings import Settings

        from .commands import child_environment, default_concurrency, worker_command
        from .preflight import problems_running_jobs

    broker = _required_broker("compute worker")
    directory = resolve_data_dir(data_dir)
    if problems := problems_running_jobs(Settings.of(service_app({"DATA_DIR": str(directory)}))):
        # A node whose every job would fail is worse than none: it would take them all.
        raise click.ClickException("; ".join(problems))
    node = f"{name or socket.gethostname()}@%h"
    argv = [*worker_command(concurrency or default_concurrency()), "--hostname", node]
    _become(argv, child_environment(directory, broker))


def _required_broker(command: str) -> str:
    broker = os.environ.get("REDIS_URL")
    if not broker:
        raise click.ClickException(BROKER_NEEDED.format(command=command))
    return broker


def _become(argv: list[str], env: dict[str, str]) -> None:
    os.execve(argv[0], argv, env)
