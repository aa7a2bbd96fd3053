"""`compute login`: remember a service URL and token for the SDK."""

from __future__ import annotations

import click

from .service import base_url


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
    """Save a service URL and token to the SDK config file."""
    from compute._config import write_config

    path = write_config(url.rstrip("/"), value.strip())
    click.echo(f"Saved the URL and token to {path}", err=True)
