"""Listing resources over the API with the credentials the SDK would use."""

from __future__ import annotations

from typing import Any

import click
import requests

REQUEST_TIMEOUT_SECONDS = 30


def list_all(path: str, params: dict[str, Any], limit: int | None) -> list[dict[str, Any]]:
    """Every record of the list endpoint `path` (up to `limit`), following page cursors."""
    from compute._config import load_settings
    from compute._exceptions import ConfigurationError

    try:
        settings = load_settings().require()
    except ConfigurationError as error:
        raise click.ClickException(str(error)) from error
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {settings.token}"
    query = {**params, "limit": limit} if limit is not None else dict(params)
    records: list[dict[str, Any]] = []
    with session:
        while True:
            body = _get(session, f"{settings.url}{path}", query)
            records += body["data"]
            cursor = body.get("meta", {}).get("page_cursor")
            if not cursor:
                return records
            # Later pages carry the whole query in the cursor alone.
            query = {"page_cursor": cursor}


def _get(session: requests.Session, url: str, params: dict[str, Any]) -> dict[str, Any]:
    try:
        response = session.get(url, params=params, timeout=REQUEST_TIMEOUT_SECONDS)
    except requests.RequestException as error:
        raise click.ClickException(f"cannot reach {url}: {error}") from error
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail") or response.text
        except ValueError:
            detail = response.text
        raise click.ClickException(f"{response.status_code} from {url}: {detail}")
    body: dict[str, Any] = response.json()
    return body
