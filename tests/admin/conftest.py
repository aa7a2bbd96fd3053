"""The admin pages under test: the real API over HTTP with a real Redis (one-time links,
queue depths), a browser session of the pages, and for the browser test a real worker.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from compute.server.tokens import user_of_token
from tests.conftest import ApiClient, ApiServer, running_api
from tests.redis_databases import claimed_redis_url

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def admin_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """The API on each database, with a Redis database of its own and no worker."""
    directory = tmp_path_factory.mktemp(f"admin-{request.param}")
    with (
        claimed_redis_url() as redis_url,
        running_api(request.param, directory, {"REDIS_URL": redis_url}) as server,
    ):
        yield server


class AdminBrowser:
    """The admin pages as a browser without scripts sees them: cookies, forms, CSRF."""

    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self.session = requests.Session()
        self.csrf: str | None = None

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.server.root_url + path

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        kwargs.setdefault("allow_redirects", False)
        response = self.session.get(self.url(path), **kwargs)
        if found := CSRF_INPUT.search(response.text):
            self.csrf = found.group(1)
        return response

    def post(
        self, path: str, data: dict[str, str] | None = None, csrf: bool = True
    ) -> requests.Response:
        """POST a form as the page that shows it would: with the CSRF token it carried."""
        if csrf and self.csrf is None:
            self.get("/admin/sign-in")
        form = {**(data or {}), **({"csrf_token": self.csrf or ""} if csrf else {})}
        return self.session.post(self.url(path), data=form, timeout=30, allow_redirects=False)

    def sign_in(self, token: str) -> requests.Response:
        self.get("/admin/sign-in")
        response = self.post("/admin/sign-in", {"token": token})
        assert response.status_code == 302, response.text
        self.get("/admin/")  # the signed-in session has a CSRF token of its own
        return response


@dataclass
class AdminUser:
    name: str
    token: str
    api: ApiClient
    pages: AdminBrowser

    @property
    def user_id(self) -> str:
        with self.pages.server.app.app_context():
            return user_of_token(self.token).id


@pytest.fixture
def make_admin_user(admin_server: ApiServer) -> Any:
    """Factory: a fresh user with a token, an API client and a signed-in page session."""

    def make(admin: bool = False) -> AdminUser:
        name = f"user-{uuid.uuid4().hex[:10]}"
        token = admin_server.token(name, admin=admin)
        pages = AdminBrowser(admin_server)
        pages.sign_in(token)
        return AdminUser(name, token, ApiClient(admin_server, token), pages)

    return make
