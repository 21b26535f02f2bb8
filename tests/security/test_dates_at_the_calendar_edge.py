"""Dates at the edge of the calendar in query strings (0001-01-01, 9999-12-31): the web pages' GET forms and
the API's query parameters refuse a day outside the years Cobalt records (1900 to 2199, as every other date the
API reads) with a 400 or the form's error naming the field, where adding or taking a day or a week overflowed
into a server error. Found by walking every page of the demo with odd values in each GET form's fields."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db
EDGES = ["0001-01-01", "9999-12-31", "1899-12-31", "2200-01-01"]


def browser(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("day", EDGES)
@pytest.mark.parametrize("query", ["date={}", "due_from={}", "due_to={}", "view=month&date={}", "view=day&date={}"])
def test_the_calendar_names_a_day_outside_the_years_cobalt_records(nurse: Any, query: str, day: str) -> None:
    for path in ("/calendar/", "/calendar/export.csv"):
        response = browser(nurse).get(f"{path}?{query.format(day)}")
        assert response.status_code == 400, (path, response.status_code)
        assert "must be a date between the years 1900 and 2199" in response.content.decode()


@pytest.mark.parametrize("day", EDGES)
@pytest.mark.parametrize("page", ["/audit/", "/dashboard/"])
@pytest.mark.parametrize("field", ["from", "to"])
def test_the_admin_pages_name_a_day_outside_the_years_cobalt_records(
    clinic_admin: Any, page: str, field: str, day: str
) -> None:
    response = browser(clinic_admin).get(f"{page}?{field}={day}")
    assert response.status_code == 200  # the page, with the form's error and the default period's figures
    html = response.content.decode()
    assert "There is a problem" in html and "must be a date between the years 1900 and 2199" in html


@pytest.mark.parametrize("day", EDGES)
@pytest.mark.parametrize(("path", "field"), [("/api/dashboard/", "from"), ("/api/dashboard/", "to"),
                                             ("/api/audit/", "from"), ("/api/audit/", "to")])  # fmt: skip
def test_the_api_names_a_day_outside_the_years_cobalt_records(
    admin_api: APIClient, path: str, field: str, day: str
) -> None:
    response = admin_api.get(f"{path}?{field}={day}")
    assert response.status_code == 400
    assert response.json() == {field: ["must be a date between the years 1900 and 2199"]}


def test_a_whole_period_at_the_end_of_the_years_is_read(admin_api: APIClient) -> None:
    for path in ("/api/dashboard/", "/api/audit/"):
        assert admin_api.get(f"{path}?from=2199-01-01&to=2199-12-31").status_code == 200
        assert admin_api.get(f"{path}?from=1900-01-01&to=1900-12-31").status_code == 200


def test_the_calendar_shows_the_last_week_of_the_years(nurse: Any) -> None:
    response = browser(nurse).get("/calendar/?view=month&date=2199-12-31")
    assert response.status_code == 200
