"""What `compute up` does once its options are read: the whole service on one machine.

Needs the `server` extra; `up` imports this module inside the command (see `server_extra`).
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import click
import requests
from kombu.utils.url import maybe_sanitize_url

from .api_port import ensure_port_free
from .broker import start_embedded_redis
from .commands import (
    api_command,
    child_environment,
    default_concurrency,
    worker_command,
    worker_queues,
)
from .output_filters import ApiLines, WorkerLines
from .preflight import problems_running_jobs
from .service import base_url, default_data_dir, resolve_data_dir, root_url
from .service_app import migrated_app
from .service_record import remove_service_record, write_service_record
from .supervisor import ServiceError, StopRequested, Supervisor

API_READY_TIMEOUT_SECONDS = 60.0


def run(host: str, port: int, data_dir: Path | None, workers: int | None) -> None:
    """Run the API, a worker and a broker until interrupted; exit non-zero on failure."""
    directory = resolve_data_dir(data_dir)
    ensure_port_free(host, port)
    supervisor = Supervisor()
    supervisor.install_signal_handlers()
    with migrated_app(directory) as app:
        from compute.server.settings import Settings

        redis_url = app.config.get("REDIS_URL")
        if problems := problems_running_jobs(Settings.of(app)):
            # A worker whose every job would fail is worse than no service at all.
            raise ServiceError("; ".join(problems))
    code = 0
    try:
        redis_url = start_broker(supervisor, directory, redis_url)
        env = child_environment(directory, redis_url)
        start_worker(supervisor, env, workers or default_concurrency())
        start_api(supervisor, env, host, port)
        wait_for_api(root_url(host, port), supervisor)
        write_service_record(directory, base_url(host, port))
        click.echo(banner(host, port, directory))
        supervisor.run_forever()
    except StopRequested as stop:
        click.echo(f"Received {stop}; stopping.", err=True)
    except ServiceError as error:
        click.echo(f"compute up: {error.message}; stopping.", err=True)
        code = 1
    finally:
        remove_service_record(directory)
        supervisor.stop_all()
    click.echo("Stopped.", err=True)
    raise SystemExit(code)


def start_broker(supervisor: Supervisor, data_dir: Path, redis_url: str | None) -> str:
    """The broker's URL: `redis_url`, else that of an embedded broker started here."""
    if redis_url:
        click.echo(f"Broker at {maybe_sanitize_url(redis_url)} (REDIS_URL)", err=True)
        return redis_url
    broker = start_embedded_redis(supervisor, data_dir)
    click.echo(
        f"Embedded broker at {broker.public_url} "
        f"(pid {broker.pid}; password in {broker.password_file})",
        err=True,
    )
    return broker.url  # the children's environment only: never printed


def start_worker(supervisor: Supervisor, env: dict[str, str], concurrency: int) -> None:
    worker = supervisor.start("worker", worker_command(concurrency), env, output=WorkerLines)
    queues = ", ".join(worker_queues())
    click.echo(
        f"Worker running {concurrency} tasks at once from {queues} (pid {worker.pid})", err=True
    )


def start_api(supervisor: Supervisor, env: dict[str, str], host: str, port: int) -> None:
    api = supervisor.start("api", api_command(host, port), env, output=ApiLines)
    click.echo(f"API at {root_url(host, port)} (pid {api.pid})", err=True)


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
