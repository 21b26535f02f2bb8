"""Every page a clinic admin or a clinician reaches, walked in a real Chromium on
the demo: each passes axe-core, and every htmx target a page names is on that page (a form aimed at rows the page
does not have does nothing when clicked: the dose forms opened in a new tab did, before). One page of each shape
(/patients/12/ and /patients/13/ are one shape)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model

from tests.browser.conftest import assert_accessible, sign_in
from tests.tracker.test_seed_demo import seed

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
# Not walked: files and downloads, the Django admin (superusers), signing out, the patient portal (its own tests).
NOT_WALKED = ("/static/", "/admin/", "/logout", "/sign-out", "/me/", "/api/", ".csv", "/export", "/ical/")
MISSING_TARGETS = """() => [...document.querySelectorAll('[hx-target^="#"]')]
    .map(e => e.getAttribute('hx-target')).filter(t => !document.querySelector(t))"""


def shape(url: str) -> str:
    return re.sub(r"\d+", "N", urlsplit(url).path)


def walk(page: Any, base: str, shapes: set[str], every_patient: bool = False) -> None:
    """Open every page reachable from the worklist by the links the pages print, one of each shape not in
    `shapes` (which it fills), and with `every_patient` every patient's page (each shows the forms their regimen's
    state allows): each must answer, pass axe-core and hold every htmx target it names."""
    queue, seen = ["/"], set()
    while queue:
        url = queue.pop(0)
        again = url == "/" or (every_patient and shape(url) == "/patients/N/")
        if url in seen or (shape(url) in shapes and not again):
            continue
        seen.add(url)
        shapes.add(shape(url))
        response = page.goto(f"{base}{url}")
        assert response is not None and response.status == 200, (url, response and response.status)
        assert_accessible(page)
        assert page.evaluate(MISSING_TARGETS) == [], url
        for link in page.eval_on_selector_all("a[href^='/']", "links => links.map(a => a.getAttribute('href'))"):
            if not any(part in link for part in NOT_WALKED):
                queue.append(link)


def test_every_page_staff_reach_is_accessible_and_its_htmx_targets_are_there(
    browser: Any, live_server: Any, builtin_protocols: None
) -> None:
    seed(patients=10)
    shapes: set[str] = set()
    # The admin's navigation holds every staff page; the clinician adds the prescriber's forms (start a
    # regimen, end a phase, review). Each page shape is walked once, by whoever reaches it first.
    for username, every_patient in (("riverside-admin", False), ("riverside-clinician", True)):
        user = get_user_model().objects.get(username=username)
        walk(sign_in(browser, live_server, user, password="cobalt-demo"), live_server.url, shapes, every_patient)
    assert {"/", "/calendar/", "/patients/", "/patients/N/", "/alerts/", "/dashboard/", "/staff/", "/audit/"} <= shapes
    assert {"/doses/N/given/", "/regimens/N/stop/", "/regimens/N/review/"} <= shapes  # forms on their own pages
    assert len(shapes) >= 20, sorted(shapes)
