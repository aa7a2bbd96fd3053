"""The service's own app: settings, the database and the blob store, and no HTTP routes.

Flask-SQLAlchemy and Flask-Migrate hold the engine and the schema's migrations in a
Flask app, so the worker and the server commands work inside the app context of this
one; the API builds on it and adds its blueprints. Nothing here runs at import.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from flask import Flask

from .blobstore import open_blob_store
from .database import configure_engine
from .extensions import db, migrate
from .redaction import install_log_filter, secret_values
from .settings import Settings, load_secret_key, prepare_data_dir, resolved_values

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def service_app(test_config: dict[str, Any] | None = None, name: str = __name__) -> Flask:
    """Defaults, then `COMPUTE_*`/well-known env vars, then `test_config`, in an app."""
    app = Flask(name)
    values = resolved_values(test_config)
    settings = Settings.from_mapping(values)
    prepare_data_dir(settings.data_dir, settings.sqlalchemy_database_uri)
    if not settings.secret_key:
        settings = replace(settings, secret_key=load_secret_key(settings.data_dir))
    if not settings.default_image:
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        settings = replace(settings, default_image=f"python{version}:latest")
    # Flask's and SQLAlchemy's own settings pass through; the service's are typed.
    app.config.from_mapping(values)
    app.config.update(settings.as_config())
    app.extensions["settings"] = settings
    # The service's own log lines never show a credential of its settings.
    install_log_filter([logging.getLogger(), app.logger], secret_values(app.config))

    configure_engine(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    app.extensions["blobstore"] = open_blob_store(app.config["BLOB_URL"])
    return app
