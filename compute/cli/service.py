"""Where the service keeps its data and answers, as every command names them.

Client commands (`compute login`) need the URL only and must run without the `server`
extra: the server's settings are imported inside :func:`default_data_dir`, which only the
service commands reach.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
# The API's own prefix (api.API_PREFIX), restated: importing the API would need Flask.
API_PREFIX = "/compute/v1"


def default_data_dir() -> Path:
    """The data directory the server uses when none is given."""
    from compute.server.settings import default_data_dir as server_default

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
    return f"{root_url(host, port)}{API_PREFIX}"


def root_url(host: str, port: int) -> str:
    """`http://host:port`, naming loopback when the server listens on every address."""
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"
