"""`compute up`: the whole service on one machine.

Applies the migrations, then runs a broker (the `REDIS_URL` Redis, else an embedded
one), one Celery worker and the API under gunicorn, until Ctrl-C or SIGTERM. If any of
them dies, everything stops and `up` exits non-zero.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import click
import requests

from .broker import start_embedded_redis
from .commands import api_command, child_environment, worker_command
from .service import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    base_url,
    data_dir_option,
    default_data_dir,
    migrated_app,
    resolve_data_dir,
    root_url,
)
from .supervisor import ServiceError, StopRequested, Supervisor

API_READY_TIMEOUT_SECONDS = 60.0


@click.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address the API binds.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, help="Port the API listens on.")
@data_dir_option
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many tasks the worker runs at once.",
)
def up(host: str, port: int, data_dir: Path | None, workers: int) -> None:
    """Run the API, a worker and a broker until interrupted."""
    directory = resolve_data_dir(data_dir)
    supervisor = Supervisor()
    supervisor.install_signal_handlers()
    with migrated_app(directory) as app:
        redis_url = app.config.get("REDIS_URL")
    code = 0
    try:
        if not redis_url:
            broker = start_embedded_redis(supervisor, directory)
            redis_url = broker.url  # the children's environment only: never printed
            click.echo(
                f"Embedded broker at {broker.public_url} (password in {broker.password_file})",
                err=True,
            )
        env = child_environment(directory, redis_url)
        supervisor.start("worker", worker_command(workers), env)
        supervisor.start("api", api_command(host, port), env)
        wait_for_api(root_url(host, port), supervisor)
        click.echo(banner(host, port, directory))
        supervisor.run_forever()
    except StopRequested as stop:
        click.echo(f"Received {stop}; stopping.", err=True)
    except ServiceError as error:
        click.echo(f"compute up: {error.message}; stopping.", err=True)
        code = 1
    finally:
        supervisor.stop_all()
    click.echo("Stopped.", err=True)
    raise SystemExit(code)


def wait_for_api(root: str, supervisor: Supervisor) -> None:
    """Return once `/healthz` answers 200."""
    deadline = time.monotonic() + API_READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{root}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        supervisor.wait()
    raise ServiceError(f"the API at {root} did not become healthy in time")


def banner(host: str, port: int, data_dir: Path) -> str:
    """What to tell the user once the service is up."""
    url = base_url(host, port)
    token = "compute token create --user NAME"
    if data_dir != default_data_dir():
        token += f" --data-dir {shlex.quote(str(data_dir))}"
    return "\n".join(
        [
            f"Compute is running at {url}",
            f"  data directory: {data_dir}",
            "",
            "Get a token (add --save to store it for the compute SDK):",
            f"  {token}",
            "",
            "Point the published descarteslabs client at it:",
            f"  export DESCARTESLABS_COMPUTE_URL={url}",
            f"  export DESCARTESLABS_IAM_URL={root_url(host, port)}/iam",
            f"  export DESCARTESLABS_TOKEN=$({token})",
            "",
            "Press Ctrl-C to stop.",
        ]
    )
