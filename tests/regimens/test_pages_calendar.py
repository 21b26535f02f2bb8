"""The clinic calendar `/calendar/` (regimens/worklist_pages.py): planned doses and rechecks per day, closed days,
today, shareable previous/next links, a day's list of patients, and its CSV export."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils.html import escape

from patients.models import Role
from regimens import services
from regimens.models import Protocol, Regimen
from tests.factories import ClosedDateFactory, LabRecheckFactory, PatientFactory, UserFactory, staff_user

pytestmark = pytest.mark.django_db

START = date(2027, 1, 4)  # a Monday: loading doses on 4, 6, 8, 11, 13 and 15 January
MONDAY = "2027-01-11 09:00:00+00:00"


def start(patient: Any, code: str = "hydroxo-uk-standard", on: date = START) -> Regimen:
    with time_machine.travel("2027-01-04 08:00:00+00:00", tick=False):
        return services.regimen_start(patient=patient, protocol=Protocol.objects.get(code=code), start_date=on)


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def cell(body: str, day: str) -> str:
    """The calendar cell of `day` (YYYY-MM-DD): from its date link to the end of its <td>."""
    match = re.search(
        rf'<td class="[^"]*"[^>]*>\s*<a class="app-calendar__date" href="[^"]*date={day}[^"]*".*?</td>', body, re.S
    )
    assert match, f"no cell for {day}"
    return match.group(0)


@pytest.fixture
def monday() -> Any:
    with time_machine.travel(MONDAY, tick=False) as traveller:
        yield traveller


@pytest.mark.parametrize("role", [Role.NURSE, Role.CLINICIAN, Role.ADMIN])
def test_every_staff_role_sees_the_calendar(clinic: Any, role: str, monday: Any) -> None:
    assert signed_in(staff_user(clinic, role, username="sam")).get("/calendar/").status_code == 200


def test_a_visitor_is_sent_to_sign_in_and_a_user_of_no_clinic_is_refused(db: Any) -> None:
    assert Client().get("/calendar/")["Location"] == "/login/?next=/calendar/"
    assert signed_in(UserFactory()).get("/calendar/").status_code == 403


def test_the_week_counts_doses_and_rechecks_per_day_marks_today_and_closed_days(
    clinic: Any, nurse: Any, monday: Any
) -> None:
    for _ in range(2):
        regimen = start(PatientFactory(clinic=clinic))
    LabRecheckFactory(regimen=regimen, day=9, window=2)  # due Wednesday 13 January
    ClosedDateFactory(clinic=clinic, date=date(2027, 1, 14), note="Training day")

    body = signed_in(nurse).get("/calendar/").content.decode()

    assert "Week: 11 January to 17 January 2027" in body
    assert "2 doses" in cell(body, "2027-01-11") and 'aria-current="date"' in cell(body, "2027-01-11")
    wednesday = cell(body, "2027-01-13")
    assert "2 doses" in wednesday and "1 recheck" in wednesday
    assert "Closed (Training day)" in cell(body, "2027-01-14")
    assert "Closed" in cell(body, "2027-01-16")  # a Saturday: not an open weekday
    assert "Closed" not in cell(body, "2027-01-12")
    assert (
        'href="/calendar/?view=week&amp;date=2027-01-18"' in body
        or 'href="/calendar/?view=week&date=2027-01-18"' in body
    )


def test_the_month_view_moves_across_a_month_end_by_shareable_links(patient: Any, nurse: Any) -> None:
    start(patient, on=date(2027, 1, 25))
    with time_machine.travel("2027-01-25 09:00:00+00:00", tick=False):
        client = signed_in(nurse)
        january = client.get("/calendar/?view=month&date=2027-01-25").content.decode()
        link = re.search(r'href="/calendar/\?([^"]*)" rel="next"', january)
        assert link is not None
        query = link.group(1).replace("&amp;", "&")
        assert query == "view=month&date=2027-02-01"
        february = client.get(f"/calendar/?{query}").content.decode()
    assert "<h1>January 2027</h1>" in january and "<h1>February 2027</h1>" in february
    # The loading doses of late January run into February: each month shows its own.
    assert "1 dose" in cell(january, "2027-01-25")
    assert "1 dose" in cell(february, "2027-02-01")
    assert 'rel="prev"' in february and "date=2027-01-01" in february


def test_a_day_lists_its_patients(clinic: Any, nurse: Any, monday: Any) -> None:
    start(PatientFactory(clinic=clinic, family_name="Adeyemi", given_name="Tola"))
    start(PatientFactory(clinic=clinic, family_name="Brennan", given_name="Ciara"))
    body = signed_in(nurse).get("/calendar/?view=day&date=2027-01-13").content.decode()
    assert "Doses planned (2)" in body
    assert body.index("Adeyemi, Tola") < body.index("Brennan, Ciara")


def test_another_clinic_is_a_404_and_its_doses_are_not_counted(
    patient: Any, other_patient: Any, nurse: Any, monday: Any
) -> None:
    start(patient)
    start(other_patient)
    client = signed_in(nurse)
    assert "1 dose" in cell(client.get("/calendar/").content.decode(), "2027-01-11")
    day = client.get("/calendar/?view=day&date=2027-01-11").content.decode()
    # The whole "Family, Given" and the patient link: a random family name alone can turn up in a clinic's name.
    assert escape(f"{other_patient.family_name}, {other_patient.given_name}") not in day
    assert f'href="/patients/{other_patient.pk}/"' not in day
    assert client.get(f"/calendar/?clinic={other_patient.clinic_id}").status_code == 404


def test_the_dashboards_range_links_open_the_view_that_holds_the_range(nurse: Any, monday: Any) -> None:
    client = signed_in(nurse)
    day = client.get("/calendar/?status=planned&due_from=2027-01-13&due_to=2027-01-13").content.decode()
    week = client.get("/calendar/?status=planned&due_from=2027-01-11&due_to=2027-01-17").content.decode()
    month = client.get("/calendar/?status=planned&due_from=2027-02-01&due_to=2027-02-28").content.decode()
    assert "<h1>Wednesday 13 January 2027</h1>" in day
    assert "Week: 11 January to 17 January 2027" in week
    assert "<h1>February 2027</h1>" in month


@pytest.mark.parametrize("query", ["date=2027-13-01", "view=year", "clinic=abc"])
def test_a_bad_query_is_named(nurse: Any, query: str, monday: Any) -> None:
    response = signed_in(nurse).get(f"/calendar/?{query}")
    assert response.status_code == 400
    field = query.split("=")[0]
    assert "There is a problem" in response.content.decode() and f'href="#id_{field}"' in response.content.decode()


def test_the_calendar_range_downloads_as_csv(clinic: Any, nurse: Any, monday: Any) -> None:
    regimen = start(PatientFactory(clinic=clinic, family_name="Adeyemi"))
    LabRecheckFactory(regimen=regimen, day=9, window=2)
    response = signed_in(nurse).get("/calendar/export.csv?view=week&date=2027-01-11")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["date", "kind", "clinic", "family_name", "given_name", "mrn", "what"]
    assert [(r[0], r[1]) for r in rows[1:]] == [
        ("2027-01-11", "dose"),
        ("2027-01-13", "dose"),
        ("2027-01-13", "recheck"),
        ("2027-01-15", "dose"),
    ]
    assert all(r[3] == "Adeyemi" for r in rows[1:])


@pytest.mark.parametrize("patients", [1, 6])
@pytest.mark.parametrize("view", ["week", "month", "day"])
def test_the_calendar_costs_the_same_number_of_queries_however_many_rows(
    clinic: Any, nurse: Any, patients: int, view: str, django_assert_max_num_queries: Any
) -> None:
    for _ in range(patients):
        regimen = start(PatientFactory(clinic=clinic))
        LabRecheckFactory(regimen=regimen, day=9, window=2)
    ClosedDateFactory(clinic=clinic, date=date(2027, 1, 14))
    with time_machine.travel(MONDAY, tick=False):
        client = signed_in(nurse)
        # The day view also reads its doses' warnings, as the worklist does (RULES §10 V-12; 4 queries for them all).
        with django_assert_max_num_queries(13 if view == "day" else 9):
            response = client.get(f"/calendar/?view={view}&date=2027-01-13")
    assert response.status_code == 200
    assert f"{patients}" in response.content.decode()
