"""The service's Flask app as the commands see it: one data directory, migrated schema.

The server modules are imported lazily so that commands which only talk HTTP start fast.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from flask import Flask

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def default_data_dir() -> Path:
    """The data directory the server uses when none is given."""
    from api.config import default_data_dir as server_default

    return server_default()


def data_dir_option(function: Any) -> Any:
    """The `--data-dir` option shared by every command that opens the service's data."""
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Where the database, blobs and token secret live [default: $COMPUTE_DATA_DIR, "
        "else /var/lib/compute for root, else $XDG_DATA_HOME/compute].",
    )(function)


def data_dir_origin(data_dir: Path | None) -> str:
    """How the data directory was chosen, for messages that name it."""
    if data_dir is not None:
        return "--data-dir"
    if os.environ.get("COMPUTE_DATA_DIR"):
        return "$COMPUTE_DATA_DIR"
    if os.geteuid() == 0:
        return "the default for root"
    return "the default, $XDG_DATA_HOME/compute"


def resolve_data_dir(data_dir: Path | None) -> Path:
    """The absolute data directory: the one given, else the server's default."""
    return (data_dir or default_data_dir()).expanduser().resolve()


def base_url(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    """The API's base URL for a server bound to `host`:`port`."""
    from api import API_PREFIX

    return f"{root_url(host, port)}{API_PREFIX}"


def root_url(host: str, port: int) -> str:
    """`http://host:port`, naming loopback when the server listens on every address."""
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


@contextmanager
def migrated_app(data_dir: Path) -> Iterator[Flask]:
    """The API app for `data_dir` with its schema brought up to date, inside its context."""
    from api import create_app, upgrade_database
    from api.extensions import db

    app = create_app({"DATA_DIR": str(data_dir)})
    upgrade_database(app)
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()
