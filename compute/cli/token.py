"""`compute token`: issue API tokens from the service's own data directory."""

from __future__ import annotations

import os
from pathlib import Path

import click

from .server_extra import server_imports
from .service import base_url, data_dir_option, data_dir_origin, resolve_data_dir
from .service_record import running_service_url


@click.group()
def token() -> None:
    """Issue API tokens."""


@token.command()
@click.option("--user", "name", required=True, help="The user's name; created if new.")
@click.option("--admin", is_flag=True, help="Make the user an administrator.")
@data_dir_option
@click.option("--save", is_flag=True, help="Also write the URL and token to the SDK config file.")
@click.option(
    "--url",
    default=None,
    help="The service URL that --save writes [default: the running `compute up`'s].",
)
def create(name: str, admin: bool, data_dir: Path | None, save: bool, url: str | None) -> None:
    """Print a token for USER, signed with the data directory's secret."""
    with server_imports("compute token create"):
        from compute.server.tokens import get_or_create_user, issue_token

        from .service_app import migrated_app

    directory = resolve_data_dir(data_dir)
    if not directory.is_dir() and not os.environ.get("COMPUTE_SECRET_KEY"):
        # A new directory would hold a new secret: its tokens would open no service.
        raise click.ClickException(
            f"no service data directory at {directory} ({data_dir_origin(data_dir)}). "
            "Start the service with `compute up`, which creates it, or name the running "
            "service's with --data-dir or COMPUTE_DATA_DIR."
        )
    with migrated_app(directory):
        value = issue_token(get_or_create_user(name, is_admin=admin))
    click.echo(value)
    if save:
        from compute._config import write_config

        if url is None:
            url = running_service_url(directory)
        if url is None:
            url = base_url()
            click.echo(
                f"No running `compute up` found for {directory}; saving {url} (use --url to "
                "name another).",
                err=True,
            )
        path = write_config(url.rstrip("/"), value)
        click.echo(f"Saved the URL {url.rstrip('/')} and the token to {path}", err=True)
