"""Building a Function's code bundle: the zip uploaded before the service builds it.

Layout (see the protocol's "The code bundle")::

    __dlentrypoint__.py   defines ``main``
    __dlmeta__.json       {"python": "3.11", "kind": "source" | "import" | "cloudpickle"},
                          plus "cloudpickle": "<the version that pickled it>" for that kind
    __dlfunction__.pkl    the pickled function, for the cloudpickle kind only
    requirements.txt      only when there are requirements
    data/..., pkg/...     include_data and include_modules files, at their path
                          relative to the sys.path entry holding them

A pickled function does not require cloudpickle: the runner loads it with the service's
own copy, unless the requirements list cloudpickle themselves.
"""

from __future__ import annotations

import glob
import importlib
import json
import os
import re
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle

from ._entrypoint import ENTRYPOINT, PYTHON_VERSION, Entrypoint, make_entrypoint
from ._exceptions import BundleError
from ._requirements import read_requirements

META_FILE = "__dlmeta__.json"
REQUIREMENTS_FILE = "requirements.txt"
_IMAGE_PYTHON = re.compile(r"python(\d+)\.(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class Bundle:
    """A bundle written to a temporary zip file.

    Attributes:
        path: The zip file.
        kind: How the entrypoint defines ``main`` (see :class:`Entrypoint`).
        python: The ``major.minor`` Python version of the client that built it.
    """

    path: Path
    kind: str
    python: str = PYTHON_VERSION


@contextmanager
def build_bundle(
    function: Callable[..., Any] | str,
    requirements: str | os.PathLike[str] | Iterable[str] | None = None,
    include_data: Iterable[str] | None = None,
    include_modules: Iterable[str] | None = None,
) -> Iterator[Bundle]:
    """Write the bundle to a temporary zip file, removed when the context exits.

    Args:
        function: The callable, or the dotted path of an importable callable.
        requirements: A requirements file path, or a list of PEP 508 requirements.
        include_data: Glob patterns of data files to ship.
        include_modules: Names of local modules or packages to ship.

    Raises:
        BundleError: Something cannot be bundled; nothing has been sent.
    """
    entrypoint = make_entrypoint(function)
    lines = read_requirements(requirements) if requirements else []
    members: dict[str, Path] = {}
    for path in _data_files(include_data or ()):
        members.setdefault(_archive_name(path), path)
    for path in _module_files(include_modules or ()):
        members.setdefault(_archive_name(path), path)
    handle, name = tempfile.mkstemp(prefix="compute-bundle-", suffix=".zip")
    os.close(handle)
    try:
        _write_zip(Path(name), entrypoint, lines, members)
        yield Bundle(Path(name), entrypoint.kind)
    finally:
        os.unlink(name)


def _write_zip(
    target: Path, entrypoint: Entrypoint, requirements: list[str], members: dict[str, Path]
) -> None:
    meta = {"python": PYTHON_VERSION, "kind": entrypoint.kind}
    if entrypoint.kind == "cloudpickle":
        meta["cloudpickle"] = cloudpickle.__version__
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(ENTRYPOINT, entrypoint.source)
        archive.writestr(META_FILE, json.dumps(meta) + "\n")
        for name, data in entrypoint.files.items():
            archive.writestr(name, data)
        if requirements:
            archive.writestr(REQUIREMENTS_FILE, "\n".join(requirements) + "\n")
        for name, path in sorted(members.items()):
            archive.write(path, arcname=name)


def _sys_path_root(path: Path) -> Path:
    """The longest sys.path entry containing ``path``."""
    roots = [Path(os.path.abspath(entry or os.curdir)) for entry in sys.path]
    matches = [root for root in roots if root == path or root in path.parents]
    if not matches:
        raise BundleError(f"{path} is not under any sys.path entry, so it cannot be bundled")
    return max(matches, key=lambda root: len(root.parts))


def _archive_name(path: Path) -> str:
    return path.relative_to(_sys_path_root(path)).as_posix()


def _data_files(patterns: Iterable[str]) -> Iterator[Path]:
    for pattern in patterns:
        matches = glob.glob(pattern, recursive=True)
        if not matches:
            if glob.has_magic(pattern):
                warnings.warn(f"Include data pattern had no matches: {pattern}", stacklevel=4)
                continue
            raise BundleError(f"No data file found for path: {pattern}")
        for match in sorted(matches):
            path = Path(os.path.abspath(match))
            if path.is_dir():
                if glob.has_magic(pattern):
                    continue
                raise BundleError(
                    f"Cannot include a directory as data: {match}; use a glob such as "
                    f"{match.rstrip('/')}/**/*"
                )
            yield path


def _module_files(names: Iterable[str]) -> Iterator[Path]:
    for name in names:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise BundleError(f"Cannot include module {name!r}: {exc}") from exc
        file = getattr(module, "__file__", None)
        if not file or not file.endswith(".py") or not os.path.isfile(file):
            raise BundleError(f"Cannot include module {name!r}: no Python source file")
        path = Path(os.path.abspath(file))
        if "site-packages" in path.parts or "dist-packages" in path.parts:
            raise BundleError(
                f"Cannot include installed module {name!r} ({path}); list it in requirements"
            )
        root = _sys_path_root(path)
        folders = path.parent.relative_to(root).parts
        for depth in range(1, len(folders) + 1):
            yield from _existing(root.joinpath(*folders[:depth], "__init__.py"))
        if path.name == "__init__.py":
            for source in sorted(path.parent.rglob("*.py")):
                if "__pycache__" not in source.parts:
                    yield source
        else:
            yield path


def _existing(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path


def default_image() -> str:
    """The image matching the local interpreter, e.g. ``python3.11:latest``."""
    return f"python{PYTHON_VERSION}:latest"


def check_image(image: str, bundle: Bundle) -> None:
    """Refuse a pickled bundle for an image running another Python version.

    Raises:
        BundleError: ``image`` names a Python version other than the bundle's.
    """
    match = _IMAGE_PYTHON.search(image)
    if bundle.kind != "cloudpickle" or not match:
        return
    wanted = f"{match.group(1)}.{match.group(2)}"
    if wanted != bundle.python:
        raise BundleError(
            f"This function is shipped pickled, which needs the same Python on both ends, "
            f"but image {image!r} runs Python {wanted} and this client runs {bundle.python}. "
            f"Use image 'python{bundle.python}:latest', or define the function at the top "
            "level of a module without closures or module-level values."
        )
