"""`compute login`: remember a service URL and token for the SDK, once the service takes them."""

from __future__ import annotations

from contextlib import closing

import click

from compute._client import ComputeClient
from compute._exceptions import NotFoundError

from .client import service_errors
from .exit_codes import CommandError
from .service import base_url
from .whoami import identity


@click.command()
@click.option(
    "--url",
    default=lambda: base_url(),
    show_default="http://127.0.0.1:8000/compute/v1",
    help="The service's base URL.",
)
@click.option(
    "--token",
    "value",
    prompt="Token",
    hide_input=True,
    help="The API token (prompted for when omitted, so it stays out of the shell history).",
)
def login(url: str, value: str) -> None:
    """Check a service URL and token against the service, then save them to the SDK
    config file; nothing is saved when the service refuses the token or cannot be reached."""
    from compute._config import write_config

    url, token = url.rstrip("/"), value.strip()
    with service_errors(f"the service at {url}"), closing(ComputeClient(url, token)) as client:
        try:
            who = identity(client)
        except NotFoundError as error:
            # Something answers there, but not the API: most often a base URL without
            # its /compute/v1.
            raise CommandError(f"no compute service at {url}: /whoami answered {error}") from error
    path = write_config(url, token)
    user = who.get("user")
    click.echo(f"Logged in to {url} as {user}; saved the URL and token to {path}", err=True)
