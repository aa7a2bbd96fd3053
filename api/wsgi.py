"""The WSGI entry point: `gunicorn api.wsgi:app` serves the API configured from the environment.

It refuses to start against a database whose schema is behind this release (run
`compute db upgrade` first), rather than answer every request with a 500.
"""

from __future__ import annotations

from compute.server.database import require_current_schema

from . import create_app

app = create_app()
require_current_schema(app)
