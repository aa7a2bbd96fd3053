"""The admin pages under `/admin/`: server-rendered, updating themselves while jobs run.

    blueprint   who may see the pages (sign-in, CSRF), their errors and template helpers
    session     the signed session cookie and its CSRF token
    auth        signing in with a token or a one-time link, and out
    dashboard   functions, job counts, jobs per minute, queues and workers
    functions   one function: settings, build log, its jobs by status
    jobs        one job: arguments, attempts, its log tailed live, a result preview
    actions     rerun failed jobs, cancel, delete (each checked against ownership)

Templates are `api/templates/admin/`; one stylesheet and one script, which polls the
`/admin/live/` endpoints, are `api/static/admin/`.
"""

from __future__ import annotations

# Imported for the routes they add to the blueprint.
from . import actions, auth, dashboard, functions, jobs  # noqa: F401
from .blueprint import blueprint

__all__ = ["blueprint"]
