"""The WSGI entry point: `gunicorn api.wsgi:app` serves the API configured from the environment."""

from __future__ import annotations

from . import create_app

app = create_app()
