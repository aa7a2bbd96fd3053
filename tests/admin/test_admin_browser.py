"""The admin pages in a real headless browser (Debian's chromium, driven by playwright)
against the real API, Redis and a real worker running the jobs.

One walk through the pages as a person would take it: sign in with a token (from the
keyboard), see the dashboard, open a function, filter its failed jobs, open one, read
its log, then cancel a running job and watch the page say so without a reload.
Screenshots go to `tests/admin/screenshots/`; the function page's also to `docs/`, which
the README shows.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compute import Function, FunctionStatus
from tests.capabilities import ROOT, missing_capability
from tests.conftest import ApiClient
from tests.worker import functions
from tests.worker.conftest import ExecutionStack, running_stack
from tests.worker.support import job_json, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).parent / "screenshots"
README_SCREENSHOT = REPO_ROOT / "docs" / "admin-function.png"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_PACKAGES = ("chromium", "chromium-driver")
# Long enough to open its page and cancel it; the cancel stops it far sooner.
SLEEP_SECONDS = 300
# How long a page may take to show what changed (it polls every 2 s).
LIVE_MS = 30_000
VIEWPORT = {"width": 1366, "height": 900}  # a laptop's screen


def ensure_chromium() -> Path:
    """Debian's chromium, installed here when missing and this test may install it."""
    if not CHROMIUM.exists() and ROOT and shutil.which("apt-get"):
        environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=environment, check=False)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", *CHROMIUM_PACKAGES], env=environment, check=False
        )
    if not CHROMIUM.exists():
        missing_capability("Debian's chromium (apt-get install -y chromium chromium-driver)")
    return CHROMIUM


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless chromium, the system's, driven by playwright (no browser download)."""
    executable = ensure_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_capability("the playwright package (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(executable))
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def stack() -> Iterator[ExecutionStack]:
    """The API on PostgreSQL with Redis and a worker, as a deployment runs them."""
    with running_stack("postgresql", "compute-admin-") as running:
        yield running


@pytest.fixture
def owner(stack: ExecutionStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiClient]:
    """A fresh user of the stack, whom the SDK acts as meanwhile."""
    with stack.sdk_user(monkeypatch, f"ada-{uuid.uuid4().hex[:6]}") as api:
        yield api


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT)
    try:
        yield context.new_page()
    finally:
        context.close()


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_sign_in_filter_failed_jobs_read_a_log_and_cancel_a_running_job(
    stack: ExecutionStack, owner: ApiClient, page: Any
) -> None:
    from playwright.sync_api import expect

    failing = Function(functions.explode, name="resize-tiles", timeout=60)
    failing.save()
    failing.map(["tile 17 is corrupt", "tile 23 is corrupt"])
    doubling = Function(functions.double, name="double", timeout=60)
    doubling.save()
    doubling.map([1, 2, 3])
    failing.wait_for_completion(timeout=180, interval=0.2)
    doubling.wait_for_completion(timeout=180, interval=0.2)
    assert failing.status == FunctionStatus.FAILURE
    sleeper = Function(functions.timed_sleep, name="long-sleep", timeout=600)
    sleeper.save()
    (running,) = sleeper.map([SLEEP_SECONDS])
    wait_until(lambda: job_json(owner, running.id)["status"] == "running", timeout=180)
    root = stack.server.root_url

    # Sign in, from the keyboard.
    page.goto(f"{root}/")
    expect(page).to_have_url(re.compile(r"/admin/sign-in"))
    page.get_by_label("API token").fill(owner.token)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{root}/admin/")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    functions_table = page.locator('[data-region="function_rows"]')
    expect(functions_table.get_by_role("link", name="resize-tiles")).to_be_visible()
    expect(functions_table.get_by_role("link", name="long-sleep")).to_be_visible()
    expect(page.get_by_text("5 jobs ended in the last hour")).to_be_visible()
    expect(page.locator('[data-region="workers"] tbody tr')).to_have_count(1)
    screenshot(page, "dashboard")

    # Open the function, filter its failed jobs.
    functions_table.get_by_role("link", name="resize-tiles").click()
    expect(page.get_by_role("heading", name=re.compile("^resize-tiles"))).to_be_visible()
    statuses = page.get_by_role("navigation", name="Filter jobs by status")
    statuses.get_by_role("link", name=re.compile(r"^failure 2$")).click()
    expect(page).to_have_url(re.compile(r"status=failure"))
    rows = page.locator('[data-region="job_rows"] tbody tr')
    expect(rows).to_have_count(2)
    expect(rows.locator(".status")).to_have_text(["failure", "failure"])
    README_SCREENSHOT.parent.mkdir(exist_ok=True)
    shutil.copyfile(screenshot(page, "function"), README_SCREENSHOT)

    # Open one, read its log.
    rows.first.get_by_role("link").click()
    expect(page.get_by_role("heading", name=re.compile("^Job"))).to_be_visible()
    log = page.locator("#job-log")
    expect(log).to_contain_text("[attempt 1]")
    expect(log).to_contain_text("about to fail")
    expect(log).to_contain_text("ValueError: tile")
    expect(page.locator(".reason-text")).to_contain_text("ValueError")
    expect(page.locator('[data-region="job_summary"] .status')).to_have_text("failure")
    screenshot(page, "job")

    # Cancel a running job, from its function's page and the keyboard. Its own page,
    # open in another tab and never reloaded, shows it canceled and the end of its log.
    watcher = page.context.new_page()
    watcher.goto(f"{root}/admin/jobs/{running.id}")
    watched_status = watcher.locator('[data-region="job_summary"] .status')
    expect(watched_status).to_have_text("running")
    watcher.evaluate("window.neverReloaded = true")
    page.goto(f"{root}/admin/functions/{sleeper.id}")
    page.get_by_role("button", name="Cancel unfinished jobs (1)").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("asked 1 running job to stop")).to_be_visible()
    expect(watched_status).to_have_text("canceled", timeout=LIVE_MS)
    expect(watcher.locator("#job-log")).to_contain_text("[job canceled", timeout=LIVE_MS)
    expect(watcher.get_by_role("button", name="Cancel this job")).to_have_count(0)
    assert watcher.evaluate("window.neverReloaded") is True
    screenshot(watcher, "canceled-job")
    canceled = page.get_by_role("navigation", name="Filter jobs by status")
    expect(canceled.get_by_role("link", name="canceled 1")).to_be_visible(timeout=LIVE_MS)
