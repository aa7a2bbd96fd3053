"""Reading and checking a Function's ``requirements`` for the bundle's requirements.txt.

Only plain PEP 508 requirements are allowed: pip options (``-r``, ``-e``,
``--index-url``...), URLs and local paths are rejected before anything is sent.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from ._exceptions import BundleError

try:
    from packaging.requirements import InvalidRequirement, Requirement
except ImportError:  # packaging is optional: fall back to a conservative pattern
    # The fallback rebinds the imported class names, which their types do not allow.
    Requirement = None  # type: ignore[assignment,misc]
    InvalidRequirement = ValueError  # type: ignore[assignment,misc]

_OP = r"(?:~=|===|==|!=|<=|>=|<|>)"
_PLAIN = re.compile(
    rf"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"  # name
    r"(?:\s*\[\s*[A-Za-z0-9._-]+(?:\s*,\s*[A-Za-z0-9._-]+)*\s*\])?"  # extras
    rf"(?:\s*\(?\s*{_OP}\s*[A-Za-z0-9.*+!_-]+(?:\s*,\s*{_OP}\s*[A-Za-z0-9.*+!_-]+)*\s*\)?)?"
    r"\s*(?:;.*)?$"  # environment marker
)
_URL = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def read_requirements(requirements: str | os.PathLike[str] | Iterable[str]) -> list[str]:
    """Return the checked requirement lines.

    Args:
        requirements: A path to a requirements file, or an iterable of requirement strings.

    Raises:
        BundleError: The file is missing, or a line is not a plain requirement.
    """
    if isinstance(requirements, (str, os.PathLike)):
        lines = _read_file(requirements)
    else:
        lines = [str(line).strip() for line in requirements]
    return [check_requirement(line) for line in lines if line]


def _read_file(path: str | os.PathLike[str]) -> list[str]:
    if not os.path.isfile(path):
        raise BundleError(
            f"Requirements file {os.fspath(path)!r} not found. To give a single requirement, "
            "pass it wrapped in a list."
        )
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    lines = []
    for line in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line:
            lines.append(line)
    return lines


def check_requirement(line: str) -> str:
    """Return ``line`` when it is a plain PEP 508 requirement.

    Raises:
        BundleError: ``line`` is a pip option, a URL, a path or otherwise invalid.
    """
    if line.startswith("-"):
        raise BundleError(f"Invalid Python requirement {line!r}: pip options are not allowed")
    if _URL.search(line) or line.startswith((".", "/", "~")):
        raise BundleError(f"Invalid Python requirement {line!r}: URLs and paths are not allowed")
    if Requirement is None:
        if not _PLAIN.match(line):
            raise BundleError(f"Invalid Python requirement: {line!r}")
        return line
    try:
        parsed = Requirement(line)
    except InvalidRequirement as exc:
        raise BundleError(f"Invalid Python requirement {line!r}: {exc}") from exc
    if parsed.url:
        raise BundleError(f"Invalid Python requirement {line!r}: URLs are not allowed")
    return line
