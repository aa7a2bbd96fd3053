"""The list endpoint shared by every resource: parse, query, answer the page envelope."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, current_app, jsonify, request

from compute.server.extensions import db

from ..auth import current_identity
from ..ownership import owner_scope
from ..query.fields import Field
from ..query.listing import CountHint, parse_list_query, run_list_query


def serve_list(
    model: Any,
    fields: dict[str, Field],
    allowed_includes: set[str],
    to_json: Callable[[Any, list[str]], dict[str, Any]],
    count_hint: CountHint | None = None,
) -> Response:
    config = current_app.config
    # Each user's cursors are signed for them alone: replayed by anyone else, a cursor is
    # invalid (400), so the filter and total it carries never reach another user.
    secret = f"{config['SECRET_KEY']}:{current_identity().user_id}"
    query = parse_list_query(
        request.args,
        fields,
        allowed_includes,
        config["DEFAULT_PAGE_SIZE"],
        config["MAX_PAGE_SIZE"],
        secret,
    )
    page = run_list_query(db.session, model, fields, owner_scope(model), query, secret, count_hint)
    return jsonify(
        {
            "data": [to_json(row, page.include) for row in page.rows],
            "meta": {"page_cursor": page.cursor, "total": page.total},
        }
    )
