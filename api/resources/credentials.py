"""`/credentials`: accepted for compatibility; no other service's secrets are kept here."""

from __future__ import annotations

from flask import Blueprint, Response

from ..auth import authenticate_request
from ..errors import Invalid
from ..wire import json_body

blueprint = Blueprint("credentials", __name__)
blueprint.before_request(authenticate_request)


@blueprint.post("/credentials")
def set_credentials() -> Response:
    body = json_body()
    for name, value in body.items():
        if name not in {"client_id", "client_secret"}:
            raise Invalid.field(name, "is not a known field")
        if value is not None and not isinstance(value, str):
            raise Invalid.field(name, "must be a string or null")
    # The client sends these for services this deployment does not have. Storing a
    # secret nothing reads would only widen what a leak exposes, so it is not stored.
    return Response(status=204)
