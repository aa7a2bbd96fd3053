"""Service configuration: defaults, then `COMPUTE_*` environment variables, then test config.

This is the only server-side module that reads the environment. Every setting has a
default that runs the whole service on one machine from a single data directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Config
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from flask import Flask

ENV_PREFIX = "COMPUTE"
SECRET_FILE_NAME = "secret.key"
# Jobs run as other users (JOB_UID_BASE) and must pass through the data directory to the
# work directory below it, but may not list it; what it holds is private to the service.
DATA_DIR_MODE = 0o711
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
# prometheus-client's multi-process mode writes each metric file under the folder this
# variable names; a worker sets it for itself and its pool processes (worker/metrics.py).
PROMETHEUS_MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
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


class SettingsError(ValueError):
    """A setting holds a value of the wrong kind; the message names its variable."""


def _integer(value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise TypeError
    return int(value)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise TypeError


def _text_or_none(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _words(value: Any) -> tuple[str, ...]:
    """A list given as a list, or as text separated by commas or spaces."""
    if value is None:
        return ()
    items = value.replace(",", " ").split() if isinstance(value, str) else value
    return tuple(str(item).strip() for item in items if str(item).strip())


def _environment(value: Any) -> dict[str, str]:
    return {str(name): str(text) for name, text in dict(value or {}).items()}


@dataclass(frozen=True)
class Settings:
    """Every setting of the service, the API's and the worker's alike, each default once.

    A setting `NAME` is `name` here; it is set as `COMPUTE_NAME` in the environment (a
    few also by their well-known names: `DATABASE_URL`, `REDIS_URL`), or as `NAME` in a
    test's config. `load_settings` resolves them; `Settings.of` reads them back typed.
    """

    data_dir: Path
    # The database; `DATABASE_URL`, else `sqlite:///<data_dir>/compute.db`.
    sqlalchemy_database_uri: str
    blob_url: str
    # Machine-local (environments, unpacked bundles); nothing under it is ever named in
    # the database. See `default_work_dir`.
    work_dir: Path
    # Where a worker's processes keep their event metrics (prometheus-client's
    # multi-process files), a folder per worker node; an API on the same machine serves
    # them at /metrics too.
    metrics_dir: Path
    # The token-signing secret; read from (or made in) `<data_dir>/secret.key` when unset.
    secret_key: str | None = field(default=None, repr=False)
    redis_url: str | None = None
    # The base URL clients reach the API at; derived from each request when unset.
    public_url: str | None = None
    token_ttl_seconds: int = 365 * 24 * 3600
    bundle_upload_ttl_seconds: int = 3600
    max_json_bytes: int = 32 * 1024 * 1024
    # How deep arguments may nest (held under what stored JSON may reach).
    max_json_depth: int = 64
    max_bundle_bytes: int = 256 * 1024 * 1024
    max_bulk_jobs: int = 100_000
    default_page_size: int = 100
    max_page_size: int = 1000
    # The image of a function that names none; `python<this interpreter's X.Y>:latest`.
    default_image: str | None = None
    wheelhouse: str | None = None
    package_index_url: str | None = None
    # Indexes builds search besides it, separated by spaces or commas. Any of these
    # three set, builds ignore the index settings of the worker's environment.
    extra_index_urls: tuple[str, ...] = ()
    # Builds take wheels only: no sdist's build backend runs.
    only_binary_packages: bool = False
    # Interpreters images may name besides the worker's own (paths, commas between).
    python_interpreters: tuple[str, ...] = ()
    # What of the worker's environment reaches its builds' installers (see below).
    installer_environment: dict[str, str] = field(default_factory=dict)
    build_timeout_seconds: float = 900.0
    kill_grace_seconds: float = 5.0
    # A worker's claim on a running job lasts this long unless its heartbeat renews it
    # (every third of it); a claim left to run out means the worker was lost.
    job_lease_seconds: float = 15.0
    # Attempts a job may lose to lost workers (killed, crashed, partitioned) before it
    # fails; spent apart from the function's retry_count.
    lost_worker_retries: int = 3
    # How often each worker's reconciler recovers lost attempts and re-publishes pending
    # jobs whose message is not in the broker.
    reconcile_interval_seconds: float = 5.0
    # A pending job younger than this is left to the publish that is on its way.
    republish_grace_seconds: float = 5.0
    # How long a starting worker waits for `compute db upgrade` before it gives up.
    schema_wait_seconds: float = 300.0
    # "auto" uses per-job cgroups where the host allows, "portable" never does, "cgroup"
    # refuses to run jobs without them.
    resource_enforcement: str = "auto"
    # Keep a process per function that imported its code, forking one per job.
    warm_executors: bool = True
    # A worker running as root runs each job and each warm executor as a uid of its own
    # from this range (no passwd entries needed), so user code can read neither the
    # service's secrets nor another job's processes and files; a worker that is not root
    # runs jobs as itself.
    job_uid_base: int = 200_000
    job_uid_count: int = 1000
    # Where job uids may connect: "outbound" (anywhere but the worker host's own and
    # link-local addresses), "none", or a comma-separated allow-list of CIDRs.
    job_network: str = "outbound"
    # What one job may write to its scratch space (home, bundle copy, /tmp).
    job_disk_mb: int = 10240
    # The largest return value a job may store; a larger one fails the job unread.
    max_result_bytes: int = 64 * 1024 * 1024
    # A worker on a machine of its own serves its metrics at this port (0: it does not;
    # an API sharing its data directory serves them instead).
    worker_metrics_port: int = 0
    # When set, `/metrics` answers only a scraper sending it as a bearer token: function
    # ids and job counts of every user are not for anyone who can reach the API.
    metrics_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Typed settings from `NAME: value` pairs (text from the environment, or values);
        the data-directory defaults follow `DATA_DIR` unless given.

        Raises:
            SettingsError: a value is not of its setting's kind; names the variable.
        """
        data_dir = Path(values.get("DATA_DIR") or default_data_dir())
        resolved = {**_data_dir_defaults(data_dir), **values}
        typed: dict[str, Any] = {}
        for item in fields(cls):
            name = item.name.upper()
            if name not in resolved:
                continue
            try:
                typed[item.name] = _CONVERTERS[str(item.type)](resolved[name])
            except (TypeError, ValueError) as error:
                raise SettingsError(
                    f"{ENV_PREFIX}_{name} must be {_KINDS[str(item.type)]}, not {resolved[name]!r}"
                ) from error
        return cls(**typed)

    def as_config(self) -> dict[str, Any]:
        """The settings as `NAME: value` pairs, the form an app's config holds."""
        return {item.name.upper(): getattr(self, item.name) for item in fields(self)}

    @staticmethod
    def of(app: Flask) -> Settings:
        """The settings of an app the service core made (see `compute.server.app`)."""
        settings: Settings = app.extensions["settings"]
        return settings


def current_settings() -> Settings:
    """The settings of the app whose context is active."""
    from flask import current_app

    return Settings.of(current_app)


# Annotations are text (`from __future__ import annotations`): each names its converter.
_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "Path": lambda value: Path(str(value)).expanduser(),
    "str": str,
    "str | None": _text_or_none,
    "int": _integer,
    "float": float,
    "bool": _boolean,
    "tuple[str, ...]": _words,
    "dict[str, str]": _environment,
}
_KINDS = {
    "Path": "a path",
    "str": "text",
    "str | None": "text",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "tuple[str, ...]": "a list",
    "dict[str, str]": "a mapping",
}


def _data_dir_defaults(data_dir: Path) -> dict[str, Any]:
    return {
        "DATA_DIR": str(data_dir),
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{data_dir / 'compute.db'}",
        "BLOB_URL": f"file://{data_dir / 'blobs'}",
        "WORK_DIR": str(default_work_dir(data_dir)),
        "METRICS_DIR": str(data_dir / "metrics"),
    }


def load_settings(test_config: Mapping[str, Any] | None = None) -> Settings:
    """The service's settings: defaults, then `COMPUTE_*` and the well-known variables,
    then `test_config`.

    Raises:
        SettingsError: a value is not of its setting's kind; names the variable.
    """
    return Settings.from_mapping(resolved_values(test_config))


def resolved_values(test_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every `NAME: value` the service is given, the settings' and any an app takes
    besides (Flask's, SQLAlchemy's), before they are typed."""
    data_dir = Path((test_config or {}).get("DATA_DIR") or default_data_dir())
    settings = _data_dir_defaults(data_dir)
    settings.update(prefixed_environment())
    settings.update(environment_overrides())
    settings.update(test_config or {})
    settings["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(
        settings["SQLALCHEMY_DATABASE_URI"]
    )
    return settings


def prefixed_environment() -> dict[str, Any]:
    """`COMPUTE_NAME=value` as the setting NAME, its value read as JSON where it is JSON
    (`false`, `5`, `"text"`) and as text otherwise: Flask's reading of prefixed variables,
    without an app to read them into."""
    config = Config(root_path=os.getcwd())
    config.from_prefixed_env(ENV_PREFIX)
    return dict(config)


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
