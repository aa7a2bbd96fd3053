"""Who is signed in to the admin pages: a signed session cookie, and its CSRF token.

The cookie is Flask's signed session, but signed with a key derived for it alone (the
app's `SECRET_KEY` is the token secret, which must sign nothing else), HttpOnly,
SameSite=Strict and scoped to `/admin/`. It names the user and the token it was opened
with; every request loads them again, so a deleted user, one no longer an admin, or a
revoked token (`compute token revoke`) loses the pages at once.
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any

from flask import Flask, g, request, session
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

from compute.server.derived_keys import derived_key
from compute.server.extensions import db
from compute.server.models import Token, TokenCutoff, User, utcnow

from ..auth import Identity

COOKIE_NAME = "compute_admin"
COOKIE_PATH = "/admin/"
SESSION_PURPOSE = "admin-session"
SESSION_SECONDS = 12 * 3600
USER_KEY = "user_id"
TOKEN_KEY = "token_id"
SINCE_KEY = "since"
EXPIRES_KEY = "expires"
CSRF_KEY = "csrf"
CSRF_FIELD = "csrf_token"


class AdminSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session with the admin pages' own key and cookie rules."""

    salt = "compute-admin-session"

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        return URLSafeTimedSerializer(
            derived_key(SESSION_PURPOSE),
            salt=self.salt,
            serializer=self.serializer,
            signer_kwargs={
                "key_derivation": self.key_derivation,
                "digest_method": self.digest_method,
            },
        )

    def get_cookie_name(self, app: Flask) -> str:
        return COOKIE_NAME

    def get_cookie_path(self, app: Flask) -> str:
        return COOKIE_PATH

    def get_cookie_httponly(self, app: Flask) -> bool:
        return True

    def get_cookie_samesite(self, app: Flask) -> str:
        return "Strict"

    def get_cookie_secure(self, app: Flask) -> bool:
        # Over plain HTTP (a laptop's `compute up`) a Secure cookie would never come back.
        return request.is_secure


def sign_in(user: User, token_id: str | None = None) -> None:
    """Start a session for `user`, opened with the recorded token `token_id` if any: a
    fresh session, so nothing of an earlier one carries over."""
    session.clear()
    now = time.time()
    session.update(
        {
            USER_KEY: user.id,
            TOKEN_KEY: token_id,
            SINCE_KEY: now,
            EXPIRES_KEY: now + SESSION_SECONDS,
            CSRF_KEY: secrets.token_urlsafe(32),
        }
    )


def sign_out() -> None:
    session.clear()


def load_identity() -> Identity | None:
    """The signed-in user as an `Identity` (set as `g.identity` for the ownership rules),
    or None when nobody is, the session expired, or its user or token is gone."""
    user_id = session.get(USER_KEY)
    if not isinstance(user_id, str) or session.get(EXPIRES_KEY, 0) < time.time():
        return None
    user = db.session.get(User, user_id)
    if user is None or not _tokens_still_valid(
        user, session.get(TOKEN_KEY), session.get(SINCE_KEY, 0)
    ):
        return None
    identity = Identity(user_id=user.id, name=user.name, is_admin=user.is_admin)
    g.identity = identity
    return identity


def _tokens_still_valid(user: User, token_id: str | None, since: float) -> bool:
    """Whether the token the session was opened with is still valid, and the user's
    tokens were not all revoked since the session began."""
    if token_id is not None:
        record = db.session.get(Token, token_id)
        if record is None or record.revoked_at is not None or record.expires_at < utcnow():
            return False
    cutoff = db.session.get(TokenCutoff, user.id)
    return cutoff is None or cutoff.not_before.timestamp() <= since


def csrf_token() -> str:
    """The session's CSRF token, made on first use (the sign-in form needs one too)."""
    token = session.get(CSRF_KEY)
    if not isinstance(token, str):
        token = session[CSRF_KEY] = secrets.token_urlsafe(32)
    return token


def csrf_ok(form: Any) -> bool:
    """Whether a POSTed form carries this session's CSRF token."""
    expected = session.get(CSRF_KEY)
    given = form.get(CSRF_FIELD, "")
    if not isinstance(expected, str) or not isinstance(given, str):
        return False
    return hmac.compare_digest(expected, given)
