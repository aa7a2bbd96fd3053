"""`compute db`: database maintenance."""

from __future__ import annotations

from pathlib import Path

import click

from .server_extra import server_imports
from .service import data_dir_option, resolve_data_dir


@click.group()
def db() -> None:
    """Manage the service's database."""


@db.command()
@data_dir_option
def upgrade(data_dir: Path | None) -> None:
    """Apply every pending migration to the configured database."""
    with server_imports("compute db upgrade"):
        from .service_app import migrated_app

    with migrated_app(resolve_data_dir(data_dir)):
        pass
    click.echo("Database is up to date.", err=True)
