"""Opaque, signed page cursors that carry the whole list query and the last row's position.

The published client sends only `page_cursor` after the first page, so the cursor holds
the filter, sort, limit, page size, includes, the count already served and the total.
It never holds the owner: ownership always comes from the token. A cursor whose signature
does not verify is a 400.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from ..errors import BadRequest
from ..json_input import parse_query

CURSOR_CONTEXT = b"compute-page-cursor"


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), CURSOR_CONTEXT, hashlib.sha256).digest()


def encode_cursor(state: dict[str, Any], secret: str) -> str:
    payload = base64.urlsafe_b64encode(
        json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
    ).rstrip(b"=")
    signature = hmac.new(_key(secret), payload, hashlib.sha256).digest()[:16]
    return payload.decode() + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


def decode_cursor(cursor: str, secret: str) -> dict[str, Any]:
    invalid = BadRequest("'page_cursor' is not a valid cursor.", {"page_cursor": ["invalid"]})
    payload, _, signature = cursor.partition(".")
    try:
        given = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        expected = hmac.new(_key(secret), payload.encode(), hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(given, expected):
            raise invalid
        text = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
        state = parse_query(text, "page_cursor")
    except (ValueError, UnicodeError) as error:
        raise invalid from error
    if not isinstance(state, dict):
        raise invalid
    return state
