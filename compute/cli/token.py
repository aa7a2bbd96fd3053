"""`compute token`: issue, list and revoke API tokens from the service's own data directory.

These are the operator's commands: they open the service's database and secret
directly (the `server` extra), not the API, so they need no token themselves.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .exit_codes import NotFound
from .human import moment
from .options import json_option
from .output import Derived, emit
from .server_extra import server_imports
from .service import base_url, data_dir_option, data_dir_origin, resolve_data_dir
from .service_record import running_service_url

if TYPE_CHECKING:
    from compute.server.models import Token

TOKEN_COLUMNS = ("id", "user", "state", "created", "expires", "label")
TOKEN_UNITS: Derived = {
    "created": lambda token: moment(token["created"]),
    "expires": lambda token: moment(token["expires"]),
}


@click.group()
def token() -> None:
    """Issue, list and revoke API tokens."""


@token.command()
@click.option("--user", "name", required=True, help="The user's name; created if new.")
@click.option("--admin", is_flag=True, help="Make the user an administrator.")
@click.option("--label", default=None, help="What the token is for, shown by `token list`.")
@data_dir_option
@click.option("--save", is_flag=True, help="Also write the URL and token to the SDK config file.")
@click.option(
    "--url",
    default=None,
    help="The service URL that --save writes [default: the running `compute up`'s].",
)
def create(
    name: str, admin: bool, label: str | None, data_dir: Path | None, save: bool, url: str | None
) -> None:
    """Print a token for USER, signed with the data directory's secret."""
    with server_imports("compute token create"):
        from compute.server.tokens import get_or_create_user, issue_token

        from .service_app import migrated_app

    directory = existing_data_dir(data_dir)
    with migrated_app(directory):
        value = issue_token(get_or_create_user(name, is_admin=admin), label=label)
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


@token.command(name="list")
@click.option("--user", "name", default=None, help="Only this user's tokens.")
@data_dir_option
@json_option
def list_tokens(name: str | None, data_dir: Path | None, as_json: bool) -> None:
    """List the issued tokens, newest first (never the tokens themselves, which are not kept).

    Tokens issued before tokens were recorded are not listed; `revoke --user` reaches them.
    """
    with server_imports("compute token list"):
        from compute.server.tokens import find_user
        from compute.server.tokens import list_tokens as recorded_tokens

        from .service_app import migrated_app

    with migrated_app(existing_data_dir(data_dir)):
        user_id = None
        if name is not None:
            user = find_user(name)
            if user is None:
                raise NotFound(f"user {name} not found")
            user_id = user.id
        records = [token_record(row, owner) for row, owner in recorded_tokens(user_id)]
    emit(records, TOKEN_COLUMNS, as_json, TOKEN_UNITS)


@token.command()
@click.argument("token_ids", nargs=-1)
@click.option(
    "--user",
    "name",
    default=None,
    help="Revoke every token of this user, those issued before tokens were recorded too.",
)
@data_dir_option
def revoke(token_ids: tuple[str, ...], name: str | None, data_dir: Path | None) -> None:
    """Revoke the tokens TOKEN_IDS (as `token list` shows them), or every token of --user.

    The service refuses a revoked token from its next request on.
    """
    if bool(token_ids) == (name is not None):
        raise click.UsageError("name either token ids or --user")
    with server_imports("compute token revoke"):
        from compute.server.tokens import find_user, revoke_token, revoke_user_tokens

        from .service_app import migrated_app

    with migrated_app(existing_data_dir(data_dir)):
        if name is not None:
            user = find_user(name)
            if user is None:
                raise NotFound(f"user {name} not found")
            count = revoke_user_tokens(user)
            click.echo(f"Revoked every token of {name} ({count} recorded ones were valid).")
            return
        missing = [token_id for token_id in token_ids if revoke_token(token_id) is None]
    for token_id in token_ids:
        if token_id in missing:
            click.echo(f"Error: token {token_id} not found", err=True)
        else:
            click.echo(f"Revoked token {token_id}.")
    if missing:
        raise NotFound(f"{len(missing)} of {len(token_ids)} tokens not found")


def existing_data_dir(data_dir: Path | None) -> Path:
    """The service's data directory, which a token command never creates.

    Raises:
        click.ClickException: it does not exist and no secret is set in the environment.
    """
    directory = resolve_data_dir(data_dir)
    if not directory.is_dir() and not os.environ.get("COMPUTE_SECRET_KEY"):
        # A new directory would hold a new secret: its tokens would open no service.
        raise click.ClickException(
            f"no service data directory at {directory} ({data_dir_origin(data_dir)}). "
            "Start the service with `compute up`, which creates it, or name the running "
            "service's with --data-dir or COMPUTE_DATA_DIR."
        )
    return directory


def token_record(row: Token, user: str) -> dict[str, Any]:
    """A recorded token as `token list` shows it, with whether it still works."""
    now = dt.datetime.now(dt.timezone.utc)
    if row.revoked_at is not None:
        state = "revoked"
    elif row.expires_at <= now:
        state = "expired"
    else:
        state = "valid"
    return {
        "id": row.id,
        "user": user,
        "state": state,
        "created": row.creation_date.isoformat(),
        "expires": row.expires_at.isoformat(),
        "revoked": None if row.revoked_at is None else row.revoked_at.isoformat(),
        "label": row.label,
    }
