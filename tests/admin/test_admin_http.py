"""The admin pages over HTTP: sign-in, the session cookie, CSRF, ownership of every page
and action, one-time links, and what the pages read (counts, chart, log, result)."""

from __future__ import annotations

import html
import json
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from itsdangerous import URLSafeTimedSerializer

from compute.cli import main
from compute.server.blobstore import job_log_key, job_result_key
from compute.server.extensions import db
from compute.server.models import Job
from compute.server.sign_in_links import issue_link_token
from compute.server.tokens import revoke_token, user_of_token, verify_token
from compute.server.transitions import fail_pending_jobs
from tests.admin.conftest import AdminBrowser, AdminUser
from tests.conftest import ApiServer, create_function

MakeUser = Callable[..., AdminUser]


def submit(user: AdminUser, count: int, name: str = "fn") -> tuple[str, list[str]]:
    """A new function of `user` with `count` pending jobs: its id and theirs."""
    function = create_function(user.api, name=name)
    response = user.api.post(
        "/jobs/bulk", json={"function_id": function["id"], "bulk_args": [[n] for n in range(count)]}
    )
    assert response.status_code == 201, response.text
    return function["id"], [job["id"] for job in response.json()]


def fail_jobs(server: ApiServer, function_id: str, reason: str = "it broke") -> None:
    with server.app.app_context():
        fail_pending_jobs(db.session, function_id, reason)
        db.session.commit()


def job_status(user: AdminUser, job_id: str) -> str:
    response = user.api.get(f"/jobs/{job_id}", headers={"X-Compute-Statuses": "canceled"})
    return str(response.json()["status"])


# Signing in


def test_the_root_and_the_pages_send_a_stranger_to_sign_in(admin_server: ApiServer) -> None:
    pages = AdminBrowser(admin_server)

    root = pages.get("/")
    dashboard = pages.get("/admin/")
    live = pages.get("/admin/live/dashboard")

    assert root.status_code == 302 and root.headers["Location"].endswith("/admin/")
    assert dashboard.status_code == 302
    assert "/admin/sign-in?next=/admin/" in dashboard.headers["Location"]
    assert live.status_code == 401 and live.json()["detail"]
    sign_in = pages.get("/admin/sign-in")
    assert sign_in.status_code == 200
    assert '<label for="token">API token</label>' in sign_in.text


def test_a_token_signs_in_with_a_strict_httponly_cookie(
    admin_server: ApiServer, make_admin_user: MakeUser
) -> None:
    user = make_admin_user()
    pages = AdminBrowser(admin_server)
    pages.get("/admin/sign-in")

    refused = pages.post("/admin/sign-in", {"token": user.token + "x"})
    accepted = pages.post("/admin/sign-in", {"token": user.token, "next": "/admin/?user=x"})

    assert refused.status_code == 401 and "The token is not valid." in refused.text
    assert accepted.status_code == 302 and accepted.headers["Location"] == "/admin/?user=x"
    cookie = accepted.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin/" in cookie
    dashboard = pages.get("/admin/")
    assert dashboard.status_code == 200 and user.name in dashboard.text


def test_sign_in_goes_back_to_an_admin_page_only(
    admin_server: ApiServer, make_admin_user: MakeUser
) -> None:
    user = make_admin_user()
    for target in ("//evil.example/admin/", "https://evil.example/admin/", "/compute/v1/jobs"):
        pages = AdminBrowser(admin_server)
        pages.get("/admin/sign-in")
        response = pages.post("/admin/sign-in", {"token": user.token, "next": target})
        assert response.headers["Location"] == "/admin/", target


def test_a_cookie_signed_with_the_token_secret_opens_nothing(
    admin_server: ApiServer, make_admin_user: MakeUser
) -> None:
    user = make_admin_user()
    secret = admin_server.app.config["SECRET_KEY"]
    forged = URLSafeTimedSerializer(secret, salt="cookie-session").dumps(
        {"user_id": user.user_id, "since": 0, "expires": 2**40}
    )
    pages = AdminBrowser(admin_server)
    pages.session.cookies.set("compute_admin", forged, path="/admin/")

    assert pages.get("/admin/").status_code == 302


def test_revoking_the_token_ends_its_session(
    admin_server: ApiServer, make_admin_user: MakeUser
) -> None:
    user = make_admin_user()
    assert user.pages.get("/admin/").status_code == 200

    with admin_server.app.app_context():
        token_id = verify_token(user.token).token.id
        assert token_id is not None
        revoke_token(token_id)

    assert user.pages.get("/admin/").status_code == 302


def test_sign_out_ends_the_session(make_admin_user: MakeUser) -> None:
    user = make_admin_user()

    response = user.pages.post("/admin/sign-out")

    assert response.status_code == 302
    assert user.pages.get("/admin/").status_code == 302


# One-time links


def test_compute_admin_link_prints_a_link_that_signs_in_once(
    admin_server: ApiServer, make_admin_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = make_admin_user()
    # The operator's command reads the service's database, as the service does.
    monkeypatch.setenv("DATABASE_URL", admin_server.app.config["SQLALCHEMY_DATABASE_URI"])
    result = CliRunner().invoke(
        main,
        [
            "admin-link",
            "--user",
            user.name,
            "--data-dir",
            str(admin_server.data_dir),
            "--url",
            admin_server.base_url,
        ],
    )
    assert result.exit_code == 0, result.output
    link = result.stdout.strip()
    assert link.startswith(admin_server.root_url + "/admin/link/")

    pages = AdminBrowser(admin_server)
    confirm = pages.get(link)
    assert confirm.status_code == 200 and "one-time link" in confirm.text
    assert pages.get("/admin/").status_code == 302  # a GET alone signs nobody in
    first = pages.post(link)
    assert first.status_code == 302 and first.headers["Location"] == "/admin/"
    assert user.name in pages.get("/admin/").text

    again = AdminBrowser(admin_server)
    again.get(link)
    second = again.post(link)
    assert second.status_code == 410 and "used already" in second.text
    assert again.get("/admin/").status_code == 302


def test_an_expired_or_forged_link_is_refused(
    admin_server: ApiServer, make_admin_user: MakeUser
) -> None:
    user = make_admin_user()
    with admin_server.app.app_context():
        expired = issue_link_token(user_of_token(user.token), ttl_seconds=-10)
    pages = AdminBrowser(admin_server)

    assert "expired" in pages.get(f"/admin/link/{expired}").text
    assert pages.get(f"/admin/link/{user.token}").status_code == 410  # an API token is no link
    assert pages.get("/admin/").status_code == 302


# CSRF


def test_a_post_without_the_csrf_token_does_nothing(
    admin_server: ApiServer, make_admin_user: MakeUser
) -> None:
    user = make_admin_user()
    function_id, _ = submit(user, 1)

    missing = user.pages.post(f"/admin/functions/{function_id}/delete", csrf=False)
    user.pages.csrf = "not-the-token"
    wrong = user.pages.post(f"/admin/functions/{function_id}/delete")

    assert missing.status_code == 400 and wrong.status_code == 400
    assert user.api.get(f"/functions/{function_id}").status_code == 200
    # Another session's token is not this one's either.
    other = make_admin_user()
    user.pages.csrf = other.pages.csrf
    assert user.pages.post(f"/admin/functions/{function_id}/delete").status_code == 400
    assert user.api.get(f"/functions/{function_id}").status_code == 200


# Ownership


def test_another_users_function_and_jobs_do_not_exist_for_a_user(
    make_admin_user: MakeUser,
) -> None:
    owner, stranger = make_admin_user(), make_admin_user()
    function_id, job_ids = submit(owner, 2, name="owned-function")
    fail_jobs(owner.pages.server, function_id)

    assert "owned-function" not in stranger.pages.get("/admin/").text
    for path in (
        f"/admin/functions/{function_id}",
        f"/admin/functions/{function_id}/delete",
        f"/admin/live/functions/{function_id}",
        f"/admin/jobs/{job_ids[0]}",
        f"/admin/live/jobs/{job_ids[0]}",
        f"/admin/live/jobs/{job_ids[0]}/log?offset=0",
    ):
        assert stranger.pages.get(path).status_code == 404, path
    for path in (
        f"/admin/functions/{function_id}/rerun",
        f"/admin/functions/{function_id}/cancel",
        f"/admin/functions/{function_id}/delete",
        f"/admin/jobs/{job_ids[0]}/cancel",
    ):
        assert stranger.pages.post(path).status_code == 404, path
    assert owner.api.get(f"/functions/{function_id}").status_code == 200
    assert [job_status(owner, job_id) for job_id in job_ids] == ["failure", "failure"]
    assert "owned-function" in owner.pages.get("/admin/").text


def test_a_user_cannot_see_others_by_asking_for_them(make_admin_user: MakeUser) -> None:
    owner, stranger = make_admin_user(), make_admin_user()
    submit(owner, 1, name="not-for-strangers")

    page = stranger.pages.get(f"/admin/?user={owner.user_id}")

    assert page.status_code == 200
    assert "not-for-strangers" not in page.text
    assert 'id="user-filter"' not in page.text


def test_an_admin_sees_everyone_and_filters_by_user(make_admin_user: MakeUser) -> None:
    first, second, admin = make_admin_user(), make_admin_user(), make_admin_user(admin=True)
    first_function, _ = submit(first, 1, name="first-users-function")
    submit(second, 1, name="second-users-function")

    everyone = admin.pages.get("/admin/").text
    only_first = admin.pages.get(f"/admin/?user={first.user_id}").text

    assert "first-users-function" in everyone and "second-users-function" in everyone
    assert 'id="user-filter"' in everyone and first.name in everyone
    assert "first-users-function" in only_first and "second-users-function" not in only_first
    assert admin.pages.get(f"/admin/functions/{first_function}").status_code == 200


def test_an_admin_acts_on_anyones_function(make_admin_user: MakeUser) -> None:
    owner, admin = make_admin_user(), make_admin_user(admin=True)
    function_id, _ = submit(owner, 1)

    admin.pages.get(f"/admin/functions/{function_id}/delete")
    response = admin.pages.post(f"/admin/functions/{function_id}/delete")

    assert response.status_code == 302 and response.headers["Location"] == "/admin/"
    assert owner.api.get(f"/functions/{function_id}").status_code == 404


# Actions


def test_rerun_failed_resubmits_the_failed_jobs(make_admin_user: MakeUser) -> None:
    user = make_admin_user()
    function_id, job_ids = submit(user, 3)
    fail_jobs(user.pages.server, function_id)

    response = user.pages.post(f"/admin/functions/{function_id}/rerun")

    assert response.status_code == 302
    assert response.headers["Location"] == f"/admin/functions/{function_id}"
    assert {job_status(user, job_id) for job_id in job_ids} == {"pending"}
    assert "Resubmitted 3 jobs." in user.pages.get(response.headers["Location"]).text


def test_cancel_ends_pending_jobs_of_a_function_or_one_job(make_admin_user: MakeUser) -> None:
    user = make_admin_user()
    function_id, job_ids = submit(user, 3)

    one = user.pages.post(f"/admin/jobs/{job_ids[0]}/cancel")
    assert one.headers["Location"] == f"/admin/jobs/{job_ids[0]}"
    assert [job_status(user, job_id) for job_id in job_ids] == ["canceled", "pending", "pending"]
    rest = user.pages.post(f"/admin/functions/{function_id}/cancel")

    assert rest.status_code == 302
    assert {job_status(user, job_id) for job_id in job_ids} == {"canceled"}
    assert "Canceled 2 pending jobs" in user.pages.get(rest.headers["Location"]).text


def test_delete_asks_first_then_deletes_the_function(make_admin_user: MakeUser) -> None:
    user = make_admin_user()
    function_id, _ = submit(user, 2, name="doomed")

    confirm = user.pages.get(f"/admin/functions/{function_id}/delete")
    assert confirm.status_code == 200 and "Delete the function doomed?" in confirm.text
    assert user.api.get(f"/functions/{function_id}").status_code == 200
    deleted = user.pages.post(f"/admin/functions/{function_id}/delete")

    assert deleted.status_code == 302
    assert user.api.get(f"/functions/{function_id}").status_code == 404
    assert "Deleted the function &#39;doomed&#39;" in user.pages.get("/admin/").text


# What the pages read


def test_the_dashboard_counts_jobs_and_charts_those_that_ended(make_admin_user: MakeUser) -> None:
    user = make_admin_user()
    function_id, _ = submit(user, 3)
    fail_jobs(user.pages.server, function_id)
    submit(user, 2)

    live = user.pages.get("/admin/live/dashboard").json()["regions"]

    assert (
        '<span class="status status-failure">failure</span> <strong>3</strong>'
        in live["job_totals"]
    )
    assert (
        '<span class="status status-pending">pending</span> <strong>2</strong>'
        in live["job_totals"]
    )
    assert "3 jobs ended in the last hour" in live["activity_chart"]
    assert "(0 succeeded, 3 did not)" in live["activity_chart"]
    assert "job messages waiting" in live["queues"]
    assert "No worker is alive" in live["workers"]  # this service runs none


def test_the_job_table_filters_by_status_and_pages_by_key(make_admin_user: MakeUser) -> None:
    user = make_admin_user()
    function_id, failed = submit(user, 3)
    fail_jobs(user.pages.server, function_id)
    pending = submit_more(user, function_id, 55)

    failures = job_links(user.pages.get(f"/admin/functions/{function_id}?status=failure").text)
    first_page = user.pages.get(f"/admin/functions/{function_id}").text

    assert failures == sorted(failed, reverse=True)
    shown = job_links(first_page)
    assert len(shown) == 50 and "Older jobs" in first_page
    older = first_page.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    rest = job_links(user.pages.get(html.unescape(older)).text)
    assert len(rest) == 8 and not set(rest) & set(shown)
    # Newest first: the later submission's jobs, then the first's.
    assert shown + rest == sorted(pending, reverse=True) + sorted(failed, reverse=True)


def job_links(page: str) -> list[str]:
    """The jobs a page's table links to, in its order."""
    return re.findall(r'href="/admin/jobs/(\w+)"', page)


def submit_more(user: AdminUser, function_id: str, count: int) -> list[str]:
    body = {"function_id": function_id, "bulk_args": [[n] for n in range(count)]}
    response = user.api.post("/jobs/bulk", json=body)
    assert response.status_code == 201, response.text
    return [job["id"] for job in response.json()]


def log_line(text: str) -> bytes:
    return json.dumps({"date": "2030-01-02T03:04:05.678901Z", "log": text}).encode() + b"\n"


def test_the_log_is_read_from_an_offset_whole_lines_only(
    admin_server: ApiServer, make_admin_user: MakeUser
) -> None:
    user = make_admin_user()
    function_id, (job_id,) = submit(user, 1)
    store = admin_server.app.extensions["blobstore"]
    key = job_log_key(function_id, job_id)
    store.put(key, log_line("[attempt 1]") + log_line("hello") + b'{"date": "2030-01-02T03:0')

    first = user.pages.get(f"/admin/live/jobs/{job_id}/log?offset=0").json()
    store.put(key, store.get(key) + b'4:06Z", "log": "world"}\n')
    second = user.pages.get(f"/admin/live/jobs/{job_id}/log?offset={first['offset']}").json()
    third = user.pages.get(f"/admin/live/jobs/{job_id}/log?offset={second['offset']}").json()
    page = user.pages.get(f"/admin/jobs/{job_id}").text

    assert [line["log"] for line in first["lines"]] == ["[attempt 1]", "hello"]
    assert [line["log"] for line in second["lines"]] == ["world"]
    assert third["lines"] == [] and third["final"] is False
    assert "hello" in page and "world" in page and "03:04:05.678" in page
    assert '<th scope="row">1</th>' in page  # the attempt its marker tells of


def test_a_result_is_previewed_as_json_and_never_unpickled(
    admin_server: ApiServer, make_admin_user: MakeUser, tmp_path: Path
) -> None:
    user = make_admin_user()
    function_id, job_ids = submit(user, 2)
    marker = tmp_path / "unpickled"
    store = admin_server.app.extensions["blobstore"]
    store.put(job_result_key(function_id, job_ids[0]), json.dumps({"answer": 42}).encode())
    store.put(job_result_key(function_id, job_ids[1]), pickle.dumps(Unpickled(str(marker))))
    with admin_server.app.app_context():
        db.session.execute(sa.update(Job).where(Job.id.in_(job_ids)).values(has_result=True))
        db.session.commit()

    as_json = user.pages.get(f"/admin/jobs/{job_ids[0]}").text
    as_pickle = user.pages.get(f"/admin/jobs/{job_ids[1]}").text

    assert "JSON, 14 bytes" in as_json and "&#34;answer&#34;: 42" in as_json
    size = len(pickle.dumps(Unpickled(str(marker))))
    assert f"binary, {size} bytes" in as_pickle
    assert not marker.exists()


class Unpickled:
    """Unpickling this writes a file: the proof that a page unpickled a result."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (Path(self.path),))
