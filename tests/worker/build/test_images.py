from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.capabilities import missing_capability
from worker.build import ImageError, InterpreterRegistry, parse_image
from worker.build.images import probe

from .conftest import IMAGE

RUNNING_MINOR = sys.version_info.minor


def other_interpreter() -> Path:
    """A Python 3 of another minor version than this one, from PATH or pyenv."""
    for minor in range(8, 20):
        if minor == RUNNING_MINOR:
            continue
        candidates = [shutil.which(f"python3.{minor}")]
        candidates += [
            str(p) for p in Path.home().glob(f".pyenv/versions/3.{minor}.*/bin/python3.{minor}")
        ]
        for candidate in filter(None, candidates):
            if probe(Path(candidate)) is not None:
                return Path(candidate)
    missing_capability("a second Python 3 version, on PATH or under ~/.pyenv")


def isolated_registry(tmp_path: Path, configured: list[str] = []) -> InterpreterRegistry:  # noqa: B006
    return InterpreterRegistry(configured, search_path=False, pyenv_root=tmp_path / "no-pyenv")


@pytest.mark.parametrize(
    ("image", "minor"),
    [("python3.10:latest", 10), ("python3.11", 11), ("python3.12:latest", 12), (" python3.9 ", 9)],
)
def test_parse_image(image: str, minor: int) -> None:
    assert parse_image(image) == minor


@pytest.mark.parametrize("image", ["python2.7", "ubuntu:22.04", "python3.11:slim", "python3", ""])
def test_parse_image_refuses_other_names(image: str) -> None:
    with pytest.raises(ImageError, match="python3.X:latest"):
        parse_image(image)


def test_the_running_interpreter_is_always_available(tmp_path: Path) -> None:
    registry = isolated_registry(tmp_path)
    assert registry.images() == [IMAGE]
    interpreter = registry.resolve(IMAGE)
    assert interpreter.version == ".".join(map(str, sys.version_info[:3]))
    assert interpreter.path.is_file()
    assert registry.resolve(f"python3.{RUNNING_MINOR}") == interpreter


def test_unknown_image_lists_the_available_ones(tmp_path: Path) -> None:
    registry = isolated_registry(tmp_path)
    with pytest.raises(ImageError) as unknown:
        registry.resolve("python3.99:latest")
    assert str(unknown.value) == (
        f"image 'python3.99:latest' is not available; available images: {IMAGE}"
    )
    with pytest.raises(ImageError, match=f"available images: {IMAGE}"):
        registry.resolve("debian:bookworm")


def test_configured_interpreters_are_added(tmp_path: Path) -> None:
    other = other_interpreter()
    registry = isolated_registry(tmp_path, [str(other), str(tmp_path / "missing-python")])
    interpreter = registry.resolve(f"python3.{parse_image(other.name)}")
    assert interpreter == probe(other)
    assert len(registry.images()) == 2


def test_pyenv_versions_are_discovered(tmp_path: Path) -> None:
    other = other_interpreter()
    # A pyenv-shaped tree whose one version links to a real interpreter.
    version_dir = tmp_path / "pyenv" / "versions" / "3.x" / "bin"
    version_dir.mkdir(parents=True)
    (version_dir / other.name).symlink_to(other)
    (version_dir / f"{other.name}-config").write_text("not an interpreter")
    registry = InterpreterRegistry(search_path=False, pyenv_root=tmp_path / "pyenv")
    assert f"python3.{parse_image(other.name)}:latest" in registry.images()


def test_broken_candidates_are_skipped(tmp_path: Path) -> None:
    fake = tmp_path / "python3.7"
    fake.write_text("#!/bin/sh\necho not json\n")
    fake.chmod(0o755)
    assert probe(fake) is None
    assert probe(tmp_path / "absent") is None
