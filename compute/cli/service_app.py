"""The service core's app as the service commands see it: one data directory, migrated.

Needs the `server` extra: only `compute up`, `compute db` and `compute token` import it,
inside the command (see `server_extra`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask

from compute.server.app import service_app
from compute.server.database import upgrade_database
from compute.server.extensions import db


@contextmanager
def migrated_app(data_dir: Path) -> Iterator[Flask]:
    """The service app for `data_dir` (settings, database; no routes) with its schema
    brought up to date, inside its context."""
    app = service_app({"DATA_DIR": str(data_dir)})
    upgrade_database(app)
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()
