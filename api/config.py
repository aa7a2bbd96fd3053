"""Service configuration: defaults, then `COMPUTE_*` environment variables, then test config.

This is the only server-side module that reads the environment. Every setting has a
default that runs the whole service on one machine from a single data directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

ENV_PREFIX = "COMPUTE"
SECRET_FILE_NAME = "secret.key"
# Jobs run as other users (JOB_UID_BASE) and must pass through the data directory to the
# work directory below it, but may not list it; what it holds is private to the service.
DATA_DIR_MODE = 0o711
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
PROXY_VARIABLES = tuple(
    name
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
    for name in (variable, variable.lower())
)
# A worker's builds inherit these of its environment (`worker/build/sources.py` says
# which count); the rest of it, secrets included, never reaches a build.
INSTALLER_PREFIXES = ("UV_", "PIP_")
INSTALLER_VARIABLES = (
    *PROXY_VARIABLES,
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HOME",
    "XDG_CONFIG_HOME",
    "XDG_CONFIG_DIRS",
)


# Root's own home is closed to the job uids, so root's service lives where services do.
ROOT_DATA_DIR = Path("/var/lib/compute")
# Where a root worker keeps environments and bundles when the data directory is closed to
# the job uids: they are rebuilt when missing, so a cache directory is their place.
ROOT_WORK_CACHE = Path("/var/cache/compute")


def default_data_dir() -> Path:
    """The data directory used when none is configured, whatever the current directory.

    `$COMPUTE_DATA_DIR`, else `/var/lib/compute` for root, else the user's data home
    (`$XDG_DATA_HOME/compute`, `~/.local/share/compute`): every command of one user, run
    from anywhere, finds the same database and token secret.
    """
    if configured := os.environ.get("COMPUTE_DATA_DIR"):
        return Path(configured).expanduser().resolve()
    if os.geteuid() == 0:
        return ROOT_DATA_DIR
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return (Path(data_home) / "compute").resolve()


def default_work_dir(data_dir: Path) -> Path:
    """`<data_dir>/work`, unless jobs would run as other uids that cannot pass through to it.

    A worker running as root runs jobs under uids of their own, which must traverse every
    directory above the environments they run. A data directory under a home closed to
    others (root's, mode 0700) would fail every job, so its work directory moves to a
    per-data-directory folder of `/var/cache/compute` instead.
    """
    work_dir = data_dir / "work"
    if os.geteuid() != 0 or others_can_traverse(work_dir):
        return work_dir
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
    return ROOT_WORK_CACHE / digest


def others_can_traverse(path: Path) -> bool:
    """Whether a user with no rights of owner or group can reach `path` through its
    existing ancestors (those still to be made are made open to it)."""
    return first_closed_folder(path) is None


def first_closed_folder(path: Path) -> Path | None:
    """The highest existing folder on the way to `path` (itself included) that other
    users may not pass through; None when they may pass through every one."""
    for directory in (*reversed(path.parents), path):
        try:
            mode = directory.stat().st_mode
        except FileNotFoundError:
            return None  # what is below is still to be made, open to them
        except OSError:
            return directory
        if not mode & 0o001:
            return directory
    return None


def defaults(data_dir: Path) -> dict[str, Any]:
    """Settings for a single-machine service rooted at `data_dir`."""
    return {
        "DATA_DIR": str(data_dir),
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{data_dir / 'compute.db'}",
        "BLOB_URL": f"file://{data_dir / 'blobs'}",
        "REDIS_URL": None,
        # The base URL clients reach the API at; derived from each request when unset.
        "PUBLIC_URL": None,
        "TOKEN_TTL_SECONDS": 365 * 24 * 3600,
        "BUNDLE_UPLOAD_TTL_SECONDS": 3600,
        "MAX_JSON_BYTES": 32 * 1024 * 1024,
        "MAX_BUNDLE_BYTES": 256 * 1024 * 1024,
        "MAX_BULK_JOBS": 100_000,
        "DEFAULT_PAGE_SIZE": 100,
        "MAX_PAGE_SIZE": 1000,
        "DEFAULT_IMAGE": None,
        # Worker settings. WORK_DIR is machine-local (environments, unpacked bundles);
        # nothing under it is ever named in the database.
        "WORK_DIR": str(default_work_dir(data_dir)),
        "WHEELHOUSE": None,
        "PACKAGE_INDEX_URL": None,
        # Indexes builds search besides it, separated by spaces or commas. Any of these
        # three set, builds ignore the index settings of the worker's environment.
        "EXTRA_INDEX_URLS": None,
        "BUILD_TIMEOUT_SECONDS": 900,
        "KILL_GRACE_SECONDS": 5.0,
        # A worker's claim on a running job lasts this long unless its heartbeat renews
        # it (every third of it); a claim left to run out means the worker was lost.
        "JOB_LEASE_SECONDS": 15,
        # Attempts a job may lose to lost workers (killed, crashed, partitioned) before
        # it fails; spent apart from the function's retry_count.
        "LOST_WORKER_RETRIES": 3,
        # How often each worker's reconciler recovers lost attempts and re-publishes
        # pending jobs whose message is not in the broker.
        "RECONCILE_INTERVAL_SECONDS": 5.0,
        # A pending job younger than this is left to the publish that is on its way.
        "REPUBLISH_GRACE_SECONDS": 5.0,
        # "auto" uses per-job cgroups where the host allows, "portable" never does,
        # "cgroup" refuses to run jobs without them.
        "RESOURCE_ENFORCEMENT": "auto",
        # Keep a process per function that imported its code, forking one per job.
        "WARM_EXECUTORS": True,
        # A worker running as root runs each job and each warm executor as a uid of its
        # own from this range (no passwd entries needed), so user code can read neither
        # the service's secrets nor another job's processes and files; a worker that is
        # not root runs jobs as itself.
        "JOB_UID_BASE": 200_000,
        "JOB_UID_COUNT": 1000,
        # Where job uids may connect: "outbound" (anywhere but the worker host's own and
        # link-local addresses), "none", or a comma-separated allow-list of CIDRs.
        "JOB_NETWORK": "outbound",
        # What one job may write to its scratch space (home, bundle copy, /tmp).
        "JOB_DISK_MB": 10240,
        # The largest return value a job may store; a larger one fails the job unread.
        "MAX_RESULT_BYTES": 64 * 1024 * 1024,
    }


def environment_overrides() -> dict[str, Any]:
    """Settings named by the well-known variables that deployments set without a prefix."""
    overrides: dict[str, Any] = {}
    if url := os.environ.get("DATABASE_URL"):
        overrides["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(url)
    if url := os.environ.get("REDIS_URL"):
        overrides["REDIS_URL"] = url
    overrides["INSTALLER_ENVIRONMENT"] = installer_environment()
    return overrides


def installer_environment() -> dict[str, str]:
    """What of this process's environment tells a build's installer how to reach package
    indexes: uv's and pip's variables, proxies, TLS trust, where the user's uv.toml is."""
    return {
        name: value
        for name, value in os.environ.items()
        if name.startswith(INSTALLER_PREFIXES) or name in INSTALLER_VARIABLES
    }


def normalize_database_url(url: str) -> str:
    """Use the psycopg 3 driver for plain `postgres://` / `postgresql://` URLs."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


def prepare_data_dir(data_dir: Path, database_uri: str) -> None:
    """Create the data directory, and a SQLite database in it readable by this user only.

    SQLite creates a database file readable by every user (its -wal and -shm files copy
    its mode), and jobs run as another user: an existing one is made private too.
    """
    with contextlib.suppress(OSError):  # a deployment on PostgreSQL may have none
        data_dir.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
    url = make_url(database_uri)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    path = Path(url.database)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return
    except FileExistsError:
        pass
    except OSError:
        return  # its directory does not exist yet: SQLite will say so
    for candidate in (path, *(Path(f"{path}{suffix}") for suffix in SQLITE_COMPANIONS)):
        with contextlib.suppress(OSError):
            mode = candidate.stat().st_mode
            if mode & 0o077:
                candidate.chmod(mode & 0o700)


def load_secret_key(data_dir: Path) -> str:
    """The token-signing secret: read from the data directory, created there on first start."""
    path = data_dir / SECRET_FILE_NAME
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting together must agree on one secret.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    return secret
