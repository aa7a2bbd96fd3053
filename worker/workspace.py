"""This machine's copy of a function: its unpacked bundle and its environment.

Fetched from the shared blob store and unpacked once per machine and function bundle
(keyed by the bundle's digest), so any machine can run any function's jobs; each worker
process finds it there, and its environment in the (image, requirements) cache, so a
process after the first costs milliseconds and no download.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from compute.server.models import Function
from compute.server.settings import current_settings

from .build import BuildError, BuildSettings, build_function, environment_of_unpacked
from .bundle_fetch import fetched_bundle

_prepared: dict[tuple[str, str], tuple[Path, Path]] = {}


class PreparationError(Exception):
    """The function cannot run here: its bundle or environment could not be made."""


@dataclass(frozen=True)
class FunctionCode:
    """What a worker needs of a function to run its code: its bundle and its image."""

    id: str
    bundle_sha256: str | None
    bundle_key: str | None
    image: str

    # Selected in this order (`FunctionCode(*row)`).
    COLUMNS = (Function.id, Function.bundle_sha256, Function.bundle_key, Function.image)


def prepare_function(function: FunctionCode) -> tuple[Path, Path]:
    """Return (environment python, unpacked bundle directory) for `function`."""
    key = (function.id, function.bundle_sha256 or "")
    if key in _prepared and _prepared[key][1].is_dir():
        return _prepared[key]
    settings = current_settings()
    bundles_root = settings.work_dir / "bundles"
    bundles_root.mkdir(parents=True, exist_ok=True)
    # The worker's alone: each job and executor runs from a copy of its own, so no job
    # can read another function's code here.
    bundles_root.chmod(0o700)
    final_dir = bundles_root / f"{function.id}-{(function.bundle_sha256 or 'none')[:16]}"
    build_settings = BuildSettings.from_settings(settings)
    if final_dir.is_dir():
        # Another process of this machine unpacked and built it (a directory appears
        # there only whole): its environment is in the cache, and nothing is downloaded.
        try:
            env_python = environment_of_unpacked(final_dir, function.image, build_settings)
        except BuildError as error:
            raise PreparationError(str(error)) from None
        _prepared[key] = (env_python, final_dir)
        return _prepared[key]
    staging = bundles_root / f".{final_dir.name}-{uuid.uuid4().hex}"
    store = current_app.extensions["blobstore"]
    with fetched_bundle(store, function.bundle_key, build_settings.scratch_root) as bundle:
        if bundle is None:
            raise PreparationError("the function's bundle is missing from the blob store")
        result = build_function(bundle, function.image, build_settings, unpack_to=staging)
    if not result.ok or result.env_python is None:
        shutil.rmtree(staging, ignore_errors=True)
        raise PreparationError(result.error or "the environment could not be built")
    try:
        os.rename(staging, final_dir)
    except OSError:
        # Another worker process on this machine got there first; use its copy.
        shutil.rmtree(staging, ignore_errors=True)
    _prepared[key] = (result.env_python, final_dir)
    return _prepared[key]
