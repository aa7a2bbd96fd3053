"""The scripts a job's own interpreter runs, put where the job user can read them.

`bootstrap.py` and `executor_main.py` run in the job's interpreter as the job user, who
may not be able to read the service's installation (a checkout in a home directory or
in a private temporary directory, say). Each worker process copies them once into a
directory of its own beside the jobs' scratch directories, owned by the worker and
read-only to everyone else, and starts jobs from that copy: nothing else of the
service's code is within a job's reach.

Beside them, `packages/` holds copies of the pure-Python packages the runner needs in
the function's environment (cloudpickle, to load a pickled function), taken from the
worker's own installation: a function need not install them, so it builds without a
package index. `bootstrap.py` puts that directory last on `sys.path`, after the
environment's own packages, so a version the function requires itself wins.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
BOOTSTRAP = HERE / "bootstrap.py"
EXECUTOR_MAIN = HERE / "executor_main.py"  # loads bootstrap.py from beside itself
PACKAGES = "packages"  # bootstrap.py finds it beside itself by this name
RUNNER_PACKAGES = ("cloudpickle",)


def job_script(source: Path) -> Path:
    """Where the job user runs `source` (one of the scripts above) from."""
    return scripts_directory() / source.name


@functools.cache
def scripts_directory() -> Path:
    """The copy of this worker process; made before the pool forks, it serves them all."""
    directory = Path(tempfile.mkdtemp(prefix="compute-runtime-"))
    creator = os.getpid()

    def remove() -> None:
        # Forked pool processes share the copy: only the process that made it removes it.
        if os.getpid() == creator:
            shutil.rmtree(directory, ignore_errors=True)

    atexit.register(remove)
    for source in (BOOTSTRAP, EXECUTOR_MAIN):
        shutil.copyfile(source, directory / source.name)
        (directory / source.name).chmod(0o644)
    for name in RUNNER_PACKAGES:
        copy_package(name, directory / PACKAGES)
    directory.chmod(0o755)
    return directory


@functools.cache
def reachable_copy(executable: Path) -> Path:
    """A copy of `executable` (the installer, say) that unprivileged uids can run, beside
    the scripts: the service's installation may be closed to them."""
    target = scripts_directory() / executable.name
    if not target.exists():
        staging = target.with_name(f".{target.name}.{os.getpid()}")
        shutil.copyfile(executable, staging)
        staging.chmod(0o755)
        os.replace(staging, target)
    return target


def copy_package(name: str, target: Path) -> Path:
    """Copy the worker's installed package `name` (pure Python) into `target`, where
    every uid may read it and only the worker write; found, never imported, here."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the worker has no {name} package to give jobs", name=name)
    source = Path(next(iter(spec.submodule_search_locations)))
    copy = target / name
    shutil.copytree(
        source,
        copy,
        ignore=shutil.ignore_patterns("__pycache__"),
        # Modes are set below: the installation's own may be closed to other uids.
        copy_function=shutil.copyfile,
    )
    target.chmod(0o755)
    for directory, _, files in os.walk(copy):
        os.chmod(directory, 0o755)
        for file in files:
            os.chmod(os.path.join(directory, file), 0o644)
    return copy
