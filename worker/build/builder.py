"""Build a function: check its bundle and requirements, pick its interpreter, get its environment.

`build_function` never raises for the function owner's mistakes (a bad zip, a refused
requirement, an unknown image, a failed install): they come back as `ok=False` with a
build log that says what went wrong. Only faults of the worker itself (a full disk, a
bug) propagate, so the caller can tell the two apart.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from compute.server.redaction import Redactor

from ..execution.job_user import job_identities
from .bundle import BundleLimits, UnpackedBundle, unpack_bundle
from .environments import Environment, EnvironmentCache
from .errors import BuildError, EnvironmentBuildError, ImageError, RequirementsError
from .images import InterpreterRegistry
from .installer import InstallerOptions
from .report import BuildReport
from .requirements import MAX_REQUIREMENTS_BYTES, parse_requirements

if TYPE_CHECKING:
    from compute.server.settings import Settings


@dataclass(frozen=True)
class BuildSettings:
    """What a worker's builds need to know; the same for every function it builds.

    Attributes:
        env_root: the environment cache's directory, e.g. `<work dir>/envs`.
        installer: package sources, build timeout and installer choice.
        bundle_limits: caps on the bundle zip.
        interpreters: operator-listed interpreter paths, preferred over discovered ones.
        scratch_root: where bundles are unpacked for checking; the system's temp dir if None.
        runs_as: a uid and gid jobs run as when the worker switches users (any of the
            job range): only interpreters those users can run are offered.
        work_dir: the worker's work directory, named `<work>` wherever a build log shows it.
    """

    env_root: Path
    installer: InstallerOptions = field(default_factory=InstallerOptions)
    bundle_limits: BundleLimits = field(default_factory=BundleLimits)
    interpreters: Sequence[str] = ()
    scratch_root: Path | None = None
    runs_as: tuple[int, int] | None = None
    work_dir: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> BuildSettings:
        """Build settings of the service's (`WORK_DIR`, `PYTHON_INTERPRETERS`, ...)."""
        work_dir = settings.work_dir
        user = job_identities(settings).representative()
        return cls(
            env_root=work_dir / "envs",
            installer=InstallerOptions.from_settings(settings),
            interpreters=settings.python_interpreters,
            scratch_root=work_dir / "scratch",
            runs_as=(user.uid, user.gid) if user.switches else None,
            work_dir=work_dir,
        )


@dataclass(frozen=True)
class BuildResult:
    """The outcome of one build; `log_text` is the function's build log either way."""

    ok: bool
    log_text: str
    env_python: Path | None = None
    bundle_dir: Path | None = None
    error: str | None = None
    environment: Environment | None = None
    # This worker offers no interpreter for the image; another node may.
    image_missing: bool = False


@functools.lru_cache(maxsize=8)
def interpreter_registry(
    configured: tuple[str, ...] = (),
    runs_as: tuple[int, int] | None = None,
    copies_root: Path | None = None,
) -> InterpreterRegistry:
    """One registry per interpreter list and job user, so a worker probes them once."""
    return InterpreterRegistry(configured, runs_as=runs_as, copies_root=copies_root)


def interpreter_copies_root(work_dir: Path) -> Path:
    """Where interpreters the job uids cannot reach get their reachable copies."""
    return work_dir / "interpreters"


def build_function(
    bundle: bytes | Path,
    image: str,
    settings: BuildSettings,
    *,
    unpack_to: Path | None = None,
) -> BuildResult:
    """Check a function's bundle and build (or find) the environment its jobs run in.

    Args:
        bundle: the bundle zip's bytes or path.
        image: the function's image, such as `python3.11:latest`.
        settings: the worker's build settings.
        unpack_to: a new directory to keep the unpacked bundle in; when None the bundle
            is unpacked to a temporary directory for checking and removed.

    Returns:
        The result; `bundle_dir` is `unpack_to` when the build succeeded. Its log and
        error show neither the operator's secrets nor the worker's paths.
    """
    if unpack_to is None:
        if settings.scratch_root is not None:
            settings.scratch_root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="bundle-", dir=settings.scratch_root))
        target = scratch / "bundle"
    else:
        scratch, target = None, unpack_to
    redact = _redactor(settings, target, scratch)
    report = BuildReport(image, redact)
    try:
        environment = _build(bundle, image, settings, target, report)
    except BuildError as error:
        shutil.rmtree(target, ignore_errors=True)
        if isinstance(error, EnvironmentBuildError):
            report.installer_output(error.log)
        # The error reaches the function's owner too, as the waiting jobs' error.
        reason = redact(str(error))
        return BuildResult(
            ok=False,
            log_text=report.failed(reason),
            error=reason,
            image_missing=isinstance(error, ImageError),
        )
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return BuildResult(
        ok=True,
        log_text=report.succeeded(),
        env_python=environment.python,
        bundle_dir=unpack_to,
        environment=environment,
    )


def _redactor(settings: BuildSettings, bundle_dir: Path, temp_dir: Path | None) -> Redactor:
    """Hides the operator's secrets, and names the worker's directories by placeholders."""
    directories = [
        (settings.work_dir, "<work>"),
        (settings.env_root, "<environments>"),
        (settings.scratch_root, "<temp>"),
        (temp_dir, "<temp>"),
        (settings.installer.wheelhouse, "<wheelhouse>"),
        (settings.installer.uv_cache_dir, "<uv-cache>"),
        (bundle_dir, "<bundle>"),
    ]
    paths = {path: name for path, name in directories if path is not None}
    return Redactor(settings.installer.secrets(), paths)


def _build(
    bundle: bytes | Path, image: str, settings: BuildSettings, target: Path, report: BuildReport
) -> Environment:
    unpacked = unpack_bundle(bundle, target, settings.bundle_limits)
    report.bundle(unpacked.files, unpacked.total_bytes)
    return _environment(unpacked, image, settings, report)


def environment_of_unpacked(bundle_dir: Path, image: str, settings: BuildSettings) -> Path:
    """The environment's python for a bundle this machine has unpacked and built before
    (`build_function`'s `unpack_to`): found in the environment cache, with no download.

    Raises:
        BuildError: its requirements, image or environment fail as in a build.
    """
    report = BuildReport(image, _redactor(settings, bundle_dir, None))
    return _environment(UnpackedBundle(bundle_dir, 0, 0), image, settings, report).python


def _environment(
    unpacked: UnpackedBundle, image: str, settings: BuildSettings, report: BuildReport
) -> Environment:
    requirements = parse_requirements(_requirements_text(unpacked))
    report.requirements(requirements)
    interpreter = interpreter_registry(
        tuple(settings.interpreters),
        settings.runs_as,
        interpreter_copies_root(settings.work_dir) if settings.work_dir else None,
    ).resolve(image)
    report.interpreter(interpreter)
    report.environment_started()
    cache = EnvironmentCache(settings.env_root, settings.installer)
    environment = cache.get(interpreter, requirements)
    report.environment(environment)
    return environment


def _requirements_text(unpacked: UnpackedBundle) -> str:
    path = unpacked.requirements_path
    if path is None:
        return ""
    if path.stat().st_size > MAX_REQUIREMENTS_BYTES:
        raise RequirementsError(f"requirements.txt is larger than {MAX_REQUIREMENTS_BYTES:,} bytes")
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RequirementsError("requirements.txt is not UTF-8 text") from None
