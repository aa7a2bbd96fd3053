"""Build a function's environment from its bundle: unpack, check requirements, install.

Plain modules with no Celery or Flask in them; the worker's build task calls
`build_function` and records what it returns.
"""

from __future__ import annotations

from .builder import BuildResult, BuildSettings, build_function, environment_of_unpacked
from .bundle import BundleLimits, UnpackedBundle, unpack_bundle
from .environments import Environment, EnvironmentCache
from .errors import BuildError, BundleError, EnvironmentBuildError, ImageError, RequirementsError
from .images import Interpreter, InterpreterRegistry, parse_image
from .installer import InstallerOptions
from .requirements import parse_requirements

__all__ = [
    "BuildError",
    "BuildResult",
    "BuildSettings",
    "BundleError",
    "BundleLimits",
    "Environment",
    "EnvironmentBuildError",
    "EnvironmentCache",
    "ImageError",
    "InstallerOptions",
    "Interpreter",
    "InterpreterRegistry",
    "RequirementsError",
    "UnpackedBundle",
    "build_function",
    "environment_of_unpacked",
    "parse_image",
    "parse_requirements",
    "unpack_bundle",
]
