from __future__ import annotations

import builtins
import io
import os
import socket
from collections.abc import Iterator

import pytest

from worker.build import RequirementsError, parse_requirements
from worker.build.requirements import requirements_file_text


@pytest.fixture
def no_io(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail the test if parsing opens a file or a connection."""

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"parsing requirements must do no I/O: {args!r}")

    monkeypatch.setattr(builtins, "open", forbidden)
    monkeypatch.setattr(io, "open", forbidden)
    monkeypatch.setattr(os, "open", forbidden)
    monkeypatch.setattr(socket, "socket", forbidden)
    monkeypatch.setattr(socket, "create_connection", forbidden)
    yield


REFUSED = [
    ("-r /etc/passwd", "pip options"),
    ("--requirement=/etc/passwd", "pip options"),
    ("-e git+https://example.com/repo.git#egg=x", "pip options"),
    ("-c constraints.txt", "pip options"),
    ("--index-url https://evil.example/simple", "pip options"),
    ("-i https://evil.example/simple", "pip options"),
    ("--extra-index-url https://evil.example/simple", "pip options"),
    ("-f /tmp/wheels", "pip options"),
    ("--find-links https://evil.example/", "pip options"),
    ("--trusted-host evil.example", "pip options"),
    ("--pre", "pip options"),
    ("requests==2.31 --hash=sha256:abc", "pip options"),
    ("tinypkg @ https://evil.example/tinypkg.whl", "URLs and paths"),
    ("tinypkg @ file:///etc/passwd", "URLs and paths"),
    ("tinypkg@file:/etc/passwd", "direct references|URLs and paths"),
    ("tinypkg @ ./local/dir", "direct references"),
    ("https://evil.example/tinypkg-1.0.tar.gz", "URLs and paths"),
    ("file:///etc/passwd", "URLs and paths"),
    ("file:../sibling", "URLs and paths"),
    ("git+https://example.com/repo.git", "URLs and paths"),
    ("/etc/passwd", "URLs and paths"),
    ("./local/pkg", "URLs and paths"),
    ("../pkg", "URLs and paths"),
    ("~/pkg", "URLs and paths"),
    ("C:\\pkgs\\x.whl", "URLs and paths"),
    ("pkgs\\x", "paths are not accepted"),
    ("tinypkg-1.0-py3-none-any.whl", "paths are not accepted"),
    ("tinypkg-1.0.tar.gz", "paths are not accepted"),
    ("numpy>=1 \\", "line continuations"),
    ("not a requirement!", "not a valid requirement"),
]


@pytest.mark.parametrize(("line", "reason"), REFUSED)
def test_refused_lines_name_the_line_and_read_nothing(no_io: None, line: str, reason: str) -> None:
    text = f"# a comment\n\nnumpy\n{line}\n"
    with pytest.raises(RequirementsError, match=reason) as refused:
        parse_requirements(text)
    message = str(refused.value)
    assert message.startswith("requirements.txt line 4: ")
    assert "root:x:0:0" not in message


def test_comments_blank_lines_and_inline_comments_are_ignored() -> None:
    text = "\n# all comments\n   \nnumpy  # fast arrays\n\t# indented comment\n"
    assert parse_requirements(text) == ["numpy"]
    assert parse_requirements("") == []


def test_normalization_sorts_deduplicates_and_canonicalizes() -> None:
    text = "\n".join(
        [
            "Requests[Socks,security] >= 2.0, <3",
            "requests[security,socks]<3,>=2.0",
            "zope.interface",
            "Foo_Bar ==1.0 ; python_version >= '3.8'",
            "aiohttp",
        ]
    )
    assert parse_requirements(text) == [
        "aiohttp",
        'foo-bar==1.0; python_version >= "3.8"',
        "requests[security,socks]<3,>=2.0",
        "zope-interface",
    ]


def test_equivalent_spellings_give_the_same_list() -> None:
    assert parse_requirements("B\nA>=1,<2\n") == parse_requirements("a <2, >=1\nb\nb\n")


def test_the_requirements_file_holds_only_parsed_values() -> None:
    parsed = parse_requirements("Foo_Bar>=1  # pinned below 2\n")
    assert requirements_file_text(parsed) == "foo-bar>=1\n"


def test_long_lines_are_shortened_in_messages() -> None:
    with pytest.raises(RequirementsError) as refused:
        parse_requirements("-r " + "x" * 5000)
    assert len(str(refused.value)) < 300


def test_too_many_or_too_large() -> None:
    with pytest.raises(RequirementsError, match="more than 1000 packages"):
        parse_requirements("\n".join(f"package{n}" for n in range(1001)))
    with pytest.raises(RequirementsError, match="larger than"):
        parse_requirements("# padding\n" * 100_000)
