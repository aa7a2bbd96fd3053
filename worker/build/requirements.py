"""Turn a bundle's requirements.txt into plain PEP 508 requirements, refusing anything else.

requirements.txt is a pip input format, and pip obeys what it says: `-r /etc/shadow`
reads a worker file (and echoes it into errors that reach the user's build log),
`--index-url` sends the build to any host, `pkg @ file:///...` installs from a worker
path. Only `name[extras] specifiers ; marker` lines pass, and the installer is fed a
file written from the parsed values, never the user's text. No line is ever opened,
fetched or resolved here.
"""

from __future__ import annotations

import re
from typing import NoReturn

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from .errors import RequirementsError

MAX_REQUIREMENTS_BYTES = 256 * 1024
MAX_REQUIREMENTS = 1000
MAX_SHOWN = 120
# Forms a PEP 508 parser might accept or that could smuggle a location past it.
LOCATION_PREFIXES = ("/", "./", "../", "~", "file:", "git+", "hg+", "svn+", "bzr+")
# pip installs a line naming an existing archive file as that local file.
ARCHIVE_SUFFIXES = (".whl", ".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz")
DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
OPTION = re.compile(r"(^|\s)--?[A-Za-z]")
INLINE_COMMENT = re.compile(r"\s+#.*$")


def parse_requirements(text: str) -> list[str]:
    """Parse requirements.txt text into sorted, de-duplicated, normalized requirements.

    Blank lines and comments are skipped. The result is also the requirements' share of
    an environment's cache key, so equivalent spellings (`Foo_Bar>=1` and `foo-bar >= 1`)
    give the same list.

    Args:
        text: the file's contents.

    Returns:
        Requirements such as `numpy>=1.26` or `foo[bar]==1; python_version >= "3.10"`.

    Raises:
        RequirementsError: naming the first refused line and why.
    """
    if len(text.encode()) > MAX_REQUIREMENTS_BYTES:
        raise RequirementsError(f"requirements.txt is larger than {MAX_REQUIREMENTS_BYTES:,} bytes")
    normalized: set[str] = set()
    for number, line in _lines(text):
        normalized.add(normalize_requirement(line, number))
        if len(normalized) > MAX_REQUIREMENTS:
            raise RequirementsError(f"requirements.txt lists more than {MAX_REQUIREMENTS} packages")
    return sorted(normalized)


def normalize_requirement(line: str, number: int = 1) -> str:
    """One requirement line in canonical form, or `RequirementsError` naming the line."""
    if line.endswith("\\"):
        _refuse(number, line, "line continuations are not accepted; one package per line")
    if line.startswith("-") or OPTION.search(line):
        _refuse(number, line, "pip options are not accepted; list one package per line")
    lowered = line.lower()
    if "://" in line or lowered.startswith(LOCATION_PREFIXES) or DRIVE.match(line):
        _refuse(number, line, "URLs and paths are not accepted; name a package from the index")
    if "\\" in line or lowered.endswith(ARCHIVE_SUFFIXES):
        _refuse(number, line, "paths are not accepted; name a package from the index")
    try:
        requirement = Requirement(line)
    except InvalidRequirement as error:
        _refuse(number, line, f"not a valid requirement ({_first_line(str(error))})")
    if requirement.url:
        _refuse(number, line, "direct references ('name @ url') are not accepted")
    return _canonical(requirement)


def _canonical(requirement: Requirement) -> str:
    text: str = canonicalize_name(requirement.name)
    if requirement.extras:
        text += "[" + ",".join(sorted(canonicalize_name(e) for e in requirement.extras)) + "]"
    # SpecifierSet prints its clauses sorted, so `<2,>=1` and `>=1,<2` agree.
    text += str(requirement.specifier)
    if requirement.marker is not None:
        text += f"; {requirement.marker}"
    return text


def _lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) for every line that holds something, comments stripped."""
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = INLINE_COMMENT.sub("", raw).strip()
        if line and not line.startswith("#"):
            lines.append((number, line))
    return lines


def _refuse(number: int, line: str, reason: str) -> NoReturn:
    shown = line if len(line) <= MAX_SHOWN else line[:MAX_SHOWN] + "..."
    raise RequirementsError(f"requirements.txt line {number}: {shown!r}: {reason}")


def _first_line(message: str) -> str:
    return message.splitlines()[0] if message else "unparseable"


def requirements_file_text(requirements: list[str]) -> str:
    """The requirements file the installer reads, written from parsed values only."""
    return "".join(f"{requirement}\n" for requirement in requirements)
