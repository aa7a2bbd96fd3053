"""`compute token list|revoke` on the database of a running API, and `/tokens` for a user's own.

The commands run as an operator runs them: a subprocess naming the service's data
directory and database, while the API keeps answering; a revoked token is refused from
its next request on.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import jwt
import pytest

from compute.cli.exit_codes import ExitCode
from compute.server.tokens import ALGORITHM, ISSUER, get_or_create_user
from tests.conftest import ApiClient

from .conftest import cli_environment, compute_cli

if TYPE_CHECKING:
    from tests.conftest import ApiServer, TestUser

TIMEOUT_SECONDS = 120


def operator(api_server: ApiServer, *args: str) -> subprocess.CompletedProcess[str]:
    """`compute token *args` on `api_server`'s data directory and database."""
    env = cli_environment(
        COMPUTE_SQLALCHEMY_DATABASE_URI=api_server.app.config["SQLALCHEMY_DATABASE_URI"]
    )
    return subprocess.run(
        compute_cli("token", *args, "--data-dir", str(api_server.data_dir)),
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT_SECONDS,
    )


def token_id(token: str) -> str:
    jti: str = jwt.decode(token, options={"verify_signature": False})["jti"]
    return jti


def legacy_token(api_server: ApiServer, name: str) -> str:
    """A token as the service issued them before tokens were recorded: no `jti`."""
    with api_server.app.app_context():
        user = get_or_create_user(name)
        now = int(time.time())
        claims = {"sub": user.id, "name": name, "iss": ISSUER, "iat": now, "exp": now + 3600}
    return jwt.encode(claims, api_server.app.config["SECRET_KEY"], algorithm=ALGORITHM)


def status(api_server: ApiServer, token: str) -> int:
    return ApiClient(api_server, token).get("/whoami").status_code


@pytest.fixture
def name() -> str:
    return f"op-{uuid.uuid4().hex[:10]}"


def test_create_list_and_revoke_one_token(api_server: ApiServer, name: str) -> None:
    created = operator(api_server, "create", "--user", name, "--label", "laptop")
    assert created.returncode == 0, created.stderr
    kept = operator(api_server, "create", "--user", name).stdout.strip()
    doomed = created.stdout.strip()

    listed = json.loads(operator(api_server, "list", "--user", name, "--json").stdout)
    revoked = operator(api_server, "revoke", token_id(doomed))
    table = operator(api_server, "list", "--user", name)

    assert [(t["id"], t["label"], t["state"]) for t in listed] == [
        (token_id(kept), None, "valid"),
        (token_id(doomed), "laptop", "valid"),
    ]
    assert revoked.returncode == 0, revoked.stderr
    assert status(api_server, doomed) == 401
    assert ApiClient(api_server, doomed).get("/functions").json()["detail"] == (
        "The token is not valid."
    )
    assert status(api_server, kept) == 200
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["ID", "USER", "STATE", "CREATED", "EXPIRES", "LABEL"]
    assert [row.split()[2] for row in rows] == ["valid", "revoked"]


def test_revoke_user_reaches_tokens_issued_before_tokens_were_recorded(
    api_server: ApiServer, name: str
) -> None:
    old = legacy_token(api_server, name)
    recorded = operator(api_server, "create", "--user", name).stdout.strip()
    assert status(api_server, old) == 200  # accepted until it expires
    assert ApiClient(api_server, old).get("/whoami").json()["token"]["id"] is None

    result = operator(api_server, "revoke", "--user", name)
    fresh = operator(api_server, "create", "--user", name).stdout.strip()

    assert result.returncode == 0, result.stderr
    assert "1 recorded ones were valid" in result.stdout
    assert status(api_server, old) == 401
    assert status(api_server, recorded) == 401
    assert status(api_server, fresh) == 200


def test_unknown_tokens_and_users_are_not_found(api_server: ApiServer, name: str) -> None:
    kept = operator(api_server, "create", "--user", name).stdout.strip()

    some_unknown = operator(api_server, "revoke", "nosuchtoken", token_id(kept))
    no_user = operator(api_server, "revoke", "--user", f"{name}-nobody")
    no_list = operator(api_server, "list", "--user", f"{name}-nobody")
    neither = operator(api_server, "revoke")

    assert some_unknown.returncode == ExitCode.NOT_FOUND
    assert "Error: token nosuchtoken not found" in some_unknown.stderr
    assert status(api_server, kept) == 401  # the known one was revoked all the same
    assert no_user.returncode == ExitCode.NOT_FOUND and "not found" in no_user.stderr
    assert no_list.returncode == ExitCode.NOT_FOUND
    assert neither.returncode == ExitCode.USAGE


def test_a_user_lists_and_revokes_only_their_own_tokens(
    api_server: ApiServer, make_user: Callable[..., TestUser], user: TestUser
) -> None:
    other = make_user()
    second = api_server.token(user.name)

    listed = user.api.get("/tokens").json()["data"]
    theirs = other.api.delete(f"/tokens/{token_id(second)}")
    mine = user.api.delete(f"/tokens/{token_id(second)}")

    assert [token["id"] for token in listed] == [token_id(second), token_id(user.token)]
    assert theirs.status_code == 404
    assert mine.status_code == 200 and mine.json()["revoked"] is not None
    assert status(api_server, second) == 401
    assert status(api_server, user.token) == 200
