"""Fixtures for build tests: an offline wheelhouse, build settings, this Python's image.

Nothing here reaches the network: packages are built locally with `uv build --offline`
(using uv's built-in backend) and installed with `--no-index --find-links`.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

from tests.capabilities import missing_capability
from worker.build import InstallerOptions
from worker.build.installer import find_uv

IMAGE = f"python3.{sys.version_info.minor}:latest"
SLOW_BACKEND = """
import os, time
def _hang(*args, **kwargs):
    with open({pid_file!r}, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(300)
get_requires_for_build_wheel = lambda config_settings=None: []
build_wheel = prepare_metadata_for_build_wheel = _hang
"""


def _write_package(root: Path, name: str, body: str) -> Path:
    package = root / name
    (package / "src" / name).mkdir(parents=True)
    (package / "src" / name / "__init__.py").write_text(body)
    (package / "pyproject.toml").write_text(
        textwrap.dedent(f"""\
            [project]
            name = "{name}"
            version = "1.0"
            requires-python = ">=3.8"

            [project.scripts]
            {name}-hello = "{name}:hello"

            [build-system]
            requires = ["uv_build>=0.7,<1"]
            build-backend = "uv_build"
            """)
    )
    return package


def _slow_sdist(wheelhouse: Path, pid_file: Path) -> None:
    """An sdist whose in-tree build backend records its pid and hangs."""
    files = {
        "slowpkg-1.0/pyproject.toml": (
            '[project]\nname = "slowpkg"\nversion = "1.0"\n\n'
            '[build-system]\nrequires = []\nbuild-backend = "slowbackend"\nbackend-path = ["."]\n'
        ),
        "slowpkg-1.0/slowbackend.py": SLOW_BACKEND.format(pid_file=str(pid_file)),
        "slowpkg-1.0/PKG-INFO": "Metadata-Version: 2.1\nName: slowpkg\nVersion: 1.0\n",
    }
    with tarfile.open(wheelhouse / "slowpkg-1.0.tar.gz", "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of local packages: `tinypkg` (a wheel with a script) and `slowpkg`."""
    uv = find_uv()
    if uv is None:
        missing_capability("uv (to build the test wheel)")
    sources = tmp_path_factory.mktemp("sources")
    wheelhouse = tmp_path_factory.mktemp("wheelhouse")
    body = "VALUE = 42\n\ndef hello() -> None:\n    print('hello from tinypkg')\n"
    package = _write_package(sources, "tinypkg", body)
    subprocess.run(
        [str(uv), "build", "--wheel", "--offline", "--no-index", "--no-config",
         "--out-dir", str(wheelhouse), str(package)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    _slow_sdist(wheelhouse, wheelhouse.parent / "slow-backend.pid")
    return wheelhouse


@pytest.fixture
def slow_backend_pid_file(wheelhouse: Path) -> Path:
    return wheelhouse.parent / "slow-backend.pid"


@pytest.fixture
def installer_options(wheelhouse: Path) -> InstallerOptions:
    return InstallerOptions(wheelhouse=wheelhouse, timeout_seconds=120)
