"""`compute admin-link`: print a one-time URL that signs a user in to the admin pages.

An operator's command, like `compute token create`: it reads the data directory's
secret and database directly (the `server` extra) and needs no token. The link is valid
for a few minutes and once (see `compute.server.sign_in_links`).
"""

from __future__ import annotations

from pathlib import Path

import click

from .server_extra import server_imports
from .service import API_PREFIX, base_url, data_dir_option
from .service_record import running_service_url
from .token import existing_data_dir

LINK_PATH = "/admin/link/"


@click.command(name="admin-link")
@click.option("--user", "name", required=True, help="The user's name; created if new.")
@click.option("--admin", is_flag=True, help="Make the user an administrator.")
@click.option(
    "--minutes",
    type=click.IntRange(1, 60),
    default=5,
    show_default=True,
    help="How long the link stays valid (it works once).",
)
@data_dir_option
@click.option(
    "--url",
    default=None,
    help="The service's URL, as a browser reaches it [default: the running `compute up`'s].",
)
def admin_link(
    name: str, admin: bool, minutes: int, data_dir: Path | None, url: str | None
) -> None:
    """Print a one-time URL that signs USER in to the admin pages."""
    with server_imports("compute admin-link"):
        from compute.server.sign_in_links import issue_link_token
        from compute.server.tokens import get_or_create_user

        from .service_app import migrated_app

    directory = existing_data_dir(data_dir)
    with migrated_app(directory):
        token = issue_link_token(get_or_create_user(name, is_admin=admin), minutes * 60)
    service = (url or running_service_url(directory) or base_url()).rstrip("/")
    click.echo(f"{service.removesuffix(API_PREFIX)}{LINK_PATH}{token}")
    click.echo(f"Valid once, for {minutes} minutes.", err=True)
