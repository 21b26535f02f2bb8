"""The clinic admin's dashboard: the API and the page show the same numbers, which match counts made
directly from the rows; only the clinic's admins see it; the query count does not grow with rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from notifications.models import Alert, AlertKind, AlertStatus, Delivery, DeliveryStatus, Purpose, Severity
from patients.models import ClosedDate, Patient, ReminderChannel, Role
from regimens.models import DoseStatus, RecheckStatus, Regimen, ScheduledDose
from tests.conftest import client_for
from tests.factories import (
    AlertFactory,
    DeliveryFactory,
    LabRecheckFactory,
    PatientFactory,
    RegimenFactory,
    ScheduledDoseFactory,
    staff_user,
)
from tests.timeline import T0, day, noon

pytestmark = pytest.mark.django_db


def dose(regimen: Any, on_day: int, status: str = DoseStatus.PLANNED, **fields: Any) -> Any:
    return ScheduledDoseFactory(regimen=regimen, due_date=day(on_day), status=status, **fields)


def given(regimen: Any, due_day: int, given_day: int) -> Any:
    return dose(regimen, due_day, DoseStatus.GIVEN, administered_at=noon(day(given_day)))


@pytest.fixture
def clinic_data(clinic: Any, other_clinic: Any, clock: Any) -> dict[str, Any]:
    """Today is T0 (Monday 4 January 2027) in London. One patient's doses cover each figure."""
    regimen = RegimenFactory(patient=PatientFactory(clinic=clinic))
    for offset in (0, 3, 3, 10, 60):  # planned: today, Thursday twice, next week, beyond 8 weeks
        dose(regimen, offset)
    for offset in (-3, -10, -20, -40):  # overdue 3, 10, 20 and 40 days
        dose(regimen, offset)
    given(regimen, -30, -30)  # on time
    given(regimen, -50, -30)  # 20 days late: past S-4's 14-day grace
    dose(regimen, -45, DoseStatus.NOT_GIVEN, not_given_reason="Patient declined")
    dose(regimen, -44, DoseStatus.CANCELLED)  # not counted anywhere
    ClosedDate.objects.create(clinic=clinic, date=day(3), note="Training day")
    # Rechecks: one in its window today, one whose window closed (overdue before the sweep ran), one marked overdue.
    LabRecheckFactory(regimen=regimen, day=0)
    LabRecheckFactory(regimen=regimen, day=-10, rule="L-7")
    LabRecheckFactory(regimen=regimen, day=-20, rule="L-8", status=RecheckStatus.OVERDUE)
    # Alerts: two open, one acknowledged after 2 hours (A-H4: not normalizing), one resolved.
    opened = noon(day(-5))
    AlertFactory(patient=regimen.patient, severity=Severity.HIGH, opened_at=opened)
    AlertFactory(patient=PatientFactory(clinic=clinic), kind=AlertKind.PLATELETS_CRITICAL, severity=Severity.CRITICAL)
    AlertFactory(
        patient=regimen.patient,
        kind=AlertKind.HEMOGLOBIN_NOT_NORMALIZED,
        rule_id="A-H4",
        severity=Severity.MEDIUM,
        status=AlertStatus.ACKNOWLEDGED,
        opened_at=opened,
        acknowledged_at=opened + timedelta(hours=2),
    )
    AlertFactory(patient=regimen.patient, kind=AlertKind.LDH_NOT_FALLING, status=AlertStatus.RESOLVED)
    # Reminders: one sent, one failed, one waiting 3 hours; a staff message that is not a reminder.
    DeliveryFactory(patient=regimen.patient, status=DeliveryStatus.SENT, sent_at=noon(day(-2)))
    DeliveryFactory(patient=regimen.patient, status=DeliveryStatus.FAILED)
    DeliveryFactory(patient=regimen.patient, due_at=noon(T0) - timedelta(hours=3))
    DeliveryFactory(patient=regimen.patient, purpose=Purpose.ALERT, status=DeliveryStatus.FAILED)
    PatientFactory(clinic=clinic, reminder_channel=ReminderChannel.NONE)
    # Another clinic's rows never count.
    other = RegimenFactory(patient=PatientFactory(clinic=other_clinic))
    dose(other, -3)
    dose(other, 3)
    AlertFactory(patient=other.patient)
    return {"regimen": regimen}


def test_it_reports_the_clinic_figures(clinic_data: Any, admin_api: Any) -> None:
    body = admin_api.get("/api/dashboard/").json()
    work = body["work"]
    assert body["today"] == "2027-01-04"
    assert body["period"] == {"from": "2026-08-01", "to": "2027-01-04"}
    assert work["due_this_week"] == 3  # today and Thursday (T0 is a Monday)
    assert work["due_next_8_weeks"] == 4  # the dose in 60 days is beyond
    days = {d["date"]: d for d in work["days"]}
    assert len(days) == 56
    assert days["2027-01-07"] == {"date": "2027-01-07", "doses": 2, "open": False}  # the closed training day
    assert days["2027-01-09"]["open"] is False  # a Saturday
    assert days["2027-01-04"] == {"date": "2027-01-04", "doses": 1, "open": True}
    assert work["overdue"] == 4
    assert [(b["days"], b["doses"]) for b in work["overdue_by_days"]] == [
        ("1-7", 1),
        ("8-14", 1),
        ("15-28", 1),
        ("29+", 1),
    ]
    assert (work["rechecks_due"], work["rechecks_overdue"]) == (1, 2)

    adherence = body["adherence"]
    # Due in the period up to yesterday: 4 overdue, 2 given, 1 not given; 1 of them given on time.
    assert (adherence["due"], adherence["on_time"], adherence["on_time_share"]) == (7, 1, round(1 / 7, 4))
    assert adherence["not_given_by_reason"] == [{"reason": "Patient declined", "doses": 1}]
    months = {m["month"]: m for m in adherence["months"]}
    assert list(months) == ["2026-08", "2026-09", "2026-10", "2026-11", "2026-12", "2027-01"]
    assert months["2026-11"] == {
        "month": "2026-11",
        "due": 3,
        "given": 1,
        "on_time": 0,
        "not_given": 1,
        "missed": 1,
        "on_time_share": 0.0,
    }
    assert months["2026-12"]["due"] == 3 and months["2026-12"]["on_time"] == 1  # 5, 15 and 25 December

    outcomes = body["outcomes"]
    assert outcomes["open_alerts"] == 2
    assert {s["severity"]: s["alerts"] for s in outcomes["open_by_severity"]} == {
        "critical": 1,
        "high": 1,
        "medium": 0,
        "info": 0,
    }
    assert {k["kind"]: k["alerts"] for k in outcomes["open_by_kind"]} == {"dose_overdue": 1, "platelets_critical": 1}
    assert outcomes["median_hours_to_acknowledge"] == 2.0
    assert outcomes["not_normalizing_patients"] == 1
    assert outcomes["not_normalizing_by_kind"][0] == {
        "kind": "hemoglobin_not_normalized",
        "label": "Hemoglobin fails to normalize (A-H4)",
        "patients": 1,
    }

    delivery = body["delivery"]
    assert (delivery["reminders_sent"], delivery["reminders_failed"], delivery["opted_out_patients"]) == (1, 1, 1)
    assert delivery["oldest_undelivered_age_hours"] == 3.0
    assert delivery["outbox"]["pending"] == 1


def test_a_neurological_patients_dose_is_on_time_only_within_the_shorter_grace(
    clinic: Any, admin_api: Any, clock: Any
) -> None:
    """RULES S-4: a dose given 10 days late is within the 14-day grace, not within a neurological patient's 7."""
    neurological = RegimenFactory(patient=PatientFactory(clinic=clinic, neurological_involvement=True))
    other = RegimenFactory(patient=PatientFactory(clinic=clinic))
    for regimen in (neurological, other):
        given(regimen, -30, -20)
    adherence = admin_api.get("/api/dashboard/").json()["adherence"]
    assert (adherence["grace_days"], adherence["grace_days_neurological"]) == (14, 7)
    assert (adherence["due"], adherence["on_time"]) == (2, 1)


def test_it_matches_counts_made_from_the_rows(clinic_data: Any, clinic: Any, admin_api: Any) -> None:
    from notifications.models import Alert
    from regimens.models import ScheduledDose

    body = admin_api.get("/api/dashboard/").json()
    planned = ScheduledDose.objects.filter(patient__clinic=clinic, status=DoseStatus.PLANNED)
    assert body["work"]["overdue"] == planned.filter(due_date__lt=T0).count()
    assert body["work"]["due_next_8_weeks"] == planned.filter(due_date__gte=T0, due_date__lt=day(56)).count()
    assert body["outcomes"]["open_alerts"] == Alert.objects.filter(patient__clinic=clinic, status="open").count()
    # The overdue figure is the API's own overdue list for the clinic.
    listed = admin_api.get(f"/api/doses/?clinic={clinic.id}&overdue=true&status=planned").json()
    assert listed["count"] == body["work"]["overdue"]


def test_it_takes_a_period(clinic_data: Any, admin_api: Any) -> None:
    body = admin_api.get("/api/dashboard/?from=2026-12-01&to=2026-12-31").json()
    assert [m["month"] for m in body["adherence"]["months"]] == ["2026-12"]
    assert body["adherence"]["due"] == 3
    assert body["outcomes"]["acknowledged_in_period"] == 1


def test_it_names_the_field_of_a_bad_period(clinic_data: Any, admin_api: Any) -> None:
    response = admin_api.get("/api/dashboard/?from=2027-01-02&to=2027-01-01")
    assert response.status_code == 400
    assert "to" in response.json()
    response = admin_api.get("/api/dashboard/?from=someday")
    assert response.status_code == 400 and "from" in response.json()
    response = admin_api.get("/api/dashboard/?from=2020-01-01&to=2027-01-01")
    assert response.status_code == 400 and "from" in response.json()


def test_it_is_for_the_clinic_admins_of_that_clinic(clinic: Any, other_clinic: Any, nurse: Any) -> None:
    assert client_for(nurse).get("/api/dashboard/").status_code == 403
    admin = staff_user(clinic, Role.ADMIN, username="admin-here")
    assert client_for(admin).get(f"/api/dashboard/?clinic={other_clinic.id}").status_code == 404
    staff_user(other_clinic, Role.NURSE, username="admin-here")  # a nurse there: still not their dashboard
    assert client_for(admin).get(f"/api/dashboard/?clinic={other_clinic.id}").status_code == 403
    assert client_for(admin).get(f"/api/dashboard/?clinic={clinic.id}").status_code == 200


def test_the_page_shows_the_api_numbers(clinic_data: Any, clinic_admin: Any, admin_api: Any) -> None:
    body = admin_api.get("/api/dashboard/").json()
    browser = Client()
    browser.force_login(clinic_admin)
    html = browser.get("/dashboard/").content.decode()
    assert f'data-figure="overdue">{body["work"]["overdue"]}<' in html
    assert f'data-figure="due_this_week">{body["work"]["due_this_week"]}<' in html
    assert f'data-figure="open_alerts">{body["outcomes"]["open_alerts"]}<' in html
    assert f'data-figure="reminders_failed">{body["delivery"]["reminders_failed"]}<' in html
    assert 'data-figure="on_time_share">14%<' in html
    assert "<svg" in html and "<table" in html  # charts with their text tables
    assert "/api/doses/?clinic=" in html or "?clinic=" in html  # figures link to their lists


def test_the_page_is_for_clinic_admins(clinic: Any, nurse: Any) -> None:
    browser = Client()
    browser.force_login(nurse)
    assert browser.get("/dashboard/").status_code == 403
    assert Client().get("/dashboard/").status_code == 302  # to sign in


def _grow(clinic: Any, patients: int) -> None:
    for _ in range(patients):
        regimen = RegimenFactory(patient=PatientFactory(clinic=clinic))
        dose(regimen, -5)
        given(regimen, -40, -39)
        dose(regimen, 7)
        AlertFactory(patient=regimen.patient, opened_at=noon(day(-3)), acknowledged_at=noon(day(-2)))
        DeliveryFactory(patient=regimen.patient, status=DeliveryStatus.SENT, sent_at=noon(day(-1)))


def _grow_in_bulk(clinic: Any, patients: int) -> None:
    """`_grow`'s rows for many patients, written with bulk_create (2,000 patients in seconds)."""
    people = Patient.objects.bulk_create([PatientFactory.build(clinic=clinic) for _ in range(patients)])
    # One protocol and snapshot for all (the factory would read and serialise the protocol once per regimen).
    shared = RegimenFactory.build(patient=people[0])
    regimens = Regimen.objects.bulk_create(
        [
            RegimenFactory.build(patient=person, protocol=shared.protocol, protocol_snapshot=shared.protocol_snapshot)
            for person in people
        ]
    )
    doses = []
    for regimen in regimens:
        for sequence, fields in enumerate(
            [
                {"due_date": day(-40), "status": DoseStatus.GIVEN, "administered_at": noon(day(-39))},
                {"due_date": day(-5)},
                {"due_date": day(7)},
            ],
            start=1,
        ):
            row = ScheduledDoseFactory.build(regimen=regimen, sequence=sequence, **fields)
            row.clinic_id = clinic.id  # save() fills it; bulk_create does not
            doses.append(row)
    ScheduledDose.objects.bulk_create(doses)
    Alert.objects.bulk_create(
        [AlertFactory.build(patient=p, opened_at=noon(day(-3)), acknowledged_at=noon(day(-2))) for p in people]
    )
    Delivery.objects.bulk_create(
        [DeliveryFactory.build(patient=p, status=DeliveryStatus.SENT, sent_at=noon(day(-1))) for p in people]
    )


# The dashboard's queries, pinned so that they cannot silently grow: the aggregates of the clinic's rows (the open
# alerts by severity and by kind in one), 2 of them queue_health's (the open rows, the last day's by channel), the
# time to normalization (one statement run without JIT: SET LOCAL, here inside a savepoint) and the user's
# memberships; the page adds the session, the user and the middleware's clinics.
DASHBOARD_API_QUERIES = 18
DASHBOARD_PAGE_QUERIES = 22


def test_its_query_count_is_the_same_for_one_patient_and_for_two_thousand(
    clinic: Any, clinic_admin: Any, clock: Any, django_assert_num_queries: Any
) -> None:
    api = client_for(clinic_admin)
    browser = Client()
    browser.force_login(clinic_admin)
    api.get("/api/dashboard/")  # a client's first request also loads what it then keeps (its user's clinics)
    for patients, grow in ((1, _grow), (2000, _grow_in_bulk)):
        grow(clinic, patients if patients == 1 else patients - 1)
        assert ScheduledDose.objects.filter(clinic=clinic).count() == 3 * patients
        with django_assert_num_queries(DASHBOARD_API_QUERIES):
            response = api.get("/api/dashboard/")
        assert response.status_code == 200
        assert response.json()["work"]["overdue"] == patients  # every patient's day -5 dose is counted
        with django_assert_num_queries(DASHBOARD_PAGE_QUERIES):
            assert browser.get("/dashboard/").status_code == 200


def test_the_dashboard_reads_clinic_days(clinic: Any, clinic_admin: Any) -> None:
    """At 23:30 UTC on 3 January in Auckland it is already 4 January: the clinic's today."""
    clinic.timezone = "Pacific/Auckland"
    clinic.save()
    from monitoring.dashboard import dashboard_for

    body = dashboard_for(clinic=clinic, now=datetime(2027, 1, 3, 23, 30, tzinfo=UTC))
    assert body["today"] == "2027-01-04"


def test_the_page_names_the_field_of_a_bad_period(clinic_data: Any, clinic_admin: Any) -> None:
    browser = Client()
    browser.force_login(clinic_admin)
    html = browser.get("/dashboard/?from=2027-01-02&to=2027-01-01").content.decode()
    assert "There is a problem" in html and "To: must be on or after" in html
    assert 'data-figure="overdue">4<' in html  # the default period's figures still show


def test_a_period_of_one_bound_is_checked_against_its_default_other_end(clinic_data: Any, admin_api: Any) -> None:
    # `from` alone runs to today (2027-01-04), `to` alone from the first of the month five months back
    # (2026-08-01): the two-year limit and the order hold for the period as it would be read.
    response = admin_api.get("/api/dashboard/?from=2020-01-01")
    assert response.status_code == 400
    assert response.json() == {"from": ["the period may be at most 731 days long (without a last day it ends today)."]}
    response = admin_api.get("/api/dashboard/?to=2199-12-31")
    assert response.status_code == 400
    assert list(response.json()) == ["to"]
    response = admin_api.get("/api/dashboard/?to=2026-07-31")  # before the default first day
    assert response.status_code == 400
    assert list(response.json()) == ["to"]
    response = admin_api.get("/api/dashboard/?from=2027-01-05")  # after today, the default last day
    assert response.status_code == 400
    assert list(response.json()) == ["from"]
    # At the limits: two years back to today, and a `to` on the default first day.
    assert admin_api.get("/api/dashboard/?from=2025-01-03").status_code == 200
    body = admin_api.get("/api/dashboard/?to=2026-08-01").json()
    assert body["period"] == {"from": "2026-08-01", "to": "2026-08-01"}


def test_the_page_names_the_field_of_a_one_sided_bad_period(clinic_data: Any, clinic_admin: Any) -> None:
    browser = Client()
    browser.force_login(clinic_admin)
    response = browser.get("/dashboard/?from=2020-01-01")
    html = response.content.decode()
    assert response.status_code == 200
    assert "There is a problem" in html and "From: the period may be at most 731 days long" in html
    assert '<details class="nhsuk-details app-no-print" open>' in html  # the form with its error, unfolded
    assert 'data-figure="overdue">4<' in html  # the default period's figures still show


def test_the_page_takes_a_period_without_a_clinic(clinic_data: Any, clinic_admin: Any) -> None:
    # A bookmarked or typed address with the period alone is the admin's first clinic, as in the API.
    browser = Client()
    browser.force_login(clinic_admin)
    response = browser.get("/dashboard/?from=2026-12-01&to=2026-12-31")
    assert response.status_code == 200
    assert 'value="2026-12-01"' in response.content.decode()
