"""The audit log (GET /api/audit/, /audit/ and its CSV): every change to the clinic's clinical data and
every sign-in and staff change, who, when, what changed, which record and patient; clinic-scoped."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from patients.models import ClinicMembership, Role
from regimens.models import DoseStatus
from tests.conftest import client_for
from tests.factories import PatientFactory, RegimenFactory, ScheduledDoseFactory, staff_user
from tests.timeline import T0, noon

pytestmark = pytest.mark.django_db


@pytest.fixture
def events(clinic: Any, other_clinic: Any, nurse: Any, clinic_admin: Any, patient: Any, other_patient: Any) -> Any:
    """A nurse changes a patient's phone through the API, signs in, and someone fails to sign in as
    them; the admin invites a clinician; another clinic's patient changes too."""
    assert (
        client_for(nurse).patch(f"/api/patients/{patient.id}/", {"phone": "+447700900999"}, format="json").status_code
        == 200
    )
    Client().login(username="nurse", password="pw-for-tests")
    Client().login(username="nurse", password="wrong")
    staff = client_for(clinic_admin).post(
        "/api/staff/", {"email": "cl@example.org", "role": "clinician"}, format="json"
    )
    assert staff.status_code == 201
    other_patient.phone = "+447700900000"
    other_patient.save()
    return {"patient": patient}


def test_it_shows_who_changed_what_on_which_patient(events: Any, admin_api: Any, nurse: Any, patient: Any) -> None:
    body = admin_api.get("/api/audit/").json()
    change = next(e for e in body["results"] if e["kind"] == "patient" and e["action"] == "changed")
    assert change["actor"] == {"id": nurse.id, "username": "nurse"}
    assert change["patient"]["id"] == patient.id and change["patient"]["mrn"] == patient.mrn
    assert change["changes"] == [{"field": "phone", "from": "+447700900123", "to": "+447700900999"}]
    assert change["record"] == {"model": "patient", "id": patient.id, "label": f"Patient #{patient.id}"}
    actions = [e["action"] for e in body["results"]]
    assert "signed_in" in actions and "sign_in_failed" in actions and "staff_invited" in actions
    invited = next(e for e in body["results"] if e["action"] == "staff_invited")
    assert invited["record"]["label"] == "cl@example.org"
    assert {"field": "role", "from": None, "to": "clinician"} in invited["changes"]
    # Another clinic's changes never show.
    assert all(e["patient"] is None or e["patient"]["id"] == patient.id for e in body["results"])
    assert body["results"] == sorted(body["results"], key=lambda e: e["at"], reverse=True)


def test_it_filters_by_person_patient_kind_and_date(events: Any, admin_api: Any, nurse: Any, patient: Any) -> None:
    mine = admin_api.get(f"/api/audit/?person={nurse.id}").json()["results"]
    assert mine and all(e["actor"] is None or e["actor"]["id"] == nurse.id for e in mine)
    assert {e["action"] for e in mine} >= {"changed", "signed_in", "sign_in_failed"}
    theirs = admin_api.get(f"/api/audit/?patient={patient.id}").json()["results"]
    assert theirs and all(e["patient"]["id"] == patient.id for e in theirs)
    signins = admin_api.get("/api/audit/?kind=sign_in").json()["results"]
    assert {e["action"] for e in signins} == {"signed_in", "sign_in_failed"}
    both = admin_api.get("/api/audit/?kind=sign_in&kind=staff").json()["results"]
    assert {e["kind"] for e in both} == {"sign_in", "staff"}
    assert admin_api.get("/api/audit/?to=2000-01-01").json()["count"] == 0
    assert admin_api.get("/api/audit/?kind=everything").json().keys() == {"kind"}
    assert admin_api.get("/api/audit/?from=2027-01-02&to=2027-01-01").json().keys() == {"to"}


def test_it_pages(events: Any, admin_api: Any) -> None:
    total = admin_api.get("/api/audit/").json()["count"]
    first = admin_api.get("/api/audit/?page_size=2").json()
    assert first["count"] == total and len(first["results"]) == 2 and first["next"] == 2
    second = admin_api.get("/api/audit/?page_size=2&page=2").json()
    assert {e["id"] for e in first["results"]}.isdisjoint(e["id"] for e in second["results"])


def test_a_dose_record_shows_its_field_changes(clinic: Any, admin_api: Any) -> None:
    dose = ScheduledDoseFactory(regimen=RegimenFactory(patient=PatientFactory(clinic=clinic)), due_date=T0)
    dose.status = DoseStatus.GIVEN
    dose.administered_at = noon(T0)
    dose.save()
    given = admin_api.get("/api/audit/?kind=dose").json()["results"][0]
    assert given["action"] == "changed" and given["actor"] is None  # written outside a request: the system
    assert {c["field"]: c["to"] for c in given["changes"]} == {
        "status": "given",
        "administered_at": noon(T0).isoformat(),
    }


def test_it_is_for_the_clinic_admins_of_that_clinic(
    clinic: Any, other_clinic: Any, nurse_api: Any, admin_api: Any
) -> None:
    assert nurse_api.get("/api/audit/").status_code == 403
    assert admin_api.get(f"/api/audit/?clinic={other_clinic.id}").status_code == 404


def test_the_page_and_its_csv(events: Any, clinic_admin: Any, patient: Any) -> None:
    browser = Client()
    browser.force_login(clinic_admin)
    html = browser.get("/audit/").content.decode()
    assert "+447700900999" in html and patient.mrn in html and "Sign-in failed" in html
    assert browser.get("/audit/?kind=nothing").status_code == 200  # the error summary, not a crash
    assert "There is a problem" in browser.get("/audit/?kind=nothing").content.decode()
    response = browser.get(f"/audit/export/?patient_mrn={patient.mrn}")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["When", "Who", "Kind", "Action"]
    phone = next(r for r in rows[1:] if "phone" in r[-2])
    # The phone number starts with "+": neutralised, so a spreadsheet does not run it as a formula.
    assert "'+447700900999" not in phone[-2] and "+447700900999" in phone[-2]
    assert all(r[6] == patient.mrn for r in rows[1:])


def test_a_formula_in_a_cell_is_neutralised(clinic: Any, clinic_admin: Any) -> None:
    PatientFactory(clinic=clinic, family_name="=HYPERLINK(1)")
    browser = Client()
    browser.force_login(clinic_admin)
    body = browser.get("/audit/export/?kind=patient").content.decode("utf-8-sig")
    assert "'=HYPERLINK(1)" in body


@pytest.mark.parametrize("people", [1, 10])
def test_its_query_count_does_not_grow_with_rows(
    clinic: Any, clinic_admin: Any, people: int, django_assert_max_num_queries: Any
) -> None:
    import uuid

    from tests.factories import ReplanFactory

    batch = uuid.uuid4()
    for n in range(people):
        patient = PatientFactory(clinic=clinic)
        patient.phone = f"+4477009{n:05d}"
        patient.save()
        dose = ScheduledDoseFactory(regimen=RegimenFactory(patient=patient), due_date=T0 + timedelta(days=n))
        dose.status = DoseStatus.GIVEN
        dose.save()
        ClinicMembership.objects.get_or_create(user=staff_user(clinic, Role.NURSE), clinic=clinic)
        # A re-plan of its own and one row of a batch shared by every patient.
        ReplanFactory(regimen=dose.regimen)
        ReplanFactory(regimen=dose.regimen, batch=batch)
    api = client_for(clinic_admin)
    with django_assert_max_num_queries(14):
        assert api.get("/api/audit/").status_code == 200
    browser = Client()
    browser.force_login(clinic_admin)
    with django_assert_max_num_queries(19):  # re-plans: the page's first rows and their batch totals
        assert browser.get("/audit/").status_code == 200


def _start(patient: Any) -> Any:
    from regimens import services
    from regimens.models import Protocol
    from tracker.clock import patient_today

    return services.regimen_start(
        patient=patient,
        protocol=Protocol.objects.get(code="hydroxo-uk-standard"),
        start_date=patient_today(patient) + timedelta(days=1),
    )


def test_a_calendar_change_for_one_patient_is_one_event_naming_their_regimen(
    clinic: Any, clinic_admin: Any, admin_api: Any, patient: Any
) -> None:
    """The calendar change re-plans the patient's doses in bulk: the log shows one event with how many
    doses moved and why (regimens.Replan), not one history row per dose."""
    from regimens.models import Replan

    regimen = _start(patient)
    assert admin_api.post(f"/api/clinics/{clinic.pk}/calendar/", {"open_weekdays": [1, 2, 3]}).status_code == 200
    [replan] = Replan.objects.filter(regimen=regimen)
    events = admin_api.get("/api/audit/?kind=replan").json()
    assert events["count"] == 1
    [event] = events["results"]
    assert event["action"] == "replanned" and event["kind"] == "replan"
    assert event["actor"] == {"id": clinic_admin.id, "username": clinic_admin.username}
    assert event["patient"]["id"] == patient.id
    assert event["record"] == {"model": "regimen", "id": regimen.id, "label": f"Regimen #{regimen.id}"}
    assert event["reason"] == f"clinic calendar changed ({clinic.name})"
    counts = {c["field"]: c["to"] for c in event["changes"]}
    assert counts["doses moved"] == len(replan.moved) > 0
    assert counts["doses cancelled"] == 0
    assert counts["patients"] == counts["regimens"] == 1
    # It is in the whole log too, and filters by patient and person like every event.
    assert any(e["kind"] == "replan" for e in admin_api.get("/api/audit/").json()["results"])
    assert admin_api.get(f"/api/audit/?kind=replan&patient={patient.id}").json()["count"] == 1
    assert admin_api.get(f"/api/audit/?kind=replan&person={clinic_admin.id + 1000}").json()["count"] == 0


def test_a_calendar_change_moving_several_patients_doses_is_one_event_with_the_totals(
    clinic: Any, other_clinic: Any, clinic_admin: Any, admin_api: Any, patient: Any
) -> None:
    """Issue 14: a bulk re-plan is one event with the count and the cause, on the API, the page and the
    CSV; a patient filter finds the batch that touched the patient; another clinic's re-plans stay out."""
    from regimens.models import Replan

    patients = [patient, PatientFactory(clinic=clinic), PatientFactory(clinic=clinic)]
    for person in patients:
        _start(person)
    assert admin_api.post(f"/api/clinics/{clinic.pk}/calendar/", {"open_weekdays": [1, 2, 3]}).status_code == 200
    rows = list(Replan.objects.filter(patient__clinic=clinic))
    assert len(rows) == 3 and len({r.batch for r in rows}) == 1 and rows[0].batch is not None
    moved = sum(len(r.moved) for r in rows)
    cancelled = sum(len(r.cancelled) for r in rows)
    added = sum(r.added for r in rows)
    assert moved > 3

    body = admin_api.get("/api/audit/?kind=replan").json()
    assert body["count"] == 1
    [event] = body["results"]
    assert event["actor"] == {"id": clinic_admin.id, "username": clinic_admin.username}
    assert event["reason"] == f"clinic calendar changed ({clinic.name})"
    assert event["patient"] is None and event["record"] == {"model": "regimen", "id": None, "label": "3 regimens"}
    assert {c["field"]: c["to"] for c in event["changes"]} == {
        "patients": 3,
        "regimens": 3,
        "doses moved": moved,
        "doses cancelled": cancelled,
        "doses added": added,
    }
    # The whole log holds it once, and a patient filter shows the batch that touched the patient.
    assert [e["id"] for e in admin_api.get("/api/audit/?page_size=500").json()["results"]].count(event["id"]) == 1
    for person in patients:
        assert admin_api.get(f"/api/audit/?kind=replan&patient={person.id}").json()["results"] == [event]
    untouched = PatientFactory(clinic=clinic)
    assert admin_api.get(f"/api/audit/?kind=replan&patient={untouched.id}").json()["count"] == 0
    assert admin_api.get(f"/api/audit/?kind=replan&person={clinic_admin.id}").json()["count"] == 1

    browser = Client()
    browser.force_login(clinic_admin)
    html = browser.get("/audit/?kind=replan").content.decode()
    assert html.count("Re-planned") == 1 and f"clinic calendar changed ({clinic.name})" in html
    assert "3 regimens" in html and f"<strong>doses moved</strong>: {moved}<" in html
    assert "<strong>patients</strong>: 3<" in html
    csv_rows = list(csv.reader(io.StringIO(browser.get("/audit/export/?kind=replan").content.decode("utf-8-sig"))))
    assert len(csv_rows) == 2
    assert csv_rows[1][4] == "3 regimens" and csv_rows[1][5] == "" and csv_rows[1][6] == ""
    assert f"patients:  -> 3; regimens:  -> 3; doses moved:  -> {moved}" in csv_rows[1][-2]
    assert csv_rows[1][-1] == f"clinic calendar changed ({clinic.name})"


def test_a_batch_counts_only_the_clinics_own_rows(clinic: Any, other_clinic: Any, admin_api: Any) -> None:
    """Rows sharing a batch but belonging to another clinic's patients (the horizons sweep re-plans every
    clinic in one call) never show in this clinic's log or its totals."""
    import uuid

    from tests.factories import ReplanFactory

    batch = uuid.uuid4()
    mine = ReplanFactory(regimen=RegimenFactory(patient=PatientFactory(clinic=clinic)), batch=batch)
    ReplanFactory(regimen=RegimenFactory(patient=PatientFactory(clinic=other_clinic)), batch=batch)
    [event] = admin_api.get("/api/audit/?kind=replan").json()["results"]
    assert event["record"]["id"] == mine.regimen_id and event["patient"]["id"] == mine.patient_id
    assert {c["field"]: c["to"] for c in event["changes"]}["regimens"] == 1


def test_a_stop_shows_the_doses_it_cancelled_on_the_page_and_in_the_csv(
    clinic: Any, clinic_admin: Any, clinician_api: Any, patient: Any
) -> None:
    regimen = _start(patient)
    planned = regimen.doses.filter(status=DoseStatus.PLANNED).count()
    body = {"reason": "moved to another area", "acknowledge": ["lifelong_therapy_stopped"]}
    assert clinician_api.post(f"/api/regimens/{regimen.pk}/stop/", body, format="json").status_code == 200
    browser = Client()
    browser.force_login(clinic_admin)
    html = browser.get("/audit/?kind=replan").content.decode()
    assert "Re-planned" in html and "regimen stopped: moved to another area" in html
    assert f"<strong>doses cancelled</strong>: {planned}<" in html
    rows = list(csv.reader(io.StringIO(browser.get("/audit/export/?kind=replan").content.decode("utf-8-sig"))))
    assert len(rows) == 2 and rows[1][3] == "replanned" and f"doses cancelled:  -> {planned}" in rows[1][-2]
    assert rows[1][-1] == "regimen stopped: moved to another area"


def test_another_clinics_replans_never_show(other_clinic: Any, admin_api: Any) -> None:
    from tests.factories import ReplanFactory

    ReplanFactory(regimen=RegimenFactory(patient=PatientFactory(clinic=other_clinic)))
    assert admin_api.get("/api/audit/?kind=replan").json()["count"] == 0
