"""Make an interpreter that the job uids cannot reach runnable for them, without opening it.

An operator's Python often lives under a home directory closed to other users (pyenv in
`/root`, mode 0700). Rather than widening the permissions of someone's home, the worker
gives the job uids their own view of that installation: a tree of hard links (copies
across file systems) under the work directory, which they can traverse. A CPython
installation finds its standard library relative to its executable, so the linked tree
runs as the original does, once the binaries that name their libraries' folder by an
absolute path (pyenv's shared builds: `RUNPATH=/root/.pyenv/versions/3.10.13/lib`) are
copied and pointed at it relative to themselves with patchelf. The installation's own
`site-packages` is left out: an environment never uses it, and it may hold the
operator's packages.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import shutil
import stat
import subprocess
import sysconfig
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

COMPLETE_MARKER = ".complete"
DIRECTORY_MODE = 0o755
SKIPPED_DIRECTORIES = frozenset({"site-packages", "dist-packages"})
# A prefix shared with the rest of the system is never copied: it is not an installation
# of its own, and a Python there is reachable anyway.
SHARED_PREFIXES = frozenset({Path("/"), Path("/usr"), Path("/usr/local"), Path("/opt")})
MAX_FILES = 20_000
ELF_MAGIC = b"\x7fELF"
PATCHELF_TIMEOUT_SECONDS = 30


class NotCopyable(Exception):
    """The installation is not one the worker will copy; the message says why."""


def check_copyable(prefix: Path, executable: Path, minor: int) -> None:
    """Refuse what is not a self-contained CPython installation of a sensible size."""
    if prefix in SHARED_PREFIXES or prefix.parent == prefix:
        raise NotCopyable(f"{prefix} is a system prefix")
    if prefix not in executable.parents:
        raise NotCopyable(f"{executable} is not inside its installation {prefix}")
    if not (prefix / "lib" / f"python3.{minor}" / "os.py").is_file():
        raise NotCopyable(f"{prefix} has no standard library of its own")
    count = 0
    for _directory, subdirectories, files in os.walk(prefix):
        subdirectories[:] = [name for name in subdirectories if name not in SKIPPED_DIRECTORIES]
        count += len(files)
        if count > MAX_FILES:
            raise NotCopyable(f"{prefix} holds more than {MAX_FILES} files")


def copy_name(prefix: Path, version: str) -> str:
    """The folder name of `prefix`'s copy: its version and where it came from."""
    digest = hashlib.sha256(str(prefix).encode()).hexdigest()[:12]
    return f"python-{version}-{digest}"


def reachable_installation(prefix: Path, version: str, root: Path) -> Path:
    """The copy of the installation at `prefix` under `root`, made once and then reused.

    Several worker processes may ask at once: each builds its own temporary tree and
    renames it into place; the first rename wins and the others remove theirs.
    """
    target = root / copy_name(prefix, version)
    if (target / COMPLETE_MARKER).exists():
        return target
    root.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    os.chmod(root, DIRECTORY_MODE)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
    try:
        os.chmod(partial, DIRECTORY_MODE)
        _link_tree(prefix, partial)
        _relocate_runpaths(prefix, partial)
        (partial / COMPLETE_MARKER).touch(mode=0o644)
        try:
            partial.rename(target)
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    logger.info("made %s runnable for jobs at %s", prefix, target)
    return target


def _link_tree(source: Path, target: Path) -> None:
    for directory, subdirectories, files in os.walk(source):
        relative = Path(directory).relative_to(source)
        subdirectories[:] = [name for name in subdirectories if name not in SKIPPED_DIRECTORIES]
        for name in subdirectories:
            made = target / relative / name
            made.mkdir(mode=DIRECTORY_MODE)
            os.chmod(made, DIRECTORY_MODE)
        for skipped in SKIPPED_DIRECTORIES & set(os.listdir(directory)):
            # Empty, so the interpreter's `site` module still finds what it expects.
            with contextlib.suppress(FileExistsError):
                (target / relative / skipped).mkdir(mode=DIRECTORY_MODE)
        for name in files:
            _link_file(Path(directory) / name, target / relative / name)


def _link_file(source: Path, target: Path) -> None:
    info = source.lstat()
    if stat.S_ISLNK(info.st_mode):
        # Links inside an installation are relative (python3 -> python3.10); keep them.
        os.symlink(os.readlink(source), target)
        return
    if not stat.S_ISREG(info.st_mode):
        return
    others_read = info.st_mode & stat.S_IROTH
    if others_read:
        try:
            os.link(source, target)
            return
        except OSError as error:
            if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                raise
    shutil.copyfile(source, target)
    # A copy readable by all, executable by all where the original is by its owner.
    mode = 0o755 if info.st_mode & stat.S_IXUSR else 0o644
    os.chmod(target, mode)


def _relocate_runpaths(prefix: Path, copy: Path) -> None:
    """Point every binary of `copy` whose RUNPATH names a folder of `prefix` at the same
    folder of `copy`, relative to itself (`$ORIGIN/../lib`). Each is copied first: it is
    a hard link to the original, which must stay as it is."""
    marker = os.fsencode(prefix)
    for directory, _subdirectories, files in os.walk(copy):
        for name in files:
            path = Path(directory) / name
            if path.is_symlink() or not _is_elf_naming(path, marker):
                continue
            runpath = _patchelf("--print-rpath", path).strip()
            relocated = _relocated(runpath, prefix, path.relative_to(copy))
            if relocated == runpath:
                continue
            _unshare(path)
            _patchelf("--set-rpath", relocated, path)


def _is_elf_naming(path: Path, marker: bytes) -> bool:
    with path.open("rb") as binary:
        if binary.read(4) != ELF_MAGIC:
            return False
        return marker in binary.read()


def _relocated(runpath: str, prefix: Path, relative: Path) -> str:
    """`runpath` with each folder inside `prefix` made relative to the binary's folder."""
    entries = []
    for entry in runpath.split(":") if runpath else []:
        folder = Path(entry)
        if folder == prefix or prefix in folder.parents:
            inside = folder.relative_to(prefix)
            entry = "$ORIGIN/" + os.path.relpath(inside, relative.parent)
        entries.append(entry)
    return ":".join(entries)


def _unshare(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    replacement = path.with_name(path.name + ".copy")
    shutil.copyfile(path, replacement)
    os.chmod(replacement, mode | stat.S_IWUSR)
    replacement.replace(path)


def _patchelf(*arguments: str | Path) -> str:
    tool = find_patchelf()
    if tool is None:
        raise NotCopyable("its binaries name their libraries by absolute path; install patchelf")
    completed = subprocess.run(
        [str(tool), *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=PATCHELF_TIMEOUT_SECONDS,
    )
    if completed.returncode != 0:
        raise NotCopyable(f"patchelf {arguments[0]} failed: {completed.stderr.strip()}")
    return completed.stdout


def find_patchelf() -> Path | None:
    """The patchelf the `patchelf` package installs beside this interpreter, else PATH's."""
    beside = Path(sysconfig.get_path("scripts")) / "patchelf"
    if beside.is_file():
        return beside
    found = shutil.which("patchelf")
    return Path(found) if found else None
