"""Pages in a real Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Browser tests are transactional (the live server answers from another thread): mark them with
`pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]`; pytest-django then runs
them after the tests that rely on the data migrations, since the database is flushed after each.

Fixtures and helpers:
- `browser`: a headless Chromium; `live_server`: the site.
- `sign_in(browser, live_server, user)`: a new page signed in as `user` through the /login/ form.
- `assert_accessible(page)`: axe-core (vendored from the npm registry by `make assets`) finds no
  moderate, serious or critical violation on the page as it is now (only "minor" ones pass).
- `shot(page, name)`: a full-page screenshot in var/screenshots/ (open them to look at the pages).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db.backends.signals import connection_created

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
PASSWORD = "pw-for-tests"  # tests/factories.py staff_user


@pytest.fixture(scope="session")
def live_server(django_db_setup: Any, live_server: Any) -> Any:
    """pytest-django's live server, torn down before the test database (its thread holds a
    connection that would otherwise block dropping the database)."""
    return live_server


@pytest.fixture
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is missing; .ci/run installs it (apt-get install chromium).")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    # Playwright's sync API runs an event loop in this thread; the ORM calls made by fixtures
    # and assertions are still plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    # The test's own ORM calls, made while Playwright runs, open a connection of their own (another context than
    # the fixtures'), which the test database's teardown would not close: it kept the database from being dropped at
    # the end of the run ("is being accessed by other users"). They are closed here; the live server's threads close
    # theirs after each request.
    opened: list[Any] = []
    thread = threading.get_ident()

    def remember(sender: Any, connection: Any, **kwargs: Any) -> None:
        if threading.get_ident() == thread:
            opened.append(connection)

    connection_created.connect(remember)
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
            )
            yield chromium
            chromium.close()
    finally:
        connection_created.disconnect(remember)
        for connection in opened:
            connection.close()


def sign_in(browser: Any, live_server: Any, user: Any, password: str = PASSWORD) -> Any:
    """A new page (1280x900) signed in as `user` through the sign-in form; it is on the landing page."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(user.get_username())
    page.get_by_label("Password").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    assert "/login/" not in page.url, f"sign-in as {user.get_username()} failed"
    return page


def assert_accessible(page: Any) -> None:
    """No moderate, serious or critical axe-core violation on the page as it is (WCAG 2.2 A and AA rules)."""
    # Evaluated through the DevTools protocol, which the pages' Content Security Policy does not govern (an
    # injected <script> tag would be refused: the policy allows scripts from the server's own files only).
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        "async () => await axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}})"
    )
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("moderate", "serious", "critical")
    ]
    assert bad == [], f"accessibility violations on {page.url}: {bad}"


def shot(page: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
