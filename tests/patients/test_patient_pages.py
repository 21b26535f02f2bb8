"""The patient pages: search `/patients/` (and its CSV), the patient page `/patients/{id}/` with the sections
regimens, notifications and monitoring contribute, the clinician's actions on it, and the injection card.

Every action writes what the API would (the same service), with the same roles and clinic boundary.
"""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from notifications.models import AlertStatus, Channel, Purpose, Severity
from notifications.patient_sections import PAST_ALERTS_SHOWN
from patients.models import FactKind, Role
from regimens.models import DoseStatus, Protocol, Regimen, RegimenStatus, ScheduledDose
from regimens.services import dose_record_administration, regimen_start
from tests.conftest import page_text
from tests.factories import (
    AlertFactory,
    DeliveryFactory,
    LabResultFactory,
    MedicationFactory,
    PatientFactFactory,
    PatientFactory,
    staff_user,
)
from tests.timeline import T0, day, noon, start_treatment

pytestmark = pytest.mark.django_db


def web(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response: Any) -> str:
    return response.content.decode()


# --- Search ------------------------------------------------------------------------------------------


def test_it_finds_patients_by_name_or_mrn_in_the_users_clinics_only(nurse: Any, clinic: Any, other_clinic: Any) -> None:
    PatientFactory(clinic=clinic, given_name="Ada", family_name="Lovelace", mrn="RH-100")
    PatientFactory(clinic=clinic, given_name="Grace", family_name="Hopper", mrn="RH-200")
    PatientFactory(clinic=other_clinic, given_name="Ada", family_name="Byron", mrn="HS-100")

    body = text(web(nurse).get("/patients/", {"q": "ada"}))
    assert "Lovelace, Ada" in body
    assert "Hopper" not in body
    assert "Byron" not in body  # another clinic's patient does not exist for this nurse

    body = text(web(nurse).get("/patients/", {"q": "RH-200"}))
    assert "Hopper, Grace" in body and "Lovelace" not in body


def test_the_list_is_paged(nurse: Any, clinic: Any) -> None:
    for n in range(30):
        PatientFactory(clinic=clinic, family_name=f"Family{n:02d}")
    first = text(web(nurse).get("/patients/"))
    assert "30 patients" in first
    assert "Family00" in first and "Family25" not in first
    assert "page=2" in first and "nhsuk-pagination" in first
    second = text(web(nurse).get("/patients/", {"page": 2}))
    assert "Family25" in second and "Family00" not in second


def test_the_csv_holds_the_search_result_with_formulas_neutralised(nurse: Any, clinic: Any, other_clinic: Any) -> None:
    PatientFactory(clinic=clinic, given_name="=HYPERLINK(1)", family_name="Smith", mrn="RH-1")
    PatientFactory(clinic=clinic, given_name="Bob", family_name="Jones", mrn="RH-2")
    PatientFactory(clinic=other_clinic, given_name="Eve", family_name="Smith", mrn="HS-1")

    response = web(nurse).get("/patients/export.csv", {"q": "smith"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Family name", "Given name", "MRN"]
    assert rows[1:] == [["Smith", "'=HYPERLINK(1)", "RH-1", "1960-05-17", "Female", "Riverside Haematology"]]


def test_pages_need_sign_in_and_a_clinic(clinic: Any, patient: Any, django_user_model: Any) -> None:
    response = Client().get(f"/patients/{patient.pk}/")
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")
    stranger = django_user_model.objects.create_user("stranger", password="pw-for-tests")  # noqa: S106
    assert web(stranger).get("/patients/").status_code == 403


@pytest.mark.parametrize("path", ["/patients/{id}/", "/patients/{id}/card/", "/patients/{id}/regimens/new/"])
def test_another_clinics_patient_is_a_404(clinician: Any, other_patient: Any, path: str) -> None:
    assert web(clinician).get(path.format(id=other_patient.pk)).status_code == 404


# --- The patient page ----------------------------------------------------------------------------------


def test_the_page_shows_every_section(nurse: Any, patient: Any, clock: Any) -> None:
    regimen = start_treatment(patient)
    LabResultFactory(patient=patient, collected_at=noon(day(-3)), value_as_entered="95", value_canonical=95)
    LabResultFactory(patient=patient, collected_at=noon(day(3)), value_as_entered="105", value_canonical=105)
    LabResultFactory(patient=patient, collected_at=noon(day(7)), value_as_entered="118", value_canonical=118)
    PatientFactFactory(patient=patient)
    MedicationFactory(patient=patient)
    AlertFactory(patient=patient, message="A dose is overdue (test).")
    DeliveryFactory(patient=patient, channel=Channel.EMAIL, address="ada@example.org", purpose=Purpose.DOSE_REMINDER)
    clock.move_to(noon(day(8)))

    body = text(web(nurse).get(f"/patients/{patient.pk}/"))
    for anchor in (
        'id="details"',
        'id="warnings"',
        'id="regimens"',
        'id="alerts"',
        'id="labs"',
        'id="facts"',
        'id="reminders"',
    ):
        assert anchor in body
    assert regimen.protocol.name in body
    assert "Given" in body and "Planned" in body
    assert "<svg" in body and 'class="band"' in body and "first dose" in body  # chart: band and T0
    assert "Time in range: " in body and "% of 4 days since the first dose" in body
    assert "A dose is overdue (test)." in body
    assert "a***@example.org" in body and "ada@example.org" not in body  # recipients masked as in the log
    assert "S-14" in body  # the information prompts


def test_a_nurse_sees_no_prescriber_button_and_gets_403_if_she_posts(nurse: Any, patient: Any, clock: Any) -> None:
    regimen = start_treatment(patient)
    body = text(web(nurse).get(f"/patients/{patient.pk}/"))
    assert "Stop the regimen" not in body and "Start a regimen" not in body
    client = web(nurse)
    assert client.post(f"/regimens/{regimen.pk}/stop/", {"reason": "x"}).status_code == 403
    assert client.get(f"/patients/{patient.pk}/regimens/new/").status_code == 403
    assert client.post(f"/regimens/{regimen.pk}/review/", {"outcome": "worsening"}).status_code == 403
    assert client.post(f"/regimens/{regimen.pk}/shorten-interval/", {"spacing_value": "8"}).status_code == 403
    regimen.refresh_from_db()
    assert regimen.status == RegimenStatus.ACTIVE


def lab_result(patient: Any, analyte: str, value: str, unit: str, on: date, *, in_error: bool = False) -> None:
    LabResultFactory(
        patient=patient,
        analyte=analyte,
        loinc={"platelets": "777-3", "b12_total": "2132-9"}[analyte],
        value_as_entered=value,
        unit_as_entered=unit,
        value_canonical=Decimal(value),
        unit_canonical=unit,
        collected_at=noon(on),
        error_recorded_at=noon(on) if in_error else None,
        error_reason="wrong patient" if in_error else "",
    )


def page_warnings(body: str) -> list[str]:
    """The warnings listed before the next dose on the patient page, as "rule: message"."""
    callout = re.search(r'(?s)id="warnings".*?<div class="nhsuk-warning-callout">(.*?)</div>', body)
    items = re.findall(r"(?s)<li>(.*?)</li>", callout.group(1)) if callout else []
    return [html.unescape(re.sub(r"<[^>]*>", "", re.sub(r"(?s) <strong class=\"nhsuk-tag.*", "", i))) for i in items]


@pytest.mark.parametrize(
    ("history", "codes"),
    [
        ("low platelets", ["im_injection_low_platelets"]),
        ("a low count entered in error", []),
        ("a later normal count", []),
        ("an allergy recorded after the start", ["cobalamin_allergy"]),
        ("an allergy checked and absent", []),
        ("an allergy acknowledged at an earlier dose", []),
    ],
)
def test_the_page_warns_of_the_next_dose_as_the_dose_detail_does(
    nurse: Any, api: Any, patient: Any, clock: Any, history: str, codes: list[str]
) -> None:
    # RULES §10 V-12: the page lists the warnings GET /api/doses/{id}/ gives for the next planned dose (S-2 from
    # the latest count not entered in error, S-11 from a fact present and not yet acknowledged for the regimen).
    regimen = start_treatment(patient)
    if history == "low platelets":
        lab_result(patient, "platelets", "45", "10^9/L", day(0))
    elif history == "a low count entered in error":
        lab_result(patient, "platelets", "250", "10^9/L", day(-1))
        lab_result(patient, "platelets", "45", "10^9/L", day(0), in_error=True)
    elif history == "a later normal count":
        lab_result(patient, "platelets", "45", "10^9/L", day(-2))
        lab_result(patient, "platelets", "250", "10^9/L", day(0))
    else:
        absent = history == "an allergy checked and absent"
        PatientFactFactory(patient=patient, kind=FactKind.COBALAMIN_ALLERGY, onset_date=None, absent=absent)
        if history == "an allergy acknowledged at an earlier dose":
            regimen.doses.filter(status=DoseStatus.GIVEN).update(acknowledged_warnings=["cobalamin_allergy"])
    clock.move_to(noon(day(1)))
    dose = ScheduledDose.objects.filter(patient=patient, status=DoseStatus.PLANNED).order_by("due_date", "id").first()
    assert dose is not None

    warnings = api.get(f"/api/doses/{dose.pk}/").json()["warnings"]
    body = text(web(nurse).get(f"/patients/{patient.pk}/"))

    assert [w["code"] for w in warnings] == codes
    assert page_warnings(body) == [f"{w['rule']}: {w['message']}" for w in warnings]
    if not codes:
        assert "No safety warning for the next dose" in body


def build_patient(clinic: Any, results: int, alerts: int, code: str = "hydroxo-uk-standard") -> Any:
    patient = PatientFactory(clinic=clinic)
    start_treatment(patient, code)
    for n in range(results):
        LabResultFactory(patient=patient, collected_at=noon(day(n)), value_as_entered="110", value_canonical=110 + n)
    for n in range(alerts):
        AlertFactory(
            patient=patient,
            kind=["dose_overdue", "contact_missing", "gate_pending"][n % 3],
            status=AlertStatus.RESOLVED if n >= 3 else AlertStatus.OPEN,
        )
    for _n in range(results):
        DeliveryFactory(patient=patient)
    return patient


# The patient page's queries, pinned so that they cannot silently grow: the same for a patient with one result,
# one alert and 10 doses as for one with 30 results, 18 doses (3 given), several alerts, and the facts, platelet
# count and B12 result the warnings and the charts read, in a clinic of many patients (docs/scaling.md).
# Session, user and the middleware's clinics (3); the patient (1); facts and lab results, read once for every
# section (patients.pages.PatientRecord, 2; none of the facts when the patient has none: page_patient asks in its own
# statement); medications (1; none when the patient has none); regimens with their doses, rechecks and decisions,
# read once for the regimens section and monitoring's next dose and T0 (regimens.pages.page_regimens, 4); the
# open alerts with the latest resolved (1); reminders (1); the users the rows name (who started, gave, recorded,
# entered, acknowledged, closed, decided; an inbox message's account), read once for every section instead of a
# join in each of 8 queries (PatientRecord.attach_users, 1; none when no row names anyone). The warnings of the
# planned doses the regimens section shows (RULES §10 V-12) are answered from those rows, with no query of their own
# (monitoring.patient_sections.PageAdministrationData, as for the next dose).
PATIENT_PAGE_QUERIES = 14


def test_the_page_renders_in_a_fixed_number_of_queries(
    clinician: Any, clinic: Any, clock: Any, django_assert_num_queries: Any
) -> None:
    small = build_patient(clinic, results=1, alerts=1)
    clock.move_to(noon(day(20)))
    client = web(clinician)
    client.get(f"/patients/{small.pk}/")  # warm caches (content types, sessions)
    # No row names a member of staff, no fact and no medication recorded: no read of any of them.
    with django_assert_num_queries(PATIENT_PAGE_QUERIES - 3):
        assert client.get(f"/patients/{small.pk}/").status_code == 200
    clock.move_to(noon(day(0)))
    large = build_patient(clinic, results=30, alerts=3, code="cyano-1000-weekly")
    clock.move_to(noon(day(19)))
    for dose in ScheduledDose.objects.filter(patient=large, status=DoseStatus.PLANNED, due_date__lt=day(20)):
        dose_record_administration(dose=dose, administered_at=noon(dose.due_date), user=clinician)
    assert ScheduledDose.objects.filter(patient=large, status=DoseStatus.GIVEN).count() == 3
    lab_result(large, "platelets", "45", "10^9/L", day(1))
    lab_result(large, "b12_total", "150", "ng/L", day(-5))
    for kind in (FactKind.COBALAMIN_ALLERGY, FactKind.PREGNANCY):
        PatientFactFactory(patient=large, kind=kind, onset_date=day(-30))
    MedicationFactory(patient=large, start_date=day(-30))
    for _n in range(20):
        build_patient(clinic, results=1, alerts=1)
    clock.move_to(noon(day(20)))
    with django_assert_num_queries(PATIENT_PAGE_QUERIES):
        response = client.get(f"/patients/{large.pk}/")
    assert response.status_code == 200
    warned = page_warnings(text(response))  # the rules that read platelets and facts did run
    assert [w.split(":")[0] for w in warned] == ["S-2", "S-11"]
    assert "Folic acid 5 mg tablets" in text(response) and "Cobalt or cobalamin allergy" in text(response)


def test_the_page_names_the_staff_each_row_names_as_a_join_would(
    clinic: Any, clock: Any, django_assert_num_queries: Any
) -> None:
    """The users the page's rows name are read once for the page (PatientRecord.attach_users) instead of joined
    in each section's query: every row gets the same user as select_related gives, and the page shows them."""
    from notifications.models import Alert, Delivery
    from notifications.patient_sections import patient_sections as notification_sections
    from patients.models import LabResult, PatientFact
    from patients.pages import PatientRecord
    from regimens.models import LabRecheck, RegimenDecision
    from regimens.pages import page_regimens
    from tests.factories import LabRecheckFactory, RegimenDecisionFactory

    who = {field: staff_user(clinic, Role.CLINICIAN, username=f"staff-{field}") for field in (
        "created_by", "stopped_by", "administered_by", "error_recorded_by", "closed_by", "decided_by",
        "recorded_by", "entered_by", "acknowledged_by", "user")}  # fmt: skip
    patient = PatientFactory(clinic=clinic)
    regimen = start_treatment(patient)
    Regimen.objects.filter(pk=regimen.pk).update(
        created_by=who["created_by"], status=RegimenStatus.STOPPED, stopped_at=noon(day(10)),
        stopped_by=who["stopped_by"], stop_reason="test",
    )  # fmt: skip
    doses = list(ScheduledDose.objects.filter(regimen=regimen).order_by("due_date", "id")[:2])
    ScheduledDose.objects.filter(pk=doses[0].pk).update(administered_by=who["administered_by"])
    ScheduledDose.objects.filter(pk=doses[1].pk).update(
        status=DoseStatus.ENTERED_IN_ERROR, error_recorded_at=noon(day(3)), error_recorded_by=who["error_recorded_by"]
    )
    LabRecheckFactory(regimen=regimen, day=30, status="done", closed_by=who["closed_by"])
    RegimenDecisionFactory(regimen=regimen, decided_by=who["decided_by"])
    PatientFactFactory(patient=patient, recorded_by=who["recorded_by"])
    PatientFactFactory(patient=patient, recorded_by=None)
    LabResultFactory(patient=patient, collected_at=noon(day(1)), entered_by=who["entered_by"])
    AlertFactory(patient=patient, status=AlertStatus.ACKNOWLEDGED, acknowledged_by=who["acknowledged_by"])
    AlertFactory(patient=patient, kind="contact_missing", status=AlertStatus.RESOLVED, resolved_at=noon(day(2)),
                 acknowledged_by=who["acknowledged_by"])  # fmt: skip
    DeliveryFactory(patient=patient, channel=Channel.INBOX, address="", user=who["user"])  # a portal account's inbox
    DeliveryFactory(patient=patient)
    clock.move_to(noon(day(20)))

    record = PatientRecord(patient)
    regimens = page_regimens(record)
    alerts, reminders = notification_sections(patient=patient, request=None, record=record)  # type: ignore[arg-type]
    facts, results = record.facts, record.lab_results
    with django_assert_num_queries(1):
        record.attach_users()
    named: list[tuple[list[Any], Any, tuple[str, ...]]] = [
        (regimens, Regimen, ("created_by", "stopped_by")),
        ([d for r in regimens for d in r.doses.all()], ScheduledDose, ("administered_by", "error_recorded_by")),
        ([c for r in regimens for c in r.lab_rechecks.all()], LabRecheck, ("closed_by",)),
        ([d for r in regimens for d in r.decisions.all()], RegimenDecision, ("decided_by",)),
        (facts, PatientFact, ("recorded_by",)),
        (results, LabResult, ("entered_by",)),
        ([card["alert"] for card in alerts.context["cards"]] + alerts.context["past"], Alert, ("acknowledged_by",)),
        ([row.delivery for row in reminders.context["reminders"]], Delivery, ("user",)),
    ]
    with django_assert_num_queries(0):
        attached = {
            (model, row.pk, field): getattr(getattr(row, field), "username", None)
            for rows, model, fields in named
            for row in rows
            for field in fields
        }
    joined = {
        (model, row.pk, field): getattr(getattr(row, field), "username", None)
        for _rows, model, fields in named
        for row in model.objects.filter(pk__in=[r.pk for r in _rows]).select_related(*fields)
        for field in fields
    }
    assert attached == joined
    assert {name for name in attached.values() if name} == {f"staff-{field}" for field in who}

    body = text(web(who["created_by"]).get(f"/patients/{patient.pk}/"))
    for field in who:
        assert f"staff-{field}" in body, field


def test_search_renders_in_a_fixed_number_of_queries(
    nurse: Any, clinic: Any, django_assert_max_num_queries: Any
) -> None:
    PatientFactory(clinic=clinic)
    client = web(nurse)
    with django_assert_max_num_queries(8) as few:
        client.get("/patients/")
    for _n in range(20):
        PatientFactory(clinic=clinic)
    with django_assert_max_num_queries(len(few)):
        client.get("/patients/")


# --- The clinician's actions: each writes what the API would ------------------------------------------


def test_a_clinician_previews_then_starts_a_regimen(clinician: Any, patient: Any, clock: Any) -> None:
    protocol = Protocol.objects.get(code="hydroxo-uk-standard")
    client = web(clinician)
    form = {"protocol": protocol.pk, "start_date": T0.isoformat()}

    preview = client.post(f"/patients/{patient.pk}/regimens/new/", {**form, "action": "preview"})
    assert preview.status_code == 200
    assert "Preview: nothing is stored yet" in text(preview)
    assert not Regimen.objects.filter(patient=patient).exists()

    response = client.post(f"/patients/{patient.pk}/regimens/new/", {**form, "action": "start"})
    assert response.status_code == 302 and response["Location"] == f"/patients/{patient.pk}/#regimens"
    regimen = Regimen.objects.get(patient=patient)
    assert (regimen.protocol, regimen.start_date, regimen.created_by) == (protocol, T0, clinician)
    assert regimen.doses.filter(status=DoseStatus.PLANNED, due_date=T0).exists()  # planned at once, as the API
    body = text(client.get(response["Location"]))
    assert "started; its doses are planned" in body
    assert "Start a regimen" not in body  # one active regimen at a time


def test_safety_warnings_are_listed_to_acknowledge_before_a_start(clinician: Any, patient: Any, clock: Any) -> None:
    # A pernicious anaemia patient on an oral protocol: RULES R-ORAL-1 / §10 V-6 caution.
    protocol = Protocol.objects.get(code="oral-high-dose")
    client = web(clinician)
    form = {"protocol": protocol.pk, "start_date": T0.isoformat(), "action": "start"}

    refused = client.post(f"/patients/{patient.pk}/regimens/new/", form)
    assert refused.status_code == 200
    body = text(refused)
    assert "There is a problem" in body and "These warnings must be acknowledged" in body
    assert 'name="acknowledge"' in body
    assert not Regimen.objects.filter(patient=patient).exists()

    codes = [c for c in refused.context["form"].fields["acknowledge"].choices]
    acknowledge = [code for code, _label in codes]
    started = client.post(
        f"/patients/{patient.pk}/regimens/new/",
        {**form, "acknowledge": acknowledge, "override_reason": "Declines injections; agreed with haematology."},
    )
    assert started.status_code == 302
    regimen = Regimen.objects.get(patient=patient)
    assert set(regimen.acknowledged_warnings) == set(acknowledge)
    assert regimen.override_reason == "Declines injections; agreed with haematology."


def test_a_low_oral_dose_for_a_malabsorption_cause_asks_for_a_reason_on_the_start_page(
    clinician: Any, clinic: Any, clock: Any
) -> None:
    # RULES R-ORAL-1, §10 V-6: below 1000 mcg a day by mouth for a cause that is or may be malabsorption is refused
    # without an override reason; the page asks for one (the reason box was hidden: no warning to acknowledge).
    patient = PatientFactory(clinic=clinic, deficiency_cause="metformin")
    protocol = Protocol.objects.get(code="diet-oral")
    client = web(clinician)
    form = {"protocol": protocol.pk, "start_date": T0.isoformat(), "action": "start"}

    refused = client.post(f"/patients/{patient.pk}/regimens/new/", form)
    assert refused.status_code == 200 and "1000 mcg a day" in text(refused)
    assert '<textarea name="override_reason"' in text(refused)
    assert not Regimen.objects.filter(patient=patient).exists()

    reason = "Metformin stopped; dietary top-up agreed with the GP."
    started = client.post(f"/patients/{patient.pk}/regimens/new/", {**form, "override_reason": reason})
    assert started.status_code == 302
    assert Regimen.objects.get(patient=patient).override_reason == reason


def test_stopping_needs_a_reason_and_cancels_planned_doses(clinician: Any, patient: Any, clock: Any) -> None:
    regimen = start_treatment(patient)
    client = web(clinician)
    refused = client.post(f"/regimens/{regimen.pk}/stop/", {"reason": ""})
    assert refused.status_code == 200 and "There is a problem" in text(refused)
    regimen.refresh_from_db()
    assert regimen.status == RegimenStatus.ACTIVE

    # PA is an irreversible cause: stopping needs the S-5 warning acknowledged, as in the API.
    refused = client.post(f"/regimens/{regimen.pk}/stop/", {"reason": "Moved away"})
    assert "These warnings must be acknowledged" in text(refused)
    codes = [code for code, _label in refused.context["form"].fields["acknowledge"].choices]
    response = client.post(f"/regimens/{regimen.pk}/stop/", {"reason": "Moved away", "acknowledge": codes})
    assert response.status_code == 302
    regimen.refresh_from_db()
    assert (regimen.status, regimen.stop_reason, regimen.stopped_by) == (RegimenStatus.STOPPED, "Moved away", clinician)
    assert not regimen.doses.filter(status=DoseStatus.PLANNED).exists()


def test_a_clinician_reviews_and_ends_the_neurological_loading_phase(clinician: Any, patient: Any, clock: Any) -> None:
    regimen = start_treatment(patient, "hydroxo-uk-neuro")
    client = web(clinician)
    body = text(client.get(f"/patients/{patient.pk}/"))
    assert "End the phase in progress" in body and "Record a review" in body

    response = client.post(f"/regimens/{regimen.pk}/review/", {"outcome": "still_improving", "note": "Better gait"})
    assert response.status_code == 302
    assert regimen.decisions.get().note == "Better gait"

    # RULES §10 V-5: before six loading doses the end needs a reason (the field is named).
    refused = client.post(f"/regimens/{regimen.pk}/end-phase/", {})
    assert refused.status_code == 200 and "Reason" in text(refused) and "loading doses given" in text(refused)
    response = client.post(f"/regimens/{regimen.pk}/end-phase/", {"reason": "No further improvement expected"})
    assert response.status_code == 302
    regimen.refresh_from_db()
    assert regimen.current_phase == 1


def test_ending_the_last_phase_of_lifelong_therapy_needs_s5_and_an_override_reason(
    clinician: Any, patient: Any, clock: Any
) -> None:
    # Gastrectomy is irreversible; oral-high-dose's one phase only a clinician ends (RULES S-5, §10 V-13).
    patient.deficiency_cause = "gastrectomy"
    patient.save()
    regimen = start_treatment(patient, "oral-high-dose")
    client = web(clinician)

    refused = client.post(f"/regimens/{regimen.pk}/end-phase/", {})
    assert "These warnings must be acknowledged" in text(refused)
    codes = [code for code, _label in refused.context["form"].fields["acknowledge"].choices]
    assert codes == ["lifelong_therapy_stopped"]
    assert 'name="override_reason"' in text(refused)

    # A hard stop: the acknowledgement alone, or a reason too short to say anything, is refused on the field.
    for reason in ("", "x"):
        refused = client.post(f"/regimens/{regimen.pk}/end-phase/", {"acknowledge": codes, "override_reason": reason})
        assert refused.status_code == 200 and refused.context["form"].errors.keys() == {"override_reason"}
        assert '<textarea name="override_reason"' in text(refused)  # shown again, to be filled in
    regimen.refresh_from_db()
    assert (regimen.status, regimen.acknowledged_warnings, regimen.decisions.count()) == (RegimenStatus.ACTIVE, [], 0)

    response = client.post(
        f"/regimens/{regimen.pk}/end-phase/", {"acknowledge": codes, "override_reason": "Patient declines treatment"}
    )
    assert response.status_code == 302
    regimen.refresh_from_db()
    assert regimen.acknowledged_warnings == ["lifelong_therapy_stopped"]
    assert regimen.decisions.get().note == "Override reason (S-5): Patient declines treatment"
    assert patient.alerts.get(kind="lifelong_therapy_stopped").evidence["override_reason"] == (
        "Patient declines treatment"
    )


def test_a_clinician_marks_a_given_dose_entered_in_error(clinician: Any, patient: Any, clock: Any) -> None:
    start_treatment(patient)
    given = ScheduledDose.objects.get(patient=patient, status=DoseStatus.GIVEN)
    client = web(clinician)
    assert f"/doses/{given.pk}/entered-in-error/" in text(client.get(f"/patients/{patient.pk}/"))
    response = client.post(f"/doses/{given.pk}/entered-in-error/", {"reason": "Recorded on the wrong patient"})
    assert response.status_code == 302
    given.refresh_from_db()
    assert (given.status, given.error_recorded_by) == (DoseStatus.ENTERED_IN_ERROR, clinician)
    # The slot is planned again (RULES §10 V-14).
    assert ScheduledDose.objects.filter(
        regimen=given.regimen, phase_index=given.phase_index, sequence=given.sequence, status=DoseStatus.PLANNED
    ).exists()


def test_only_the_recording_nurse_may_mark_her_own_dose_in_error(
    nurse: Any, clinic: Any, patient: Any, clock: Any
) -> None:
    regimen = regimen_start(patient=patient, protocol=Protocol.objects.get(code="hydroxo-uk-standard"), start_date=T0)
    dose = regimen.doses.order_by("due_date").first()
    dose_record_administration(dose=dose, user=nurse, administered_at=noon(T0))
    other = staff_user(clinic, Role.NURSE, username="other-nurse")

    assert "entered-in-error" not in text(web(other).get(f"/patients/{patient.pk}/"))
    assert web(other).post(f"/doses/{dose.pk}/entered-in-error/", {"reason": "x"}).status_code == 403
    assert f"/doses/{dose.pk}/entered-in-error/" in text(web(nurse).get(f"/patients/{patient.pk}/"))
    assert web(nurse).post(f"/doses/{dose.pk}/entered-in-error/", {"reason": "Wrong arm noted"}).status_code == 302
    dose.refresh_from_db()
    assert dose.status == DoseStatus.ENTERED_IN_ERROR


# --- Alerts on the patient page ---------------------------------------------------------------------------


def test_the_open_alerts_come_most_severe_first_then_the_latest_opened(nurse: Any, patient: Any) -> None:
    def alert(kind: str, severity: str, on: int, status: str = AlertStatus.OPEN) -> Any:
        return AlertFactory(patient=patient, kind=kind, severity=severity, opened_at=noon(day(on)), status=status)

    made = [
        alert("contact_missing", Severity.MEDIUM, 3),
        alert("dose_overdue", Severity.HIGH, 0),
        alert("platelets_critical_low", Severity.CRITICAL, 1),
        alert("gate_pending", Severity.HIGH, 2, AlertStatus.ACKNOWLEDGED),
        alert("gate_pending", Severity.CRITICAL, 4, AlertStatus.RESOLVED),
    ]
    body = text(web(nurse).get(f"/patients/{patient.pk}/"))
    shown = [int(pk) for pk in re.findall(r'<div class="nhsuk-card cobalt-alert[^"]*" id="alert-(\d+)"', body)]
    assert shown == [made[2].pk, made[3].pk, made[1].pk, made[0].pk]  # the resolved one is among the past alerts


def test_the_past_alerts_are_the_latest_resolved(nurse: Any, patient: Any) -> None:
    AlertFactory(patient=patient)  # open: not a past alert
    for n in range(PAST_ALERTS_SHOWN + 2):  # resolved on days 0, 2, 4, ... entered in another order
        resolved_on = (n * 7) % (PAST_ALERTS_SHOWN + 2) * 2
        resolved_at, resolution = noon(day(resolved_on)), f"closed-{resolved_on:02d}"
        AlertFactory(patient=patient, status=AlertStatus.RESOLVED, resolved_at=resolved_at, resolution=resolution)
    body = text(web(nurse).get(f"/patients/{patient.pk}/"))
    assert f"{PAST_ALERTS_SHOWN} past alerts" in body
    assert re.findall(r"closed-(\d+)", body) == [f"{d:02d}" for d in range(2 * PAST_ALERTS_SHOWN + 2, 2, -2)]


def test_a_nurse_acknowledges_an_alert_in_place(nurse: Any, patient: Any) -> None:
    alert = AlertFactory(patient=patient)
    response = web(nurse).post(
        f"/patients/{patient.pk}/alerts/{alert.pk}/acknowledge/", {"note": "Phoned, rebooked"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    body = text(response)
    assert body.startswith(f'<div class="nhsuk-card cobalt-alert cobalt-alert--high" id="alert-{alert.pk}"')
    assert "Acknowledged" in body and "Phoned, rebooked" in body and "<form" not in body
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by) == ("acknowledged", nurse)
    assert alert.acknowledgement_note == "Phoned, rebooked"


def test_a_critical_alert_needs_a_note(clinician: Any, patient: Any) -> None:
    alert = AlertFactory(patient=patient, severity=Severity.CRITICAL, kind="platelets_critical_low")
    url = f"/patients/{patient.pk}/alerts/{alert.pk}/acknowledge/"
    response = web(clinician).post(url, {"note": " "}, HTTP_HX_REQUEST="true")
    assert "a critical alert needs a note saying what was done" in text(response)
    assert "nhsuk-form-group--error" in text(response)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN
    # Without JavaScript the form posts and the page comes back with the message.
    response = web(clinician).post(url, {"note": "Admitted for review"})
    assert response.status_code == 302 and response["Location"].endswith(f"#alert-{alert.pk}")
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACKNOWLEDGED


def test_another_clinics_alert_is_a_404(nurse: Any, other_patient: Any) -> None:
    alert = AlertFactory(patient=other_patient)
    url = f"/patients/{other_patient.pk}/alerts/{alert.pk}/acknowledge/"
    assert web(nurse).post(url, {"note": "x"}).status_code == 404
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN


# --- The injection card ---------------------------------------------------------------------------------


def card_of(user: Any, patient: Any) -> str:
    response = web(user).get(f"/patients/{patient.pk}/card/")
    assert response.status_code == 200
    body = text(response)
    return body[body.index('<article class="cobalt-card"') : body.index("</article>")]


def test_the_card_lists_the_next_clinic_appointments_and_blood_tests_and_the_clinic(
    nurse: Any, clinic: Any, patient: Any, clock: Any
) -> None:
    clinic.phone, clinic.address = "+44 20 7946 0000", "1 River Lane\nLondon E1 1AA"
    clinic.save(update_fields=["phone", "address"])
    regimen = start_treatment(patient)
    card = card_of(nurse, patient)

    next_dose = regimen.doses.filter(status=DoseStatus.PLANNED).order_by("due_date").first()
    assert next_dose.due_date.strftime("%A %-d %B %Y") in card
    assert card.count("Injection at the clinic") == 6  # the next six appointments
    assert "Blood test" in card and "Between" in card  # a recheck has a window
    assert "+44 20 7946 0000" in card and "1 River Lane<br>London E1 1AA" in card
    # Handed to the patient: no diagnosis, medicine, dose or result on it.
    for clinical in ("ydroxocobalamin", "mcg", "B12", "naemia", "IM", "MRN", "haemoglobin"):
        assert clinical not in page_text(card), clinical


def test_the_card_is_in_the_patients_language(nurse: Any, clinic: Any, clock: Any) -> None:
    patient = PatientFactory(clinic=clinic, language="es")
    start_treatment(patient)
    card = card_of(nurse, patient)
    assert 'lang="es"' in card
    assert "Sus próximas citas" in card and "Inyección en la clínica" in card and "Análisis de sangre" in card
    assert "enero de 2027" in card or "enero 2027" in card  # dates in Spanish too
    assert "Your next appointments" not in card
    # The page around the card stays in the staff's language.
    assert "Print the card" in text(web(nurse).get(f"/patients/{patient.pk}/card/"))


def test_the_card_renders_in_a_fixed_number_of_queries(
    nurse: Any, clinic: Any, clock: Any, django_assert_max_num_queries: Any
) -> None:
    patient = PatientFactory(clinic=clinic)
    client = web(nurse)
    client.get(f"/patients/{patient.pk}/card/")
    with django_assert_max_num_queries(8) as few:
        client.get(f"/patients/{patient.pk}/card/")
    start_treatment(patient)
    with django_assert_max_num_queries(len(few)):
        client.get(f"/patients/{patient.pk}/card/")


def test_another_clinics_regimen_and_dose_are_a_404(clinician: Any, other_patient: Any, clock: Any) -> None:
    regimen = start_treatment(other_patient)
    given = regimen.doses.get(status=DoseStatus.GIVEN)
    client = web(clinician)
    for path in ("stop", "end-phase", "review"):
        response = client.post(f"/regimens/{regimen.pk}/{path}/", {"reason": "x", "outcome": "worsening"})
        assert response.status_code == 404
    assert client.post(f"/doses/{given.pk}/entered-in-error/", {"reason": "x"}).status_code == 404
    regimen.refresh_from_db()
    given.refresh_from_db()
    assert (regimen.status, given.status) == (RegimenStatus.ACTIVE, DoseStatus.GIVEN)
