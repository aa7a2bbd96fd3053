"""The SDK's HTTP client as the client commands use it, its errors made click errors.

The commands read the service URL and token as the SDK does, and go through the same
session, retries and error translation (`compute._client`); only the wording of a
failure is theirs: one line naming what answered and how.
"""

from __future__ import annotations

from contextlib import closing
from typing import Any

import click

from compute._client import ComputeClient
from compute._exceptions import ApiError, ComputeError


def list_all(path: str, params: dict[str, Any], limit: int | None) -> list[dict[str, Any]]:
    """Every record of the list endpoint `path` (up to `limit`), following page cursors."""
    query = {**params, "limit": limit} if limit is not None else dict(params)
    try:
        client = ComputeClient()
    except ComputeError as error:  # no URL or token, or an unreadable config file
        raise click.ClickException(str(error)) from error
    with closing(client):
        try:
            return list(client.iter_pages(path, query))
        except ApiError as error:
            # Its text is the status, the service's detail and any per-field messages.
            raise click.ClickException(f"{client.url}{path} answered {error}") from error
        except ComputeError as error:  # the service could not be reached
            raise click.ClickException(str(error)) from error
