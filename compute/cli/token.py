"""`compute token`: issue API tokens from the service's own data directory."""

from __future__ import annotations

from pathlib import Path

import click

from .service import base_url, data_dir_option, migrated_app, resolve_data_dir


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
    default=lambda: base_url(),
    show_default="http://127.0.0.1:8000/compute/v1",
    help="The service URL that --save writes.",
)
def create(name: str, admin: bool, data_dir: Path | None, save: bool, url: str) -> None:
    """Print a token for USER, signed with the data directory's secret."""
    from api.auth import get_or_create_user, issue_token

    with migrated_app(resolve_data_dir(data_dir)):
        value = issue_token(get_or_create_user(name, is_admin=admin))
    click.echo(value)
    if save:
        from compute._config import write_config

        path = write_config(url.rstrip("/"), value)
        click.echo(f"Saved the URL and token to {path}", err=True)
