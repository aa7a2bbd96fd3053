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

Rows stored before these rules existed are read back by `load_stored`, the engine's
JSON deserializer, which never raises: a value it cannot read safely comes back as
`Unreadable` instead of failing every list and delete that touches its row.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from typing import Any

from flask import current_app

from .errors import BadRequest, Invalid

logger = logging.getLogger(__name__)

# Deep enough for any real arguments; configurable as MAX_JSON_DEPTH.
MAX_JSON_DEPTH = 64
# What stored JSON may reach and still be read back: the json parser and encoder recurse
# once per level (as does the worker's), so this stays far below Python's recursion
# limit. A configured MAX_JSON_DEPTH is held under it, so what was accepted stays readable.
MAX_STORED_DEPTH = 256

# A JSON string (escapes included) or one bracket: strings are skipped whole, so brackets
# inside them do not count.
_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_TOKEN = re.compile(_STRING + r"|[\[\]{}]", re.DOTALL)
# Strings whole, then runs of anything but brackets and quotes, then a stray quote.
_NOT_A_BRACKET = re.compile(_STRING + r'|[^\[\]{}"]+|"', re.DOTALL)
# One alternation, so `{[]}` loses one level per pass, never two.
_INNERMOST_PAIR = re.compile(r"\[\]|\{\}")
_UNSTORABLE_CHARACTER = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class Unreadable:
    """A stored JSON value that cannot be loaded safely (too deep, or not JSON at all)."""

    reason: str


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


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored (a NUL or lone surrogate), or None when it can."""
    found = _UNSTORABLE_CHARACTER.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (\\u0000), which cannot be stored"
    return f"contains a lone surrogate (\\u{ord(found.group()):04x}), which is not valid Unicode"


def max_depth() -> int:
    """The nesting cap for input: MAX_JSON_DEPTH if configured, never past what reads back."""
    configured = int(current_app.config.get("MAX_JSON_DEPTH", MAX_JSON_DEPTH))
    return min(configured, MAX_STORED_DEPTH)


def load_stored(data: str | bytes) -> Any:
    """Load a JSON value read from the database, or `Unreadable` if that is not safe.

    Used as the engine's JSON deserializer, so one hostile row never makes a list, a
    read or a delete of its neighbours fail.
    """
    text = data if isinstance(data, str) else bytes(data).decode("utf-8", "surrogatepass")
    if _depth_exceeded(text, MAX_STORED_DEPTH) is not None:
        return _unreadable(f"nested deeper than {MAX_STORED_DEPTH} levels")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        return _unreadable(f"not valid JSON ({error})")


def _unreadable(reason: str) -> Unreadable:
    logger.warning("a stored JSON value cannot be read: %s", reason)
    return Unreadable(reason)


def _parse(text: str, field: str | None) -> tuple[Any, _Refusal | None]:
    """Parse and check `text`; errors name `field`, or else the top-level key or `body`."""
    limit = max_depth()
    too_deep = f"nests deeper than {limit} levels"
    deep_key = _depth_exceeded(text, limit)
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


def _depth_exceeded(text: str, limit: int) -> str | None:
    """None if `text` nests at most `limit` deep; else the top-level key it nests under.

    The key is "" when the top level is not an object. Regex passes, not a parse: the
    text is cut down to its brackets and each pass removes the innermost pairs, one
    level at a time, so the cost does not depend on the depth of the stack.
    """
    if text.count("[") + text.count("{") <= limit:
        return None  # too few brackets to nest that deep: the common case
    brackets = _NOT_A_BRACKET.sub("", text)
    for _ in range(limit):
        reduced = _INNERMOST_PAIR.sub("", brackets)
        if not reduced:
            return None
        if len(reduced) == len(brackets):
            break  # unbalanced: malformed, unless the scan below finds it too deep
        brackets = reduced
    return _deep_key(text, limit)


def _deep_key(text: str, limit: int) -> str | None:
    """Like `_depth_exceeded`, token by token: slower, but it knows the key."""
    depth = 0
    top_is_object = False
    key = ""  # the last string at depth 1 of an object: the key of what opens next
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token == "[" or token == "{":
            depth += 1
            if depth == 1:
                top_is_object = token == "{"
            elif depth > limit:
                return _key_name(key) if top_is_object else ""
        elif token == "]" or token == "}":
            depth -= 1
        elif depth == 1 and top_is_object:
            key = token
    return None


def _key_name(token: str) -> str:
    try:
        name = json.loads(token) if token else ""
    except ValueError:
        return ""
    return _printable(name) if isinstance(name, str) else ""


def _printable(text: str) -> str:
    """`text` with any NUL or lone surrogate escaped, so an error message can carry it."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")


def _first_refusal(value: Any, field: str | None) -> _Refusal | None:
    """The first value the rules refuse, naming `field` or else its top-level key."""
    if field is not None or not isinstance(value, dict):
        return _problem(value, field or "body")
    for key, item in value.items():
        name = _printable(key)
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
