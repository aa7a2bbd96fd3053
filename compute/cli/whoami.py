"""`compute whoami`: who the configured token names, as the service sees it."""

from __future__ import annotations

from typing import Any

import click

from compute._client import ComputeClient, get_default_client

from .client import service_errors
from .human import moment
from .options import json_option
from .output import emit_one

IDENTITY_FIELDS = ("user", "admin", "token", "expires", "url")


def identity(client: ComputeClient) -> dict[str, Any]:
    """`GET /whoami`: ``{"user", "admin", "token": {"id", "created", "expires", ...}}``.

    Raises:
        compute.ComputeError: the service refused the token, or did not answer.
    """
    answer: dict[str, Any] = client.json("GET", "/whoami")
    return answer


@click.command()
@json_option
def whoami(as_json: bool) -> None:
    """Print the user the configured token names, and until when it works."""
    with service_errors("whoami"):
        client = get_default_client()
        answer = identity(client)
    token = answer.get("token") or {}
    shown = {
        **answer,
        "token": token.get("id") or "(issued before tokens were recorded)",
        "expires": moment(token.get("expires")),
        "url": client.url,
    }
    emit_one(answer if as_json else shown, IDENTITY_FIELDS, as_json)
