"""The admin pages' blueprint: who may see them, how their errors look, what their
templates get.

Every page but sign-in needs a signed-in user (`session`); every POST, sign-in
included, needs the session's CSRF token. Ownership is checked by each view through
`api.ownership`, as the API does: another user's object is a 404 here too.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.sansio.blueprints import BlueprintSetupState
from werkzeug.exceptions import HTTPException

from compute.statuses import JobStatus

from ..errors import ApiError
from .formatting import TEMPLATE_HELPERS
from .session import CSRF_FIELD, AdminSessionInterface, csrf_ok, csrf_token, load_identity

ADMIN_PREFIX = "/admin"
# What the pages' scripts poll: they answer JSON, errors included.
LIVE_PREFIX = f"{ADMIN_PREFIX}/live/"
PUBLIC_ENDPOINTS = frozenset({"admin.sign_in_page", "admin.follow_link"})
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

blueprint = Blueprint("admin", __name__, url_prefix=ADMIN_PREFIX)


@blueprint.record_once
def use_admin_sessions(state: BlueprintSetupState) -> None:
    # Only these pages keep sessions; the API authenticates each request by its token.
    cast(Flask, state.app).session_interface = AdminSessionInterface()


def wants_json() -> bool:
    return request.path.startswith(LIVE_PREFIX)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: an admin page named by `target`, else the dashboard
    (never another site: `//evil.example/admin/` is refused)."""
    parts = urlsplit(target or "")
    if target and not parts.scheme and not parts.netloc and parts.path.startswith("/admin/"):
        return target
    return url_for("admin.dashboard")


@blueprint.before_request
def require_sign_in() -> Any:
    if request.method == "POST" and not csrf_ok(request.form):
        return error_page(400, "The form has expired or did not come from these pages; reload it.")
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if load_identity() is None:
        if wants_json():
            return error_page(401, "Sign in again.")
        return redirect(url_for("admin.sign_in_page", next=request.full_path.rstrip("?")))
    return None


@blueprint.after_request
def page_headers(response: Response) -> Response:
    # Pages show one user's data and change by the second: no shared or stale copies.
    response.headers.setdefault("Cache-Control", "no-store")
    # Logs, arguments and errors are the jobs' text: were one ever to slip past escaping,
    # no script but the pages' own runs, and the pages are framed nowhere.
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def error_page(status: int, message: str) -> tuple[Any, int]:
    if wants_json():
        return jsonify({"detail": message}), status
    return render_template("admin/error.html", status=status, message=message), status


@blueprint.errorhandler(ApiError)
def api_error(error: ApiError) -> tuple[Any, int]:
    return error_page(error.status, error.detail)


@blueprint.errorhandler(HTTPException)
def http_error(error: HTTPException) -> tuple[Any, int]:
    return error_page(error.code or 500, error.description or error.name)


@blueprint.context_processor
def template_context() -> dict[str, Any]:
    return {
        **TEMPLATE_HELPERS,
        "viewer": g.get("identity"),
        "csrf_token": csrf_token,
        "csrf_field": CSRF_FIELD,
        "job_statuses": list(JobStatus),
    }
