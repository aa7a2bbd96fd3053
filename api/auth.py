"""The request's identity, from the bearer token it carries (`compute.server.tokens`)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import g, request

from compute.server.tokens import TokenInfo, TokenRefused, verify_token

from .errors import Unauthorized


@dataclass(frozen=True)
class Identity:
    """Who is asking: every query is scoped to `user_id` unless `is_admin`."""

    user_id: str
    name: str
    is_admin: bool
    # The token the request came with, for `/whoami`.
    token: TokenInfo | None = None


def identity_from_token(token: str) -> Identity:
    """Verify `token` and load its user; raise `Unauthorized` otherwise."""
    try:
        bearer = verify_token(token)
    except TokenRefused as refusal:
        raise Unauthorized(str(refusal)) from refusal
    user = bearer.user
    return Identity(user_id=user.id, name=user.name, is_admin=user.is_admin, token=bearer.token)


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
