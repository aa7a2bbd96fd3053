"""Users, API tokens and the request's identity.

Tokens are HS256 JWTs with `sub` (the user id), `name` and `exp`: the published client
only decodes the payload and checks `exp`; the server verifies the signature and that the
user still exists on every request.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import jwt
import sqlalchemy as sa
from flask import current_app, g, request

from compute.server.extensions import db
from compute.server.models import User, utcnow

from .errors import Unauthorized

ALGORITHM = "HS256"
ISSUER = "compute"


@dataclass(frozen=True)
class Identity:
    """Who is asking: every query is scoped to `user_id` unless `is_admin`."""

    user_id: str
    name: str
    is_admin: bool


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
    now = utcnow()
    ttl = ttl_seconds if ttl_seconds is not None else current_app.config["TOKEN_TTL_SECONDS"]
    claims = {
        "sub": user.id,
        "name": user.name,
        "iss": ISSUER,
        "iat": int(now.timestamp()),
        "exp": int((now + dt.timedelta(seconds=ttl)).timestamp()),
    }
    return jwt.encode(claims, current_app.config["SECRET_KEY"], algorithm=ALGORITHM)


def identity_from_token(token: str) -> Identity:
    """Verify `token` and load its user; raise `Unauthorized` otherwise."""
    try:
        claims = jwt.decode(
            token,
            current_app.config["SECRET_KEY"],
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["sub", "exp"]},
        )
    except jwt.ExpiredSignatureError as error:
        raise Unauthorized("The token has expired.") from error
    except jwt.InvalidTokenError as error:
        raise Unauthorized("The token is not valid.") from error
    user = db.session.get(User, claims["sub"])
    if user is None:
        raise Unauthorized("The token's user no longer exists.")
    return Identity(user_id=user.id, name=user.name, is_admin=user.is_admin)


def authenticate_request() -> None:
    """Set `g.identity` from the request's bearer token."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Missing bearer token in the Authorization header.")
    g.identity = identity_from_token(token.strip())


def current_identity() -> Identity:
    identity: Identity = g.identity
    return identity
