"""Wheels made offline for the execution tests' wheelhouse.

A pure-Python package is built with `uv build --offline` (uv's own backend, no download);
an installed distribution such as cloudpickle is packed back into a wheel from its files,
since a wheel is only a zip of the package plus a `*.dist-info` with METADATA, WHEEL and
RECORD.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import subprocess
import textwrap
import zipfile
from pathlib import Path

from tests.capabilities import missing_capability
from worker.build.installer import find_uv

# Files an installer writes into dist-info; they do not belong in a wheel.
INSTALL_ONLY = {"INSTALLER", "REQUESTED", "RECORD", "direct_url.json"}


def build_pure_wheel(sources: Path, out_dir: Path, name: str, body: str) -> Path:
    """Build a wheel of the one-module package `name` whose `__init__.py` is `body`."""
    uv = find_uv()
    if uv is None:
        missing_capability("uv (to build the test wheel)")
    package = sources / name
    (package / "src" / name).mkdir(parents=True)
    (package / "src" / name / "__init__.py").write_text(body)
    (package / "pyproject.toml").write_text(
        textwrap.dedent(f"""\
            [project]
            name = "{name}"
            version = "1.0"
            requires-python = ">=3.8"

            [build-system]
            requires = ["uv_build>=0.7,<1"]
            build-backend = "uv_build"
            """)
    )
    subprocess.run(
        [str(uv), "build", "--wheel", "--offline", "--no-index", "--no-config",
         "--out-dir", str(out_dir), str(package)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return next(out_dir.glob(f"{name}-1.0-*.whl"))


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def wheel_from_installed(distribution_name: str, out_dir: Path) -> Path:
    """Pack the installed pure-Python `distribution_name` into a `py3-none-any` wheel."""
    distribution = importlib.metadata.distribution(distribution_name)
    name = distribution.metadata["Name"].replace("-", "_")
    version = distribution.version
    dist_info = f"{name}-{version}.dist-info"
    members: dict[str, bytes] = {}
    for file in distribution.files or []:
        path = file.as_posix()
        if "__pycache__" in file.parts or path.endswith(".pyc"):
            continue
        if path.startswith(dist_info + "/") and path[len(dist_info) + 1 :] in INSTALL_ONLY:
            continue
        members[path] = Path(str(file.locate())).read_bytes()
    record_name = f"{dist_info}/RECORD"
    record = [_record_line(path, data) for path, data in members.items()] + [f"{record_name},,"]
    target = out_dir / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, data in members.items():
            archive.writestr(path, data)
        archive.writestr(record_name, "\n".join(record) + "\n")
    return target
