"""The scripts a job's own interpreter runs, put where the job user can read them.

`bootstrap.py` and `executor_main.py` run in the job's interpreter as the job user, who
may not be able to read the service's installation (a checkout in a home directory or
in a private temporary directory, say). Each worker process copies them once into a
directory of its own beside the jobs' scratch directories, owned by the worker and
read-only to everyone else, and starts jobs from that copy: nothing else of the
service's code is within a job's reach.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
BOOTSTRAP = HERE / "bootstrap.py"
EXECUTOR_MAIN = HERE / "executor_main.py"  # loads bootstrap.py from beside itself


def job_script(source: Path) -> Path:
    """Where the job user runs `source` (one of the scripts above) from."""
    return scripts_directory() / source.name


@functools.cache
def scripts_directory() -> Path:
    """The copy of this worker process; made before the pool forks, it serves them all."""
    directory = Path(tempfile.mkdtemp(prefix="compute-runtime-"))
    for source in (BOOTSTRAP, EXECUTOR_MAIN):
        shutil.copyfile(source, directory / source.name)
        (directory / source.name).chmod(0o644)
    directory.chmod(0o755)
    creator = os.getpid()

    def remove() -> None:
        # Forked pool processes share the copy: only the process that made it removes it.
        if os.getpid() == creator:
            shutil.rmtree(directory, ignore_errors=True)

    atexit.register(remove)
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
