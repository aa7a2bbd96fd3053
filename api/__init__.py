"""The Compute v1 REST API: a Flask app storing Functions and Jobs."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from flask import Flask, jsonify

from .blobstore import open_blob_store
from .config import (
    ENV_PREFIX,
    default_data_dir,
    defaults,
    environment_overrides,
    load_secret_key,
    normalize_database_url,
    prepare_data_dir,
)
from .database import configure_engine, upgrade_database
from .errors import register_error_handlers
from .extensions import db, migrate
from .redaction import install_log_filter, secret_values

API_PREFIX = "/compute/v1"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"

__all__ = ["API_PREFIX", "create_app", "upgrade_database"]


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the API app: defaults, then `COMPUTE_*`/well-known env vars, then `test_config`."""
    app = Flask(__name__)
    data_dir = Path((test_config or {}).get("DATA_DIR") or default_data_dir())
    app.config.from_mapping(defaults(data_dir))
    app.config.from_prefixed_env(ENV_PREFIX)
    app.config.update(environment_overrides())
    if test_config:
        app.config.update(test_config)
    app.config["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(
        app.config["SQLALCHEMY_DATABASE_URI"]
    )
    prepare_data_dir(Path(app.config["DATA_DIR"]), app.config["SQLALCHEMY_DATABASE_URI"])
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = load_secret_key(Path(app.config["DATA_DIR"]))
    # The service's own log lines never show a credential of its settings.
    install_log_filter([logging.getLogger(), app.logger], secret_values(app.config))
    if not app.config.get("DEFAULT_IMAGE"):
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        app.config["DEFAULT_IMAGE"] = f"python{version}:latest"
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_JSON_BYTES"]
    # Flask types app.json as the JSONProvider base; its default provider has sort_keys.
    app.json.sort_keys = False  # type: ignore[attr-defined]

    configure_engine(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    app.extensions["blobstore"] = open_blob_store(app.config["BLOB_URL"])
    register_error_handlers(app)
    register_blueprints(app)
    logging.getLogger(__name__).debug("API app created for %s", app.config["DATA_DIR"])
    return app


def register_blueprints(app: Flask) -> None:
    from .resources import credentials, functions, jobs, uploads

    for module in (credentials, functions, jobs, uploads):
        app.register_blueprint(module.blueprint, url_prefix=API_PREFIX)

    @app.get("/healthz")
    def health() -> Any:
        return jsonify({"status": "ok"})
