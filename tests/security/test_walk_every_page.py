"""Every page a staff role can reach, walked on the demo as that role: every link and htmx address the pages print
answers (no 404 from the app's own links, no server error), and every field of every GET form (filters, periods,
calendar dates) answers odd values (dates at the calendar's edge, huge or negative numbers, words, nothing) with
a page or the form's error, never a server error. The walk found the calendar's ?date=9999-12-31, the audit log's
?to=9999-12-31 and the dashboard's ?from=0803-02-12 (500s, or a 404 for a period without ?clinic=), fixed in
test_dates_at_the_calendar_edge.py and tests/monitoring/test_dashboard.py."""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client

from tests.tracker.test_seed_demo import seed

LINK = re.compile(r'\b(?:href|hx-get)="(/[^"]*)"')
FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S)
FIELD = re.compile(r'<(?:input|select|textarea)\b[^>]*\bname="([^"]+)"')
# Addresses the walk does not follow: files, the Django admin (superusers only), signing out, the patient portal.
NOT_FOLLOWED = ("/static/", "/admin/", "/logout", "/sign-out", "/me/", "/api/docs")
ODD_VALUES = ("0001-01-01", "9999-12-31", "-1", "99999999999999999999", "abc", "")
PAGES_PER_SHAPE = 2  # /patients/12/ and /patients/13/ are one shape: two of each are walked
MOST_PAGES = 150
pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def small_demo(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """The demo with 10 patients (every protocol), seeded once for this module and rolled back after it."""
    with django_db_blocker.unblock(), transaction.atomic():
        seed(patients=10)
        yield
        transaction.set_rollback(True)


def shape(url: str) -> str:
    return re.sub(r"\d+", "N", urlsplit(url).path)


def walk(client: Client) -> tuple[list[str], dict[str, set[str]]]:
    """The pages reached from the worklist by the links the pages print (at most PAGES_PER_SHAPE of each shape),
    each checked to answer, and the GET forms' fields by the address they submit to."""
    queue, seen = ["/"], set()
    walked: list[str] = []
    shapes: Counter[str] = Counter()
    forms: dict[str, set[str]] = {}
    while queue and len(walked) < MOST_PAGES:
        url = queue.pop(0)
        if url in seen or shapes[shape(url)] >= PAGES_PER_SHAPE:
            continue
        seen.add(url)
        shapes[shape(url)] += 1
        response = client.get(url)
        assert response.status_code in (200, 302), (url, response.status_code)
        walked.append(url)
        if response.status_code == 302 or "html" not in response.get("Content-Type", ""):
            continue
        page = response.content.decode()
        for attributes, inner in FORM.findall(page):
            if 'method="post"' in attributes.lower():
                continue
            action = re.search(r'action="([^"]*)"', attributes)
            target = html.unescape(action.group(1)) if action and action.group(1) else urlsplit(url).path
            forms.setdefault(target.split("?")[0], set()).update(FIELD.findall(inner))
        for link in LINK.findall(page):
            link = html.unescape(link)
            if not link.startswith(NOT_FOLLOWED) and link not in seen:
                queue.append(link)
    for url in walked:  # the query parameters of the links walked are fields too
        forms.setdefault(urlsplit(url).path, set()).update(k for k, _ in parse_qsl(urlsplit(url).query))
    return walked, forms


@pytest.mark.parametrize("username", ["riverside-nurse", "riverside-clinician", "riverside-admin"])
def test_every_page_answers_and_no_odd_query_value_is_a_server_error(small_demo: None, username: str) -> None:
    client = Client(raise_request_exception=True)  # a server error fails here with its traceback
    client.force_login(get_user_model().objects.get(username=username))
    walked, forms = walk(client)
    assert len(walked) > 20, walked  # the worklist, the calendar, patients, alerts, ... were reached
    tried = 0
    for path, fields in forms.items():
        for field in sorted(fields - {"csrfmiddlewaretoken"}):
            for value in ODD_VALUES:
                response = client.get(f"{path}?{urlencode({field: value})}")
                assert response.status_code < 500, (path, field, value)
                tried += 1
    assert tried > 50, forms
