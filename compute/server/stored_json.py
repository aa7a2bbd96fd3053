"""JSON as the database holds it: what may be stored, and reading it back safely.

Rows stored before the input rules existed are read back by `load_stored`, the engine's
JSON deserializer, which never raises: a value it cannot read safely comes back as
`Unreadable` instead of failing every list and delete that touches its row. Depth is
measured on the raw text without recursion, so a document deep enough to exhaust a
parser's stack is found before any parser meets it.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

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


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored (a NUL or lone surrogate), or None when it can."""
    found = _UNSTORABLE_CHARACTER.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (\\u0000), which cannot be stored"
    return f"contains a lone surrogate (\\u{ord(found.group()):04x}), which is not valid Unicode"


def load_stored(data: str | bytes) -> Any:
    """Load a JSON value read from the database, or `Unreadable` if that is not safe.

    Used as the engine's JSON deserializer, so one hostile row never makes a list, a
    read or a delete of its neighbours fail.
    """
    text = data if isinstance(data, str) else bytes(data).decode("utf-8", "surrogatepass")
    if depth_exceeded(text, MAX_STORED_DEPTH) is not None:
        return _unreadable(f"nested deeper than {MAX_STORED_DEPTH} levels")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        return _unreadable(f"not valid JSON ({error})")


def _unreadable(reason: str) -> Unreadable:
    logger.warning("a stored JSON value cannot be read: %s", reason)
    return Unreadable(reason)


def depth_exceeded(text: str, limit: int) -> str | None:
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
    """Like `depth_exceeded`, token by token: slower, but it knows the key."""
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
    return printable(name) if isinstance(name, str) else ""


def printable(text: str) -> str:
    """`text` with any NUL or lone surrogate escaped, so an error message can carry it."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")
