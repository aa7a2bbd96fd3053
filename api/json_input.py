"""The one gate for JSON the API reads: request bodies, JSON query parameters, stored rows.

A client's values are stored, compared in SQL and handed to workers, so whatever cannot
survive those trips is refused here, before anything is written, with a 4xx naming the
field:

- nesting deeper than `MAX_JSON_DEPTH`, measured on the raw text without recursion, so
  no parser, encoder or worker downstream ever meets a document deep enough to exhaust
  its stack (a 100,000-deep body costs this check a few regex passes, not a stack);
- `NaN` and `Infinity` (not JSON) and numbers no double can hold (`1e400`);
- lone surrogates and NUL characters, in keys or values: UTF-8 and PostgreSQL cannot
  store them.

Statuses follow the protocol: a body that cannot be read (syntax, non-JSON constants,
nesting past the cap) is a 400; a readable body with a value these rules refuse is a
422; a JSON query parameter is a 400 either way.

What is already stored is read back by `compute.server.stored_json`, which never raises.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import Any

from compute.server.settings import current_settings
from compute.server.stored_json import (
    MAX_STORED_DEPTH,
    depth_exceeded,
    printable,
    text_problem,
)

from .errors import BadRequest, Invalid

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Constant:
    """`NaN`, `Infinity` or `-Infinity` as parsed: kept, to be refused naming its field."""

    name: str


@dataclass(frozen=True)
class _Refusal:
    field: str
    message: str
    unreadable: bool  # the document cannot be read (400), rather than a value refused


def parse_body(data: bytes) -> Any:
    """The JSON value of a request body, checked against every rule above.

    Raises:
        BadRequest: The body is not JSON, or nests deeper than the cap (400).
        Invalid: A value is refused (422); both name the top-level field, or `body`.
    """
    try:
        # As json.loads(bytes) decodes: surrogates pass, to be refused naming their field.
        text = data.decode(json.detect_encoding(data), "surrogatepass")
    except UnicodeDecodeError as error:
        raise BadRequest(f"The request body is not valid UTF-8: {error.reason}.") from error
    value, refusal = _parse(text, field=None)
    if refusal is None:
        return value
    if refusal.unreadable:
        detail = f"The request body cannot be read: '{refusal.field}' {refusal.message}."
        raise BadRequest(detail, {refusal.field: [refusal.message]})
    raise Invalid.field(refusal.field, refusal.message)


def parse_query(text: str, name: str) -> Any:
    """The JSON value of the query parameter `name`; a 400 naming it if any rule refuses it."""
    value, refusal = _parse(text, field=name)
    if refusal is not None:
        raise BadRequest(f"'{name}' {refusal.message}.", {name: [refusal.message]})
    return value


def max_depth() -> int:
    """The nesting cap for input: MAX_JSON_DEPTH if configured, never past what reads back."""
    configured = current_settings().max_json_depth
    return min(configured, MAX_STORED_DEPTH)


def _parse(text: str, field: str | None) -> tuple[Any, _Refusal | None]:
    """Parse and check `text`; errors name `field`, or else the top-level key or `body`."""
    limit = max_depth()
    too_deep = f"nests deeper than {limit} levels"
    deep_key = depth_exceeded(text, limit)
    if deep_key is not None:
        return None, _Refusal(field or deep_key or "body", too_deep, unreadable=True)
    try:
        value = json.loads(text, parse_constant=_Constant)
    except RecursionError:  # unreachable past the scan above; never a 500 all the same
        return None, _Refusal(field or "body", too_deep, unreadable=True)
    except ValueError as error:
        message = f"is not valid JSON: {error}"
        return None, _Refusal(field or "body", message, unreadable=True)
    return value, _first_refusal(value, field)


def _first_refusal(value: Any, field: str | None) -> _Refusal | None:
    """The first value the rules refuse, naming `field` or else its top-level key."""
    if field is not None or not isinstance(value, dict):
        return _problem(value, field or "body")
    for key, item in value.items():
        name = printable(key)
        problem = text_problem(key)
        if problem is not None:
            return _Refusal(name, f"is a field name that {problem}", unreadable=False)
        refusal = _problem(item, name)
        if refusal is not None:
            return refusal
    return None


def _problem(value: Any, field: str) -> _Refusal | None:
    """What the rules refuse in `value`, walked with an explicit stack (no recursion)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem is not None:
                return _Refusal(field, f"holds a string that {problem}", unreadable=False)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            for key in item:
                problem = text_problem(key)
                if problem is not None:
                    return _Refusal(field, f"holds a key that {problem}", unreadable=False)
            stack.extend(item.values())
        elif isinstance(item, float) and not math.isfinite(item):
            message = "holds a number too large for a double (e.g. 1e400); numbers must be finite"
            return _Refusal(field, message, unreadable=False)
        elif isinstance(item, _Constant):
            message = f"holds {item.name}, which is not a JSON value"
            return _Refusal(field, message, unreadable=True)
    return None
