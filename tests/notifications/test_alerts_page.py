"""The alerts page `/alerts/`: the open alerts of the user's clinics, most severe first, filtered, and
acknowledged with a note (required for a critical alert, as in the API), in place with htmx or by a plain
form post without JavaScript."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from notifications.models import Alert, AlertKind, AlertStatus, Severity
from patients.models import Clinic, ClinicMembership, Role
from tests.factories import AlertFactory, ClinicFactory, PatientFactory, staff_user

pytestmark = pytest.mark.django_db


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def alert(clinic: Clinic, severity: str = Severity.HIGH, kind: str = AlertKind.DOSE_OVERDUE, **extra: Any) -> Alert:
    return AlertFactory(patient=PatientFactory(clinic=clinic), severity=severity, kind=kind, **extra)


def shown_ids(body: str) -> list[int]:
    import re

    return [int(n) for n in re.findall(r'<article class="nhsuk-card app-alert" id="alert-(\d+)"', body)]


def test_it_lists_the_clinics_open_alerts_most_severe_first(clinic: Clinic, nurse: Any, other_clinic: Clinic) -> None:
    medium = alert(clinic, Severity.MEDIUM, AlertKind.LDH_NOT_NORMALIZED)
    critical = alert(clinic, Severity.CRITICAL, AlertKind.PLATELETS_CRITICAL, message="Platelets 15 x10^9/L (A-P3).")
    high = alert(clinic, Severity.HIGH)
    alert(clinic, status=AlertStatus.RESOLVED)
    alert(clinic, status=AlertStatus.ACKNOWLEDGED)
    alert(other_clinic, Severity.CRITICAL)

    response = signed_in(nurse).get("/alerts/")

    assert response.status_code == 200
    body = response.content.decode()
    assert shown_ids(body) == [critical.pk, high.pk, medium.pk]
    assert "3 alerts" in body
    assert "Platelets 15 x10^9/L (A-P3)." in body
    patient = critical.patient
    assert f'<a href="/patients/{patient.pk}/#alerts">{patient.family_name}, {patient.given_name}</a>' in body


def test_it_filters_by_kind_severity_status_and_clinic(clinic: Clinic, nurse: Any) -> None:
    second = ClinicFactory(name="Northside")
    ClinicMembership.objects.create(user=nurse, clinic=second, role=Role.NURSE)
    overdue = alert(clinic, Severity.HIGH, AlertKind.DOSE_OVERDUE)
    platelets = alert(clinic, Severity.CRITICAL, AlertKind.PLATELETS_CRITICAL)
    elsewhere = alert(second, Severity.HIGH, AlertKind.DOSE_OVERDUE)
    acknowledged = alert(clinic, Severity.HIGH, AlertKind.LDH_NOT_FALLING, status=AlertStatus.ACKNOWLEDGED)
    client = signed_in(nurse)

    assert shown_ids(client.get("/alerts/").content.decode()) == [platelets.pk, elsewhere.pk, overdue.pk]
    assert shown_ids(client.get("/alerts/?kind=dose_overdue").content.decode()) == [elsewhere.pk, overdue.pk]
    assert shown_ids(client.get("/alerts/?severity=critical").content.decode()) == [platelets.pk]
    assert shown_ids(client.get(f"/alerts/?clinic={second.pk}").content.decode()) == [elsewhere.pk]
    assert shown_ids(client.get("/alerts/?status=acknowledged").content.decode()) == [acknowledged.pk]


def test_a_filter_value_that_is_not_a_choice_is_named(clinic: Clinic, nurse: Any, other_clinic: Clinic) -> None:
    alert(other_clinic)
    body = signed_in(nurse).get(f"/alerts/?severity=urgent&clinic={other_clinic.pk}").content.decode()
    assert "There is a problem" in body
    assert "Severity: Select a valid choice. urgent is not one of the available choices." in body
    assert shown_ids(body) == []  # another clinic's id is refused, never used


def test_a_nurse_acknowledges_an_alert_with_a_note_without_javascript(clinic: Clinic, nurse: Any) -> None:
    high = alert(clinic, Severity.HIGH)
    client = signed_in(nurse)

    response = client.post(
        f"/alerts/{high.pk}/acknowledge/?severity=high",
        {f"alert-{high.pk}-note": "Called the patient; rebooked", "next": "/alerts/?severity=high"},
    )

    assert response.status_code == 302 and response["Location"] == "/alerts/?severity=high"
    high.refresh_from_db()
    assert (high.status, high.acknowledged_by, high.acknowledgement_note) == (
        AlertStatus.ACKNOWLEDGED,
        nurse,
        "Called the patient; rebooked",
    )
    page = client.get(response["Location"]).content.decode()
    assert "Alert acknowledged: Dose overdue (S-4) for" in page
    assert shown_ids(page) == []


def test_a_critical_alert_needs_a_note_and_the_error_names_it(clinic: Clinic, nurse: Any) -> None:
    critical = alert(clinic, Severity.CRITICAL, AlertKind.PLATELETS_CRITICAL)

    response = signed_in(nurse).post(f"/alerts/{critical.pk}/acknowledge/", {f"alert-{critical.pk}-note": "  "})

    assert response.status_code == 400
    body = response.content.decode()
    assert "What was done: a critical alert needs a note saying what was done" in body
    assert f'href="#id_alert-{critical.pk}-note"' in body
    critical.refresh_from_db()
    assert critical.status == AlertStatus.OPEN and critical.acknowledged_at is None


def test_with_htmx_the_alert_is_swapped_in_place(clinic: Clinic, clinician: Any) -> None:
    critical = alert(clinic, Severity.CRITICAL, AlertKind.PLATELETS_CRITICAL)
    client = signed_in(clinician)
    url = f"/alerts/{critical.pk}/acknowledge/"

    refused = client.post(f"{url}?severity=critical", {f"alert-{critical.pk}-note": ""}, HTTP_HX_REQUEST="true")
    assert refused.status_code == 200  # htmx swaps only 2xx answers
    assert "a critical alert needs a note" in refused.content.decode()
    assert "<html" not in refused.content.decode()
    assert f'hx-post="{url}?severity=critical"' in refused.content.decode()  # the list's filters are kept

    done = client.post(url, {f"alert-{critical.pk}-note": "Admitted; haematology called"}, HTTP_HX_REQUEST="true")

    assert done.status_code == 200
    card = done.content.decode()
    assert card.startswith(f'<article class="nhsuk-card app-alert" id="alert-{critical.pk}"')
    assert "Acknowledged." in card and "Admitted; haematology called" in card
    assert "<form" not in card
    critical.refresh_from_db()
    assert critical.status == AlertStatus.ACKNOWLEDGED and critical.acknowledged_by == clinician


def test_an_alert_someone_else_acknowledged_first_is_a_conflict_that_says_who(
    clinic: Clinic, nurse: Any, clinician: Any
) -> None:
    high = alert(clinic)
    signed_in(clinician).post(f"/alerts/{high.pk}/acknowledge/", {f"alert-{high.pk}-note": "Seen"})

    response = signed_in(nurse).post(f"/alerts/{high.pk}/acknowledge/", {f"alert-{high.pk}-note": "Also seen"})

    assert response.status_code == 400
    assert "the alert was already acknowledged by clinician" in response.content.decode()
    high.refresh_from_db()
    assert high.acknowledged_by == clinician and high.acknowledgement_note == "Seen"


def test_another_clinics_alert_is_not_found(clinic: Clinic, nurse: Any, other_clinic: Clinic) -> None:
    theirs = alert(other_clinic)
    response = signed_in(nurse).post(f"/alerts/{theirs.pk}/acknowledge/", {f"alert-{theirs.pk}-note": "x"})
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == AlertStatus.OPEN


def test_the_page_needs_a_signed_in_member_of_staff(clinic: Clinic) -> None:
    high = alert(clinic)
    assert Client().get("/alerts/")["Location"] == "/login/?next=/alerts/"
    assert Client().post(f"/alerts/{high.pk}/acknowledge/").status_code == 302
    outsider = staff_user(ClinicFactory(name="Nowhere"), Role.NURSE, username="outsider")
    outsider.memberships.all().delete()
    assert signed_in(outsider).get("/alerts/").status_code == 403


@pytest.mark.parametrize("count", [3, 30])
def test_the_page_takes_the_same_queries_for_3_or_30_alerts(
    clinic: Clinic, nurse: Any, count: int, django_assert_max_num_queries: Any
) -> None:
    for index in range(count):
        alert(clinic, [Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM][index % 3])
    client = signed_in(nurse)
    with django_assert_max_num_queries(6):
        response = client.get("/alerts/")
    assert len(shown_ids(response.content.decode())) == count
