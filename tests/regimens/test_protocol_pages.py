"""The /staff/protocols/ pages (issue 12): a clinic admin lists the shared protocols and the clinic's own copies,
makes a copy, changes a phase of it within its ranges and retires it; the start-regimen page offers the copy to
the clinic's prescribers and to no other clinic's."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from patients.models import Role
from regimens.models import Protocol, Regimen
from tests.conftest import page_text
from tests.factories import PatientFactory, staff_user
from tests.timeline import T0

pytestmark = pytest.mark.django_db

SHARED = "hydroxo-uk-standard"


def signed_in(user: Any) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


@pytest.fixture
def intruder(other_clinic: Any) -> Client:
    return signed_in(staff_user(other_clinic, Role.ADMIN, username="other-admin"))


def test_a_clinic_admin_copies_a_shared_protocol_from_the_list(clinic_admin: Any, clinic: Any) -> None:
    browser = signed_in(clinic_admin)
    listing = browser.get("/staff/protocols/")
    body = page_text(listing.content.decode())
    assert "Make a copy for Riverside Haematology" in body and "None yet." in body
    assert 'aria-current="page">' in listing.content.decode()
    shared = Protocol.objects.get(code=SHARED)

    response = browser.post(f"/staff/protocols/{shared.pk}/copy/", {"clinic": clinic.pk}, follow=True)

    copy = Protocol.objects.get(clinic=clinic)
    assert response.redirect_chain[-1][0] == f"/staff/protocols/{copy.pk}/"
    assert "was copied for Riverside Haematology" in page_text(response.content.decode())
    assert copy.name in page_text(browser.get("/staff/protocols/").content.decode())


def test_the_navigation_marks_protocols_not_staff(clinic_admin: Any) -> None:
    html = signed_in(clinic_admin).get("/staff/protocols/").content.decode()
    assert 'href="/staff/protocols/" aria-current="page"' in html
    assert 'href="/staff/" aria-current="page"' not in html


@pytest.mark.parametrize("role", [Role.NURSE, Role.CLINICIAN])
def test_the_pages_are_for_clinic_admins(copy: Protocol, clinic: Any, role: str) -> None:
    browser = signed_in(staff_user(clinic, role, username=f"p-{role}"))
    assert browser.get("/staff/protocols/").status_code == 403
    assert browser.get(f"/staff/protocols/{copy.pk}/").status_code == 403
    assert browser.post(f"/staff/protocols/{copy.pk}/retire/").status_code == 403
    assert browser.post(f"/staff/protocols/{copy.pk}/phases/maintenance/", {"spacing_value": 8}).status_code == 403
    copy.refresh_from_db()
    assert copy.active and copy.phases.get(key="maintenance").spacing_value == 12


def test_a_phase_outside_its_range_shows_the_error_summary_and_changes_nothing(
    copy: Protocol, clinic_admin: Any
) -> None:
    browser = signed_in(clinic_admin)
    url = f"/staff/protocols/{copy.pk}/phases/maintenance/"
    form = browser.get(url).content.decode()
    # Maintenance has a spacing range (8-13 weeks) and no dose range: the dose is not offered.
    assert 'name="spacing_value"' in form and 'name="dose_mcg"' not in form and "From 8 to 13" in page_text(form)

    refused = browser.post(url, {"spacing_value": 14, "prompt": ""})

    assert refused.status_code == 200
    body = page_text(refused.content.decode())
    assert "There is a problem" in body and "Spacing number: must be within the phase's range: 8–13" in body
    assert copy.phases.get(key="maintenance").spacing_value == 12


def test_a_phase_within_its_range_is_saved(copy: Protocol, clinic_admin: Any) -> None:
    browser = signed_in(clinic_admin)
    response = browser.post(
        f"/staff/protocols/{copy.pk}/phases/maintenance/",
        {"spacing_value": 8, "prompt": "Book the next injection before leaving.", "reason": "local pathway"},
    )
    assert response.status_code == 302 and response["Location"] == f"/staff/protocols/{copy.pk}/"
    maintenance = copy.phases.get(key="maintenance")
    assert (maintenance.spacing_value, maintenance.prompt) == (8, "Book the next injection before leaving.")
    assert Protocol.objects.get(code=SHARED).phases.get(key="maintenance").spacing_value == 12


def test_a_shared_protocol_can_be_read_but_not_changed(clinic_admin: Any) -> None:
    browser = signed_in(clinic_admin)
    shared = Protocol.objects.get(code=SHARED)
    page = page_text(browser.get(f"/staff/protocols/{shared.pk}/").content.decode())
    assert "Shared protocol" in page and "Change this phase" not in page and "Make a copy" in page
    assert browser.get(f"/staff/protocols/{shared.pk}/phases/maintenance/").status_code == 403
    assert browser.post(f"/staff/protocols/{shared.pk}/retire/").status_code == 403
    assert Protocol.objects.get(code=SHARED).active


def test_a_clinic_admin_retires_the_copy(copy: Protocol, clinic_admin: Any) -> None:
    response = signed_in(clinic_admin).post(f"/staff/protocols/{copy.pk}/retire/", follow=True)
    assert "The protocol was retired" in page_text(response.content.decode())
    copy.refresh_from_db()
    assert not copy.active


def test_another_clinic_cannot_see_or_touch_the_copy(copy: Protocol, intruder: Client) -> None:
    assert copy.name not in page_text(intruder.get("/staff/protocols/").content.decode())
    for path in (f"/staff/protocols/{copy.pk}/", f"/staff/protocols/{copy.pk}/phases/maintenance/"):
        assert intruder.get(path).status_code == 404
    for path in ("copy", "retire", "phases/maintenance"):
        assert intruder.post(f"/staff/protocols/{copy.pk}/{path}/", {"spacing_value": 8}).status_code == 404
    assert intruder.get(f"/staff/protocols/{copy.pk + 1000}/").status_code == 404
    copy.refresh_from_db()
    assert copy.active and copy.phases.get(key="maintenance").spacing_value == 12


def test_the_start_page_offers_the_copy_to_its_clinic_only(
    copy: Protocol, clinician: Any, patient: Any, other_clinic: Any, clock: Any
) -> None:
    form = {"protocol": copy.pk, "start_date": T0.isoformat(), "action": "start"}
    mine = signed_in(clinician)
    assert copy.name in mine.get(f"/patients/{patient.pk}/regimens/new/").content.decode()
    assert mine.post(f"/patients/{patient.pk}/regimens/new/", form).status_code == 302
    assert Regimen.objects.get(patient=patient).protocol == copy

    other_patient = PatientFactory(clinic=other_clinic)
    theirs = signed_in(staff_user(other_clinic, Role.CLINICIAN, username="other-clinician"))
    start = f"/patients/{other_patient.pk}/regimens/new/"
    assert copy.name not in theirs.get(start).content.decode()
    refused = page_text(theirs.post(start, form).content.decode())
    unknown = page_text(theirs.post(start, {**form, "protocol": copy.pk + 1000}).content.decode())
    assert "Select a valid choice" in refused
    # Word for word the same page: the text names neither id (replacing ids in it turned "B12" or "20 cm" into
    # something else whenever a protocol's id was 12 or 20).
    assert refused == unknown
    assert not Regimen.objects.filter(patient=other_patient).exists()


@pytest.mark.parametrize("path", ["/staff/protocols/", "/staff/"])
def test_a_clinic_that_is_not_plain_digits_shows_the_default_clinic(clinic_admin: Any, path: str) -> None:
    # "²".isdigit() is True but int("²") fails: once a 500 on /staff/ (tracker.pages.requested_clinic_id).
    response = signed_in(clinic_admin).get(path, {"clinic": "²"})
    assert response.status_code == 200
    assert "Riverside Haematology" in page_text(response.content.decode())
