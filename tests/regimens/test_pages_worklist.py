"""The nurse's worklist `/` (regimens/worklist_pages.py): today's and overdue doses of the user's clinics, the
point-of-care warnings before the injection, rechecks and alerts, and recording a dose given or not given
in place (htmx) or by a plain form post, through the same services as the API."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.test import Client

from patients.models import LabResult, PatientFact, Role
from regimens import services
from regimens.models import DoseStatus, Protocol, Regimen, ScheduledDose
from regimens.selectors import dose_pending_warnings, doses_pending_warnings
from tests.conftest import client_for
from tests.factories import AlertFactory, LabRecheckFactory, PatientFactory, UserFactory, staff_user

pytestmark = pytest.mark.django_db

START = date(2027, 1, 4)  # a Monday: loading doses planned on 4, 6, 8, 11, 13 and 15 January
MONDAY = "2027-01-11 09:00:00+00:00"  # a week later: three doses overdue and one due today
HTMX = {"HTTP_HX_REQUEST": "true"}


def start(patient: Any, code: str = "hydroxo-uk-standard", on: date = START, **extra: Any) -> Regimen:
    with time_machine.travel("2027-01-04 08:00:00+00:00", tick=False):
        return services.regimen_start(patient=patient, protocol=Protocol.objects.get(code=code), start_date=on, **extra)


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def dose(regimen: Regimen, sequence: int = 1, phase: str = "loading") -> ScheduledDose:
    return regimen.doses.get(phase=phase, sequence=sequence, status__in=["planned", "given"])


def platelets(patient: Any, value: str, collected_at: datetime) -> None:
    LabResult.objects.create(
        patient=patient,
        analyte="platelets",
        loinc="777-3",
        value_as_entered=value,
        unit_as_entered="10^9/L",
        value_canonical=Decimal(value),
        unit_canonical="10^9/L",
        collected_at=collected_at,
    )


def given_form(d: ScheduledDose, **fields: Any) -> dict[str, Any]:
    body = {
        "administered_at": "2027-01-11T08:30",
        "lot_number": "HX2291",
        "expiry_date": "2028-03-31",
        "site": "left deltoid",
        "route": "IM",
    }
    body.update(fields)
    return {f"dose{d.pk}-{k}": v for k, v in body.items() if v is not None}


def not_given_form(d: ScheduledDose, reason: str = "did_not_attend", note: str = "") -> dict[str, str]:
    return {f"dose{d.pk}-reason": reason, f"dose{d.pk}-note": note}


@pytest.fixture
def monday() -> Any:
    with time_machine.travel(MONDAY, tick=False) as traveller:
        yield traveller


# --- Who sees it ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.NURSE, Role.CLINICIAN, Role.ADMIN])
def test_every_staff_role_sees_the_worklist(clinic: Any, role: str, monday: Any) -> None:
    response = signed_in(staff_user(clinic, role, username="sam")).get("/")
    assert response.status_code == 200
    assert "<h1>Today's worklist</h1>" in response.content.decode()


def test_a_visitor_is_sent_to_sign_in_and_a_user_of_no_clinic_is_refused(db: Any) -> None:
    response = Client().get("/")
    assert (response.status_code, response["Location"]) == (302, "/login/?next=/")
    assert signed_in(UserFactory()).get("/").status_code == 403


# --- What it lists --------------------------------------------------------------------------------


def test_it_lists_todays_and_overdue_doses_with_what_the_nurse_needs(patient: Any, nurse: Any) -> None:
    regimen = start(patient)
    with time_machine.travel(MONDAY, tick=False):
        body = signed_in(nurse).get("/").content.decode()

    # One row for the regimen: its first missed dose, the one to give now, with the two missed since and
    # Monday's; not Wednesday's.
    assert "Doses due today and overdue (1)" in body
    assert "and 3 more doses due" in body
    assert f'href="/patients/{patient.pk}/">{patient.family_name}, {patient.given_name}</a>' in body
    assert patient.mrn in body
    assert "Hydroxocobalamin, UK standard" in body and "Loading dose 1" in body
    assert "7 days overdue" in body
    assert f'id="dose-{dose(regimen, 1).pk}"' in body and f'id="dose-{dose(regimen, 2).pk}"' not in body


def test_a_nurse_of_two_clinics_sees_both_and_can_pick_one(clinic: Any, other_clinic: Any, monday: Any) -> None:
    nurse = staff_user(clinic, Role.NURSE, username="sam")
    nurse.memberships.create(clinic=other_clinic, role=Role.NURSE)
    start(PatientFactory(clinic=clinic, family_name="Riverside"))
    start(PatientFactory(clinic=other_clinic, family_name="Hilltop"))
    client = signed_in(nurse)
    both = client.get("/").content.decode()
    assert "Riverside," in both and "Hilltop," in both
    assert 'id="filter-clinic"' in both
    one = client.get(f"/?clinic={other_clinic.pk}").content.decode()
    assert "Hilltop," in one and "Riverside," not in one


def test_another_clinics_doses_are_not_listed_and_its_dose_is_a_404(
    patient: Any, other_patient: Any, nurse: Any, monday: Any
) -> None:
    start(patient)
    theirs = start(other_patient)
    client = signed_in(nurse)
    body = client.get("/").content.decode()
    assert other_patient.mrn not in body
    first = dose(theirs)
    assert client.get(f"/doses/{first.pk}/given/").status_code == 404
    assert client.post(f"/doses/{first.pk}/given/", given_form(first)).status_code == 404
    assert client.post(f"/doses/{first.pk}/not-given/", not_given_form(first)).status_code == 404
    assert dose(theirs).status == DoseStatus.PLANNED
    assert client.get(f"/?clinic={other_patient.clinic_id}").status_code == 404


def test_the_dashboards_overdue_link_lists_only_the_doses_overdue(patient: Any, nurse: Any) -> None:
    start(patient, on=date(2027, 1, 8))  # Friday: the first dose is overdue on Monday, the second due then
    with time_machine.travel(MONDAY, tick=False):
        client = signed_in(nurse)
        everything = client.get("/").content.decode()
        overdue = client.get(f"/?clinic={patient.clinic_id}&status=planned&overdue=true").content.decode()
        today_only = client.get("/?route=IM")
    assert "Doses due today and overdue (1)" in everything and "and 1 more dose due" in everything
    assert "Doses overdue (1)" in overdue and "3 days overdue" in overdue
    assert "more dose due" not in overdue  # Monday's dose is not overdue
    assert 'name="overdue" value="true"' in overdue  # the filters keep it
    assert today_only.status_code == 200


def test_home_doses_are_hidden_until_asked_for(clinic: Any, nurse: Any) -> None:
    oral = PatientFactory(clinic=clinic, family_name="Oralhome")
    start(
        oral,
        code="oral-high-dose",
        acknowledge=["oral_first_line_caution"],
        override_reason="absorption intact; patient prefers tablets",
    )
    with time_machine.travel(MONDAY, tick=False):
        client = signed_in(nurse)
        hidden = client.get("/").content.decode()
        shown = client.get("/?home=1").content.decode()
    assert "Oralhome" not in hidden
    assert "taken at home are hidden" in hidden
    assert "Oralhome" in shown and "(at home)" in shown


def test_the_route_filter_keeps_one_route_and_a_bad_one_is_named(patient: Any, nurse: Any, monday: Any) -> None:
    start(patient)
    client = signed_in(nurse)
    assert "Doses due today and overdue (0)" in client.get("/?route=SC").content.decode()
    assert "Doses due today and overdue (1)" in client.get("/?route=IM").content.decode()
    response = client.get("/?route=XX")
    assert response.status_code == 400
    assert "There is a problem" in response.content.decode() and "route" in response.content.decode()


def test_a_low_platelet_count_shows_s2_before_the_injection(patient: Any, nurse: Any) -> None:
    start(patient)
    platelets(patient, "45", datetime(2027, 1, 9, 9, tzinfo=UTC))
    with time_machine.travel(MONDAY, tick=False):
        body = signed_in(nurse).get("/").content.decode()
    assert "S-2" in body and "platelet count is 45" in body


def test_rechecks_due_and_open_alerts_are_on_the_list(patient: Any, nurse: Any, monday: Any) -> None:
    regimen = start(patient)
    LabRecheckFactory(regimen=regimen, day=7, window=3, description="Hemoglobin, day 7")
    AlertFactory(patient=patient, severity="critical", kind="platelets_low", rule_id="A-P3")
    AlertFactory(patient=patient)
    AlertFactory(patient=PatientFactory())  # another clinic's

    body = signed_in(nurse).get("/").content.decode()

    assert "Lab rechecks due (1)" in body and "Hemoglobin, day 7" in body
    assert "2 open alerts" in body
    assert body.index("1 critical") < body.index("1 high")
    assert 'href="/alerts/"' in body


# --- Recording in place ---------------------------------------------------------------------------


def test_the_nurse_records_a_dose_given_in_place_as_the_api_would(clinic: Any, nurse: Any) -> None:
    page_regimen = start(PatientFactory(clinic=clinic))
    api_regimen = start(PatientFactory(clinic=clinic))
    with time_machine.travel(MONDAY, tick=False):
        client = signed_in(nurse)
        first = dose(page_regimen)
        form = client.get(f"/doses/{first.pk}/given/", **HTMX)
        assert form.status_code == 200
        assert f'<tbody class="nhsuk-table__body" id="dose-{first.pk}">' in form.content.decode()
        assert "<html" not in form.content.decode()  # only the dose's rows

        response = client.post(f"/doses/{first.pk}/given/", given_form(first), **HTMX)

        api = client_for(nurse).post(
            f"/api/doses/{dose(api_regimen).pk}/administer/",
            {
                "administered_at": "2027-01-11T08:30:00+00:00",
                "lot_number": "HX2291",
                "expiry_date": "2028-03-31",
                "site": "left deltoid",
                "route": "IM",
            },
            format="json",
        )
    assert api.status_code == 200
    assert response.status_code == 200
    row = response.content.decode()
    assert row.startswith(f'<tbody class="nhsuk-table__body" id="dose-{first.pk}">')
    assert "recorded as given" in row and "HX2291" in row

    recorded, twin = dose(page_regimen), dose(api_regimen)
    assert recorded.status == twin.status == DoseStatus.GIVEN
    fields = ["administered_at", "lot_number", "expiry_date", "site", "given_route", "administered_by_id"]
    assert [getattr(recorded, f) for f in fields] == [getattr(twin, f) for f in fields]
    # The same re-plan: the later doses move from the actual date alike.
    planned = [(d.sequence, d.due_date) for d in page_regimen.doses.filter(status="planned").order_by("sequence")]
    twin_planned = [(d.sequence, d.due_date) for d in api_regimen.doses.filter(status="planned").order_by("sequence")]
    assert planned == twin_planned


def test_without_javascript_the_form_is_a_page_that_posts_and_returns_to_the_list(
    patient: Any, nurse: Any, monday: Any
) -> None:
    regimen = start(patient)
    client = signed_in(nurse)
    first = dose(regimen)
    page = client.get(f"/doses/{first.pk}/given/")
    assert page.status_code == 200 and "<html" in page.content.decode()
    assert 'value="2027-01-11T09:00"' in page.content.decode()  # now, in the clinic's zone

    response = client.post(f"/doses/{first.pk}/given/", given_form(first), follow=True)
    assert response.redirect_chain == [("/", 302)]
    assert "dose recorded as given" in response.content.decode()
    assert dose(regimen).status == DoseStatus.GIVEN


def test_cancel_puts_the_rows_back_and_without_javascript_returns_to_the_list(
    patient: Any, nurse: Any, monday: Any
) -> None:
    first = dose(start(patient))
    client = signed_in(nurse)
    rows = client.get(f"/doses/{first.pk}/", **HTMX).content.decode()
    assert rows.startswith(f'<tbody class="nhsuk-table__body" id="dose-{first.pk}">') and "<form" not in rows
    assert client.get(f"/doses/{first.pk}/")["Location"] == "/"


def test_the_last_lot_and_expiry_are_offered_for_the_next_dose(clinic: Any, nurse: Any, monday: Any) -> None:
    one, two = start(PatientFactory(clinic=clinic)), start(PatientFactory(clinic=clinic))
    client = signed_in(nurse)
    client.post(f"/doses/{dose(one).pk}/given/", given_form(dose(one), lot_number="LOT-77"), **HTMX)
    body = client.get(f"/doses/{dose(two).pk}/given/", **HTMX).content.decode()
    assert 'value="LOT-77"' in body and 'value="2028-03-31"' in body


def test_a_warning_blocks_the_dose_until_it_is_acknowledged(patient: Any, nurse: Any) -> None:
    regimen = start(patient)
    platelets(patient, "45", datetime(2027, 1, 9, 9, tzinfo=UTC))
    with time_machine.travel(MONDAY, tick=False):
        client = signed_in(nurse)
        first = dose(regimen)
        form = client.get(f"/doses/{first.pk}/given/", **HTMX).content.decode()
        assert "Before you give this dose" in form and 'value="im_injection_low_platelets"' in form

        refused = client.post(f"/doses/{first.pk}/given/", given_form(first), **HTMX)
        assert refused.status_code == 400
        assert "Tick each warning to confirm you have read it (S-2)" in refused.content.decode()
        assert dose(regimen).status == DoseStatus.PLANNED

        done = client.post(
            f"/doses/{first.pk}/given/", given_form(first, acknowledge="im_injection_low_platelets"), **HTMX
        )
    assert done.status_code == 200
    assert dose(regimen).acknowledged_warnings == ["im_injection_low_platelets"]


def test_a_hard_stop_needs_a_reason_named_on_its_field(patient: Any, nurse: Any) -> None:
    regimen = start(patient)
    PatientFact.objects.create(patient=patient, kind="cobalamin_allergy", note="urticaria")
    with time_machine.travel(MONDAY, tick=False):
        client = signed_in(nurse)
        first = dose(regimen)
        refused = client.post(f"/doses/{first.pk}/given/", given_form(first, acknowledge="cobalamin_allergy"), **HTMX)
        body = refused.content.decode()
        assert refused.status_code == 400
        assert "Reason to override a hard stop" in body and "needs a reason to override" in body
        assert dose(regimen).status == DoseStatus.PLANNED
        done = client.post(
            f"/doses/{first.pk}/given/",
            given_form(first, acknowledge="cobalamin_allergy", override_reason="test dose tolerated"),
            **HTMX,
        )
    assert done.status_code == 200 and dose(regimen).status == DoseStatus.GIVEN


@pytest.mark.parametrize(
    ("fields", "label", "reason"),
    [
        ({"administered_at": "2027-01-12T09:30"}, "Given at", "cannot be in the future"),
        ({"administered_at": ""}, "Given at", "This field is required"),
        ({"expiry_date": "2027-01-01"}, "Expiry date", "had expired"),
        ({"route": "IX"}, "Route", "Select a valid choice"),
        ({"site": "ear"}, "Injection site", "Select a valid choice"),
    ],
)
def test_bad_input_names_the_field_and_records_nothing(
    patient: Any, nurse: Any, monday: Any, fields: dict[str, str], label: str, reason: str
) -> None:
    regimen = start(patient)
    first = dose(regimen)
    response = signed_in(nurse).post(f"/doses/{first.pk}/given/", given_form(first, **fields), **HTMX)
    body = response.content.decode()
    assert response.status_code == 400
    assert f"{label}: {reason}" in body or (label in body and reason in body)
    assert reason in body
    assert dose(regimen).status == DoseStatus.PLANNED


def test_a_later_dose_first_is_refused_with_the_reason(patient: Any, nurse: Any, monday: Any) -> None:
    regimen = start(patient)
    second = dose(regimen, 2)
    response = signed_in(nurse).post(f"/doses/{second.pk}/given/", given_form(second), **HTMX)
    assert response.status_code == 409
    assert "loading dose 1" in response.content.decode() and "still planned" in response.content.decode()


def test_the_nurse_records_a_dose_not_given_with_a_coded_reason_and_a_replacement_is_planned(
    patient: Any, nurse: Any, monday: Any
) -> None:
    regimen = start(patient)
    first = dose(regimen)
    response = signed_in(nurse).post(
        f"/doses/{first.pk}/not-given/", not_given_form(first, "did_not_attend", "phoned, unwell"), **HTMX
    )
    assert response.status_code == 200 and "recorded as not given" in response.content.decode()
    first.refresh_from_db()
    assert (first.status, first.not_given_reason) == (DoseStatus.NOT_GIVEN, "Did not attend: phoned, unwell")
    assert regimen.doses.filter(phase="loading", sequence=1, status="planned").exists()


def test_not_given_for_another_reason_needs_the_note(patient: Any, nurse: Any, monday: Any) -> None:
    regimen = start(patient)
    first = dose(regimen)
    response = signed_in(nurse).post(f"/doses/{first.pk}/not-given/", not_given_form(first, "other"), **HTMX)
    assert response.status_code == 400
    assert "Note" in response.content.decode() and "Say why the dose was not given" in response.content.decode()
    missing = signed_in(nurse).post(f"/doses/{first.pk}/not-given/", {}, **HTMX)
    assert missing.status_code == 400 and "This field is required" in missing.content.decode()
    assert dose(regimen).status == DoseStatus.PLANNED


# --- Exports and cost ------------------------------------------------------------------------------


def test_the_worklist_downloads_as_csv_with_formulas_neutralised(clinic: Any, nurse: Any) -> None:
    start(PatientFactory(clinic=clinic, family_name="=HYPERLINK(1)", given_name="Ann"))
    with time_machine.travel(MONDAY, tick=False):
        response = signed_in(nurse).get("/worklist.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["due_date", "days_overdue", "clinic"]
    assert len(rows) == 2
    assert rows[1][0:2] == ["2027-01-04", "7"] and rows[1][3] == "'=HYPERLINK(1)"
    assert rows[1][rows[0].index("more_due")] == "3"


@pytest.mark.parametrize("patients", [1, 6])
def test_the_worklist_costs_the_same_number_of_queries_however_many_rows(
    clinic: Any, nurse: Any, patients: int, django_assert_max_num_queries: Any
) -> None:
    for _ in range(patients):
        p = PatientFactory(clinic=clinic)
        regimen = start(p)
        LabRecheckFactory(regimen=regimen, day=7, window=3)
        AlertFactory(patient=p)
        platelets(p, "45", datetime(2027, 1, 9, 9, tzinfo=UTC))
        PatientFact.objects.create(patient=p, kind="cobalamin_allergy", note="urticaria")
    with time_machine.travel(MONDAY, tick=False):
        client = signed_in(nurse)
        with django_assert_max_num_queries(12):
            body = client.get("/").content.decode()
    assert f"Doses due today and overdue ({patients})" in body


def test_the_listed_warnings_are_the_ones_recording_the_dose_asks_for(clinic: Any) -> None:
    """The worklist reads the warnings of many doses at once; they must be the single-dose ones."""
    low, allergic, fine, known = (PatientFactory(clinic=clinic) for _ in range(4))
    regimens = [start(p) for p in (low, allergic, fine)]
    # An allergy known and acknowledged when the regimen started is not asked again at each dose (S-11).
    PatientFact.objects.create(patient=known, kind="cobalamin_allergy", note="rash")
    regimens.append(start(known, acknowledge=["cobalamin_allergy"], override_reason="test dose tolerated"))
    platelets(low, "45", datetime(2027, 1, 9, 9, tzinfo=UTC))
    platelets(fine, "45", datetime(2027, 1, 1, 9, tzinfo=UTC))
    platelets(fine, "250", datetime(2027, 1, 9, 9, tzinfo=UTC))  # the latest count is normal
    PatientFact.objects.create(patient=allergic, kind="cobalamin_allergy", note="urticaria")
    PatientFact.objects.create(patient=fine, kind="cobalamin_allergy", end_date=date(2027, 1, 5))  # ended
    with time_machine.travel(MONDAY, tick=False):
        doses = [d for r in regimens for d in r.doses.filter(status="planned").select_related("patient")]
        many = doses_pending_warnings(doses)
        one = {d.pk: dose_pending_warnings(d) for d in doses}
    assert many == one
    assert all(many[d.pk] == [] for d in regimens[3].doses.filter(status="planned"))
    assert {w.code for ws in many.values() for w in ws} == {"im_injection_low_platelets", "cobalamin_allergy"}
