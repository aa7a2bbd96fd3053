"""`compute images`: the images the service's workers offer, to name in `Function(image=...)`."""

from __future__ import annotations

from typing import Any

import click

from compute._client import get_default_client

from .client import service_errors
from .options import json_option
from .output import emit

IMAGE_COLUMNS = ("image", "python", "workers")


@click.command()
@json_option
def images(as_json: bool) -> None:
    """List the images workers offer, with their Python and how many workers have each."""
    with service_errors("the image list"):
        answer: dict[str, Any] = get_default_client().json("GET", "/images")
    emit(answer["data"], IMAGE_COLUMNS, as_json)
