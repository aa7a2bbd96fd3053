"""The operator's files and directories a build reads, made readable to the build's uid.

A build runs as a uid of its own in a mount namespace whose `/tmp` is private. The few
files its installer reads (CA bundles, the operator's `uv.toml`) are copied for each
build into a directory of root's that only the build's uid may read: they are often
where it cannot go (root's `~/.config/uv/uv.toml`, a CA bundle in a private directory or
under `/tmp`), and a uv.toml may hold index credentials no other uid should read.
Directories (find-links, `file://` indexes, `SSL_CERT_DIR`) may be large, so they are
used where they are; those the build's uid cannot read are named, so the build log says
why the installer failed.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..execution.job_user import JobUser
from ..execution.sandbox import PRIVATE_DIRECTORIES


def readable_copies(files: Iterable[str], directory: Path, user: JobUser) -> Mapping[str, str]:
    """Copy each existing file of `files` into `directory` (made root's, open to `user`
    alone) readable by `user` only; map each copied path to its copy's."""
    directory.mkdir(exist_ok=True)
    user.open_to(directory)
    copies: dict[str, str] = {}
    for number, source in enumerate(files):
        if not os.path.isfile(source):
            continue  # the installer says so, naming the setting's value
        target = directory / f"{number}-{Path(source).name}"
        shutil.copyfile(source, target)
        os.chown(target, 0, user.gid)
        target.chmod(0o640)
        copies[source] = str(target)
    return copies


def closed_to_others(directory: Path) -> bool:
    """Whether a uid that owns nothing here and is in no group of the machine cannot list
    `directory` and read what it holds, as it sees the tree from its namespace.

    Directories above it that lie under a private directory (`/tmp`...) are not looked
    at: the namespace rebuilds those, open to pass through (`sandbox.py`).
    """
    real = Path(os.path.realpath(directory))
    if not _allows(real, stat.S_IROTH | stat.S_IXOTH):
        return True
    for parent in real.parents:
        if _under_private(parent):
            continue
        if not _allows(parent, stat.S_IXOTH):
            return True
    return False


def _allows(path: Path, bits: int) -> bool:
    try:
        return os.stat(path).st_mode & bits == bits
    except OSError:
        return False


def _under_private(path: Path) -> bool:
    text = str(path)
    return any(text.startswith(private.rstrip("/") + "/") for private in PRIVATE_DIRECTORIES)
