"""The API alone on a PostgreSQL database, served by gunicorn as `compute up` serves it:
the schema from `compute db upgrade`, a token from `compute token create`.

It gets no broker: no worker of the run is to build or run anything of it, and without
one the API leaves a new function's build request waiting, as it does on any deployment
whose broker is not configured yet.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

import compute
from compute.cli.broker import free_port
from compute.cli.commands import api_command
from compute.cli.service import base_url, root_url

from .children import Children
from .service import HOST, ISOLATED_VARIABLES, run_cli, sdk_settings_kept

NAME = "search-api"
USER = "bench"
READY_TIMEOUT_SECONDS = 60.0
READY_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class PostgresApi:
    """A running API on PostgreSQL, and a token of the user `bench` for it."""

    port: int
    token: str

    @property
    def root_url(self) -> str:
        return root_url(HOST, self.port)

    @property
    def base_url(self) -> str:
        return base_url(HOST, self.port)


def start_api(children: Children, data_dir: Path, database_url: str) -> PostgresApi:
    """Migrate the empty database at `database_url`, then serve the API on it; return
    once it answers. `data_dir` holds its token secret and blobs."""
    env = environment(data_dir, database_url)
    run_cli(env, "db", "upgrade", "--data-dir", str(data_dir))
    token = run_cli(env, "token", "create", "--user", USER, "--data-dir", str(data_dir))
    port = free_port()
    process = children.start(NAME, api_command(HOST, port), env)
    api = PostgresApi(port, token)
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not healthy(api):
        children.check(NAME, process)
        if time.monotonic() > deadline:
            raise TimeoutError(f"the API on PostgreSQL was not ready in {READY_TIMEOUT_SECONDS} s")
        time.sleep(READY_POLL_SECONDS)
    return api


def environment(data_dir: Path, database_url: str) -> dict[str, str]:
    """The caller's environment without its service settings, naming the run's own."""
    env = {key: value for key, value in os.environ.items() if key not in ISOLATED_VARIABLES}
    env["COMPUTE_DATA_DIR"] = str(data_dir)
    env["DATABASE_URL"] = database_url
    env["PYTHONUNBUFFERED"] = "1"
    return env


def healthy(api: PostgresApi) -> bool:
    with contextlib.suppress(requests.RequestException):
        return requests.get(f"{api.root_url}/healthz", timeout=2).ok
    return False


@contextlib.contextmanager
def sdk_pointed_at(api: PostgresApi) -> Iterator[None]:
    """Point the SDK's default client at `api` until exit, then back where it was."""
    with sdk_settings_kept():
        compute.configure(url=api.base_url, token=api.token)
        yield
