"""Users and their API tokens: made by `compute token create` and read by the API.

Tokens are HS256 JWTs with `sub` (the user id), `name` and `exp`: the published client
only decodes the payload and checks `exp`; the server verifies the signature and that the
user still exists on every request.
"""

from __future__ import annotations

import datetime as dt

import jwt
import sqlalchemy as sa

from .extensions import db
from .models import User, utcnow
from .settings import current_settings

ALGORITHM = "HS256"
ISSUER = "compute"


class TokenRefused(Exception):
    """A token that names no current user; the message says why, for the caller."""


def get_or_create_user(name: str, is_admin: bool = False) -> User:
    """Return the user called `name`, creating it (or raising it to admin) as needed."""
    user = db.session.scalar(sa.select(User).where(User.name == name))
    if user is None:
        user = User(name=name, is_admin=is_admin)
        db.session.add(user)
    elif is_admin and not user.is_admin:
        user.is_admin = True
    db.session.commit()
    return user


def issue_token(user: User, ttl_seconds: int | None = None) -> str:
    """A signed token for `user`, valid for `ttl_seconds` (the configured TTL by default)."""
    settings = current_settings()
    now = utcnow()
    ttl = ttl_seconds if ttl_seconds is not None else settings.token_ttl_seconds
    claims = {
        "sub": user.id,
        "name": user.name,
        "iss": ISSUER,
        "iat": int(now.timestamp()),
        "exp": int((now + dt.timedelta(seconds=ttl)).timestamp()),
    }
    return jwt.encode(claims, _secret(), algorithm=ALGORITHM)


def user_of_token(token: str) -> User:
    """The user `token` was issued to, once its signature and expiry check out.

    Raises:
        TokenRefused: expired, not signed by this service, or its user is gone.
    """
    try:
        claims = jwt.decode(
            token,
            _secret(),
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["sub", "exp"]},
        )
    except jwt.ExpiredSignatureError as error:
        raise TokenRefused("The token has expired.") from error
    except jwt.InvalidTokenError as error:
        raise TokenRefused("The token is not valid.") from error
    user = db.session.get(User, claims["sub"])
    if user is None:
        raise TokenRefused("The token's user no longer exists.")
    return user


def _secret() -> str:
    secret = current_settings().secret_key
    if not secret:  # the service app always sets one; a bare Settings may not
        raise RuntimeError("no SECRET_KEY: tokens can be neither issued nor checked")
    return secret
