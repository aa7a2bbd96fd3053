"""Shared fixtures: the real API served over HTTP, on SQLite and on PostgreSQL.

`api_server` is parametrized over both databases, so every test that uses it (directly
or through `user`, `sdk_user` or `api`) runs once per database. PostgreSQL gets a fresh
database per test session, dropped at the end.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from api import API_PREFIX, create_app, upgrade_database
from compute.server.extensions import db
from compute.server.tokens import get_or_create_user, issue_token

# What a test needs of the machine, and no skip under CI (see tests/capabilities.py).
pytest_plugins = ["tests.capabilities"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--chaos-full",
        action="store_true",
        help="run the chaos test at full size (10,000 jobs instead of CI's 2,000)",
    )


POSTGRES_ADMIN_URL = os.environ.get(
    "COMPUTE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_database() -> Iterator[str]:
    import sqlalchemy as sa

    name = f"compute_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as error:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {error}")
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class ApiServer:
    """A running API: its base URL (`.../compute/v1`), Flask app and data directory."""

    base_url: str
    root_url: str
    app: Any
    data_dir: Path
    database: str

    def token(self, name: str, admin: bool = False) -> str:
        """A token for the user `name`, created if new."""
        with self.app.app_context():
            return issue_token(get_or_create_user(name, is_admin=admin))


@contextlib.contextmanager
def running_api(
    database: str, data_dir: Path, extra_config: dict[str, Any] | None = None
) -> Iterator[ApiServer]:
    """Serve a fresh API over HTTP on `database` ("sqlite" or "postgresql") until exit."""
    config: dict[str, Any] = {"DATA_DIR": str(data_dir), "TESTING": True, **(extra_config or {})}
    databases: Iterator[str] | None = None
    if database == "postgresql":
        databases = _postgres_database()
        config["SQLALCHEMY_DATABASE_URI"] = next(databases)
    else:
        config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{data_dir / 'compute.db'}"
    app = create_app(config)
    upgrade_database(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    root = f"http://127.0.0.1:{server.server_port}"
    try:
        yield ApiServer(root + API_PREFIX, root, app, data_dir, database)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        with app.app_context():
            db.engine.dispose()
        if databases is not None:
            next(databases, None)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def api_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    with running_api(request.param, tmp_path_factory.mktemp(f"data-{request.param}")) as server:
        yield server


class ApiClient:
    """Raw HTTP calls to the API as one user, for tests of the wire protocol itself."""

    def __init__(self, server: ApiServer, token: str | None) -> None:
        self.server = server
        self.token = token
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.server.base_url + path

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.url(path), **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)


@dataclass
class TestUser:
    name: str
    token: str
    api: ApiClient


@pytest.fixture
def make_user(api_server: ApiServer) -> Callable[..., TestUser]:
    """Factory: `make_user(admin=False)` creates a fresh user with a token and raw client."""

    def make(admin: bool = False, name: str | None = None) -> TestUser:
        name = name or f"user-{uuid.uuid4().hex[:10]}"
        token = api_server.token(name, admin=admin)
        return TestUser(name, token, ApiClient(api_server, token))

    return make


@pytest.fixture
def user(make_user: Callable[..., TestUser]) -> TestUser:
    """A fresh user of the API under test."""
    return make_user()


@pytest.fixture
def api(user: TestUser) -> ApiClient:
    """A raw HTTP client of the API under test, authenticated as a fresh user."""
    return user.api


@pytest.fixture
def sdk_user(api_server: ApiServer, user: TestUser, monkeypatch: pytest.MonkeyPatch) -> TestUser:
    """A fresh user whose credentials the `compute` SDK uses for the test's duration."""
    monkeypatch.setenv("COMPUTE_URL", api_server.base_url)
    monkeypatch.setenv("COMPUTE_TOKEN", user.token)
    monkeypatch.setenv("COMPUTE_CONFIG", str(api_server.data_dir / "no-such-config.json"))
    import compute

    configure = getattr(compute, "configure", None)
    if configure is not None:
        configure(url=api_server.base_url, token=user.token)
    yield user
    if configure is not None:
        configure(url=None, token=None)


def create_function(api: ApiClient, **fields: Any) -> dict[str, Any]:
    """Create a function through the API (no bundle yet) and return its JSON."""
    response = api.post("/functions", json={"name": "fn", **fields})
    assert response.status_code == 201, response.text
    return response.json()["function"]
