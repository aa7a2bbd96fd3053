"""The Compute v1 REST API: a Flask app storing Functions and Jobs."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, redirect, url_for

from compute.server.app import service_app
from compute.server.database import upgrade_database

from .errors import register_error_handlers

API_PREFIX = "/compute/v1"

__all__ = ["API_PREFIX", "create_app", "upgrade_database"]


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the API app: defaults, then `COMPUTE_*`/well-known env vars, then `test_config`."""
    app = service_app(test_config, name=__name__)
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_JSON_BYTES"]
    # Flask types app.json as the JSONProvider base; its default provider has sort_keys.
    app.json.sort_keys = False  # type: ignore[attr-defined]

    register_error_handlers(app)
    register_blueprints(app)
    logging.getLogger(__name__).debug("API app created for %s", app.config["DATA_DIR"])
    return app


def register_blueprints(app: Flask) -> None:
    from . import admin, health, metrics
    from .resources import (
        account,
        cancels,
        credentials,
        functions,
        jobs,
        results,
        uploads,
        workers,
    )

    for module in (credentials, functions, results, jobs, cancels, uploads, account, workers):
        app.register_blueprint(module.blueprint, url_prefix=API_PREFIX)
    # At the root, where probes and Prometheus look for them.
    app.register_blueprint(health.blueprint)
    app.register_blueprint(metrics.blueprint)
    app.register_blueprint(admin.blueprint)

    @app.get("/")
    def root() -> Any:
        return redirect(url_for("admin.dashboard"))
