"""`/whoami` and `/tokens`: who the caller's token names, and the caller's own tokens.

A user lists and revokes only their own tokens (another user's is a 404, as for every
other object); an operator reaches everyone's with `compute token list|revoke`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from compute.server.models import Token
from compute.server.tokens import TokenInfo, list_tokens, revoke_token

from ..auth import authenticate_request, current_identity
from ..errors import NotFound
from ..wire import format_datetime

blueprint = Blueprint("account", __name__)
blueprint.before_request(authenticate_request)


@blueprint.get("/whoami")
def whoami() -> Response:
    identity = current_identity()
    body = {
        "user": identity.name,
        "admin": identity.is_admin,
        "token": None if identity.token is None else token_info_to_json(identity.token),
    }
    return jsonify(body)


@blueprint.get("/tokens")
def list_own_tokens() -> Response:
    tokens = list_tokens(current_identity().user_id)
    return jsonify({"data": [token_to_json(token) for token, _ in tokens]})


@blueprint.delete("/tokens/<token_id>")
def revoke_own_token(token_id: str) -> Response:
    revoked = revoke_token(token_id, current_identity().user_id)
    if revoked is None:
        raise NotFound(f"Token {token_id!r} not found.")
    return jsonify(token_to_json(revoked))


def token_info_to_json(token: TokenInfo) -> dict[str, Any]:
    """The request's own token; `id` is null for one issued before tokens were recorded."""
    return {
        "id": token.id,
        "created": format_datetime(token.created),
        "expires": format_datetime(token.expires),
        "label": token.label,
    }


def token_to_json(token: Token) -> dict[str, Any]:
    """A recorded token: never the token itself, which is not kept."""
    return {
        "id": token.id,
        "created": format_datetime(token.creation_date),
        "expires": format_datetime(token.expires_at),
        "revoked": format_datetime(token.revoked_at),
        "label": token.label,
    }
