"""`compute up`: the whole service on one machine.

Refuses at once if the API's port is taken; otherwise applies the migrations, then runs a
broker (the `REDIS_URL` Redis, else an embedded one), one Celery worker and the API under
gunicorn, until Ctrl-C or SIGTERM. A child that dies is restarted (see `restarts`); one
that keeps dying stops everything and `up` exits non-zero.
"""

from __future__ import annotations

from pathlib import Path

import click

from .server_extra import server_imports
from .service import DEFAULT_HOST, DEFAULT_PORT, data_dir_option


@click.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address the API binds.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, help="Port the API listens on.")
@data_dir_option
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(min=1),
    help="How many tasks the worker runs at once [default: one per CPU].",
)
def up(host: str, port: int, data_dir: Path | None, workers: int | None) -> None:
    """Run the API, a worker and a broker until interrupted."""
    with server_imports("compute up"):
        from .whole_service import run

    run(host, port, data_dir, workers)
