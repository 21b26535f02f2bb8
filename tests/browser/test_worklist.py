"""The nurse's Monday in a real Chromium: the worklist's due and overdue doses, a warning before an
injection, one dose recorded given (one of them with the keyboard only) and one not given in place, the
re-planned calendar, and the calendar moving across a month end. Every page passes axe-core, also after
an in-place update."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.contrib.sessions.models import Session
from playwright.sync_api import expect

from patients.models import LabResult, Role
from regimens import services
from regimens.models import DoseStatus, Protocol, Regimen, ScheduledDose
from tests.browser.conftest import assert_accessible, shot, sign_in
from tests.factories import AlertFactory, LabRecheckFactory, PatientFactory, staff_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

START = date(2027, 1, 4)  # a Monday; the nurse opens the list a week later
MONDAY = datetime(2027, 1, 11, 9, 0, tzinfo=UTC)


def start(patient: Any) -> Regimen:
    with time_machine.travel(datetime(2027, 1, 4, 8, tzinfo=UTC), tick=False):
        return services.regimen_start(
            patient=patient, protocol=Protocol.objects.get(code="hydroxo-uk-standard"), start_date=START
        )


def first_planned(regimen: Regimen) -> ScheduledDose:
    found = regimen.doses.filter(status=DoseStatus.PLANNED).order_by("phase_index", "sequence").first()
    assert found is not None
    return found


@pytest.fixture
def monday(builtin_protocols: None) -> Iterator[None]:
    # The clock runs (tick) from Monday 09:00 so the live server and the browser's requests see Monday.
    with time_machine.travel(MONDAY, tick=True):
        yield


@pytest.fixture
def clinic_day(monday: None, clinic: Any) -> dict[str, Any]:
    nurse = staff_user(clinic, Role.NURSE, username="nora")
    nurse.first_name, nurse.last_name = "Nora", "Okafor"
    nurse.save()
    people = {
        "low": PatientFactory(clinic=clinic, given_name="Alice", family_name="Adeyemi", mrn="RX1001"),
        "keys": PatientFactory(clinic=clinic, given_name="Brian", family_name="Brennan", mrn="RX1002"),
        "away": PatientFactory(clinic=clinic, given_name="Carla", family_name="Costa", mrn="RX1003"),
    }
    regimens = {key: start(p) for key, p in people.items()}
    LabResult.objects.create(
        patient=people["low"],
        analyte="platelets",
        loinc="777-3",
        value_as_entered="45",
        unit_as_entered="10^9/L",
        value_canonical=Decimal("45"),
        unit_canonical="10^9/L",
        collected_at=datetime(2027, 1, 9, 9, tzinfo=UTC),
    )
    LabRecheckFactory(regimen=regimens["away"], day=7, window=3, description="Hemoglobin and reticulocytes, day 7")
    AlertFactory(patient=people["away"], message="Two loading doses missed.")
    return {"nurse": nurse, "regimens": regimens, "people": people}


def test_a_nurse_works_through_mondays_list_and_sees_the_replanned_calendar(
    browser: Any, live_server: Any, clinic_day: dict[str, Any]
) -> None:
    regimens = clinic_day["regimens"]
    page = sign_in(browser, live_server, clinic_day["nurse"])
    assert page.url == f"{live_server.url}/"
    heading = page.get_by_role("heading", name="Doses due today and overdue")
    assert "(3)" in heading.inner_text()  # three patients, each with their first missed loading dose
    assert page.get_by_text("and 3 more doses due").count() == 3
    low = first_planned(regimens["low"])
    row = page.locator(f"#dose-{low.pk}")
    assert "7 days overdue" in row.inner_text()
    assert "S-2" in row.inner_text()  # the low platelet count shows before the injection
    assert "1 open alert" in page.locator("main").inner_text()
    assert "Hemoglobin and reticulocytes, day 7" in page.locator("main").inner_text()
    assert_accessible(page)
    shot(page, "worklist")  # docs/screenshots/worklist.png is a copy of it
    # The page is never reloaded: a mark set now must survive every in-place update.
    page.evaluate("window.__stillHere = true")

    # Given, with the warning acknowledged and a lot number.
    row.get_by_role("link", name=re.compile(r"^Given")).click()
    form = page.locator(f"#dose-{low.pk} form")
    form.wait_for()
    assert "Before you give this dose" in form.inner_text()
    submit = form.get_by_role("button", name="Record as given")
    submit.click()  # not acknowledged yet: refused, in place, naming what is missing
    page.locator(f"#dose-{low.pk} .nhsuk-error-summary").wait_for()
    assert "Tick each warning" in page.locator(f"#dose-{low.pk}").inner_text()
    assert_accessible(page)
    shot(page, "worklist-warning")
    form = page.locator(f"#dose-{low.pk} form")
    form.get_by_label("Batch (lot) number").fill("HX2291")
    form.get_by_label("Expiry date").fill("2028-03-31")
    form.get_by_label("Injection site").select_option("left deltoid")
    form.locator("input[value=im_injection_low_platelets]").check()
    form.get_by_role("button", name="Record as given").click()
    page.locator(f"#dose-{low.pk} [role=status]").wait_for()
    assert "recorded as given" in page.locator(f"#dose-{low.pk}").inner_text()
    assert page.evaluate("window.__stillHere") is True
    assert_accessible(page)
    low.refresh_from_db()
    assert (low.status, low.lot_number, low.site) == (DoseStatus.GIVEN, "HX2291", "left deltoid")
    assert low.acknowledged_warnings == ["im_injection_low_platelets"]

    # Keyboard only: Tab to Brian's "Given", Enter, the lot is remembered; Enter records it.
    keys = first_planned(regimens["keys"])
    target = f"Given – {clinic_day['people']['keys'].given_name} Brennan"
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.innerText.replace(/\\s+/g, ' ').trim()") == target:
            break
    else:
        pytest.fail("the keyboard never reached Brian's Given link")
    page.keyboard.press("Enter")
    page.locator(f"#dose-{keys.pk} form").wait_for()
    focused = f"id_dose{keys.pk}-lot_number"
    # The form opens with the cursor in it (htmx focuses the autofocus field once the swap settles).
    # expect() polls with Playwright's own script: a string predicate (wait_for_function) is an eval that the
    # pages' CSP refuses once it has to poll.
    expect(page.locator(f"#{focused}")).to_be_focused(timeout=5000)
    assert page.locator(f"#{focused}").input_value() == "HX2291"  # the session's last lot
    page.keyboard.press("Enter")
    page.locator(f"#dose-{keys.pk} [role=status]").wait_for()
    keys.refresh_from_db()
    assert (keys.status, keys.lot_number) == (DoseStatus.GIVEN, "HX2291")
    assert page.evaluate("window.__stillHere") is True

    # Not given: Carla did not attend.
    away = first_planned(regimens["away"])
    page.locator(f"#dose-{away.pk}").get_by_role("link", name=re.compile(r"^Not given")).click()
    form = page.locator(f"#dose-{away.pk} form")
    form.wait_for()
    form.get_by_label("Did not attend").check()
    form.get_by_label("Note", exact=True).fill("phoned: will come on Wednesday")
    form.get_by_role("button", name="Record as not given").click()
    page.locator(f"#dose-{away.pk} [role=status]").wait_for()
    assert "Did not attend: phoned" in page.locator(f"#dose-{away.pk}").inner_text()
    assert_accessible(page)
    shot(page, "worklist-recorded")

    # The calendar is re-planned: Alice's next dose moved from the dose given today.
    following = first_planned(regimens["low"])
    assert following.due_date > date(2027, 1, 11)
    with page.expect_navigation():
        page.get_by_role("link", name="Calendar").click()
    assert page.url == f"{live_server.url}/calendar/"
    assert_accessible(page)
    shot(page, "calendar-week")
    with page.expect_navigation():
        page.locator(f"a.app-calendar__date[href*='date={following.due_date.isoformat()}']").click()
    assert page.url.endswith(f"/calendar/?view=day&date={following.due_date.isoformat()}"), page.url
    assert "Adeyemi, Alice" in page.locator("main").inner_text()
    assert_accessible(page)


def test_the_calendar_moves_across_a_month_end(browser: Any, live_server: Any, clinic_day: dict[str, Any]) -> None:
    page = sign_in(browser, live_server, clinic_day["nurse"])
    page.goto(f"{live_server.url}/calendar/?view=month&date=2027-01-11")
    assert page.get_by_role("heading", level=1).inner_text() == "January 2027"
    assert page.locator("[aria-current=date]").count() == 1
    assert_accessible(page)
    shot(page, "calendar-month")
    with page.expect_navigation():
        page.get_by_role("link", name="Next month").click()
    assert page.url == f"{live_server.url}/calendar/?view=month&date=2027-02-01"
    assert page.get_by_role("heading", level=1).inner_text() == "February 2027"
    with page.expect_navigation():
        page.get_by_role("link", name="Previous month").click()
    assert page.url == f"{live_server.url}/calendar/?view=month&date=2027-01-01"
    assert page.get_by_role("heading", level=1).inner_text() == "January 2027"
    assert_accessible(page)


def test_the_dose_form_on_its_own_page_keeps_its_headings_in_order(
    browser: Any, live_server: Any, clinic_day: dict[str, Any]
) -> None:
    # Without JavaScript "Given" opens /doses/{id}/given/: the patient's name is its level-1 heading, the form's
    # title level 2, the low platelet warning (S-2) and, after a refused submit, the error summary level 3.
    dose = first_planned(clinic_day["regimens"]["low"])
    page = sign_in(browser, live_server, clinic_day["nurse"])
    page.goto(f"{live_server.url}/doses/{dose.pk}/given/")
    headings = page.locator("main h1, main h2, main h3, main h4")
    assert [h.evaluate("e => e.tagName") for h in headings.all()] == ["H1", "H2", "H3"]
    assert_accessible(page)
    with page.expect_navigation():
        page.get_by_role("button", name="Record as given").click()  # the warning is not acknowledged
    expect(page.get_by_role("heading", name="There is a problem", level=3)).to_be_visible()
    assert_accessible(page)
    shot(page, "dose-given-page-error")


def test_after_the_session_ends_given_opens_the_sign_in_page_and_comes_back_to_the_list(
    browser: Any, live_server: Any, clinic_day: dict[str, Any]
) -> None:
    page = sign_in(browser, live_server, clinic_day["nurse"])
    page.goto(f"{live_server.url}/?route=IM")
    Session.objects.all().delete()  # the session ends while the list is open
    dose = first_planned(clinic_day["regimens"]["keys"])
    with page.expect_navigation():
        page.locator(f"#dose-{dose.pk} a.app-record").first.click()
    # The sign-in page whole, not inside the dose's row; then back to the list as it was.
    assert page.url == f"{live_server.url}/login/?next=%2F%3Froute%3DIM"
    assert page.locator(f"#dose-{dose.pk}").count() == 0
    page.get_by_label("Username").fill("nora")
    page.get_by_label("Password").fill("pw-for-tests")
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    assert page.url == f"{live_server.url}/?route=IM"
    expect(page.get_by_role("heading", name="Today's worklist")).to_be_visible()


def test_a_part_of_the_page_that_cannot_be_updated_says_so(
    browser: Any, live_server: Any, clinic_day: dict[str, Any]
) -> None:
    # No answer (the network), or an answer htmx does not put in the page (403, 5xx): the nurse is told in an
    # alert at the top of the page, instead of a click that does nothing.
    page = sign_in(browser, live_server, clinic_day["nurse"])
    page.goto(f"{live_server.url}/")
    box = page.locator("#app-update-error")
    expect(box).to_be_hidden()
    dose = first_planned(clinic_day["regimens"]["keys"])
    given = page.locator(f"#dose-{dose.pk} a.app-record").first
    cases = [
        (lambda route: route.abort(), "Cobalt did not answer: check the network connection"),
        (lambda route: route.fulfill(status=403, body="no"), "You are not allowed to do this"),
        (lambda route: route.fulfill(status=500, body="oops"), "Something went wrong in Cobalt"),
    ]
    for answer, text in cases:
        page.route(f"**/doses/{dose.pk}/given/", answer)
        given.click()
        expect(box).to_be_visible()
        expect(box.get_by_text(text)).to_be_visible()
        assert box.locator("p[data-status]:visible").count() == 1  # only the text of what happened
        assert_accessible(page)
        page.unroute(f"**/doses/{dose.pk}/given/")
    given.click()  # the answer comes back: the form opens in the row
    expect(page.locator(f"#dose-{dose.pk} form")).to_be_visible()
