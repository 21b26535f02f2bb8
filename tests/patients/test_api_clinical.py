"""API: medications (with the S-1, S-10, S-11, S-12 warnings) and patient facts/events."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from notifications.models import Alert
from patients.models import Medication, PatientFact
from regimens import services
from regimens.models import Protocol
from tests.conftest import client_for
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db

TODAY = "2027-01-10 09:00:00+00:00"


@pytest.fixture(autouse=True)
def _today() -> Any:
    with time_machine.travel(TODAY, tick=False):
        yield


@pytest.fixture
def evaluations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Patients whose monitoring evaluation was scheduled by a write."""
    seen: list[int] = []
    monkeypatch.setattr(
        "tracker.events.announce_on_commit",
        lambda name, **payload: seen.append(payload["patient_id"]) if name == "patient.changed" else None,
    )
    return seen


def folic(patient: Any, **extra: Any) -> dict[str, Any]:
    return {"patient": patient.pk, "kind": "folic_acid", "dose": "5", "dose_unit": "mg", "route": "PO",
            "start_date": "2027-01-08", **extra}  # fmt: skip


def give_first_b12_dose(patient: Any, at: datetime) -> None:
    with time_machine.travel("2026-12-01 09:00:00+00:00", tick=False):
        regimen = services.regimen_start(
            patient=patient, protocol=Protocol.objects.get(code="hydroxo-uk-standard"), start_date=date(2027, 1, 4)
        )
    dose = regimen.doses.order_by("phase_index", "sequence").first()
    assert dose is not None
    services.dose_record_administration(dose=dose, administered_at=at)


# --- S-1: folic acid before B12 -------------------------------------------------------------------


def test_folic_acid_before_any_b12_is_a_hard_stop_that_needs_a_reason(
    api: APIClient, patient: Any, evaluations: list[int]
) -> None:
    # When folic acid is recorded for a patient with no B12 dose
    refused = api.post("/api/medications/", folic(patient), format="json")

    # Then it is refused with the S-1 code and nothing is written
    assert refused.status_code == 400
    assert [(w["code"], w["rule"]) for w in refused.json()["warnings"]] == [("folic_acid_before_b12", "S-1")]
    assert not Medication.objects.exists()

    # When the warning is acknowledged without a reason, it is still refused, naming override_reason
    no_reason = api.post("/api/medications/", folic(patient, acknowledge=["folic_acid_before_b12"]), format="json")
    assert no_reason.status_code == 400
    assert "override_reason" in no_reason.json()
    assert not Medication.objects.exists()
    assert not Alert.objects.exists()

    # When it is acknowledged with a reason
    created = api.post(
        "/api/medications/",
        folic(patient, acknowledge=["folic_acid_before_b12"], override_reason="seriously ill; B12 given today"),
        format="json",
    )

    # Then it is recorded with the acknowledgement and the reason, and one HIGH alert is open
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["acknowledged_warnings"] == ["folic_acid_before_b12"]
    assert body["override_reason"] == "seriously ill; B12 given today"
    assert body["created_by"] == "nurse"
    [alert] = Alert.objects.filter(patient=patient, kind="folic_acid_before_b12")
    assert (alert.severity, alert.rule_id) == ("high", "S-1")
    assert alert.evidence["medication_id"] == body["id"]
    assert alert.evidence["override_reason"] == "seriously ill; B12 given today"
    assert evaluations == [patient.pk]


@pytest.mark.parametrize(("folic_start", "warns"), [("2027-01-04", False), ("2027-01-06", False), ("2027-01-03", True)])
def test_folic_acid_is_allowed_without_warning_on_or_after_the_first_b12_dose(
    api: APIClient, patient: Any, folic_start: str, warns: bool
) -> None:
    # Given the first B12 dose was given on 4 January
    give_first_b12_dose(patient, datetime(2027, 1, 4, 10, 30, tzinfo=UTC))

    response = api.post("/api/medications/", folic(patient, start_date=folic_start), format="json")

    assert response.status_code == (400 if warns else 201), response.json()


def test_folic_acid_is_allowed_after_b12_recorded_as_a_medication(api: APIClient, patient: Any) -> None:
    b12 = {"patient": patient.pk, "kind": "hydroxocobalamin", "route": "IM", "start_date": "2027-01-08"}
    assert api.post("/api/medications/", b12, format="json").status_code == 201

    response = api.post("/api/medications/", folic(patient), format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["acknowledged_warnings"] == []


# --- S-10, S-11, S-12 on medications --------------------------------------------------------------


def test_cyanocobalamin_for_a_patient_with_lebers_disease_is_a_hard_stop(api: APIClient, patient: Any) -> None:
    PatientFact.objects.create(patient=patient, kind="lebers_disease")
    body = {"patient": patient.pk, "kind": "cyanocobalamin", "route": "IM", "start_date": "2027-01-08"}

    refused = api.post("/api/medications/", body, format="json")
    assert refused.status_code == 400
    assert [w["code"] for w in refused.json()["warnings"]] == ["lebers_disease_cyanocobalamin"]

    acked = {**body, "acknowledge": ["lebers_disease_cyanocobalamin"], "override_reason": "ophthalmology agreed"}
    created = api.post("/api/medications/", acked, format="json")

    assert created.status_code == 201, created.json()
    [alert] = Alert.objects.filter(patient=patient, kind="contraindication")
    assert alert.rule_id == "S-10"


def test_b12_for_a_patient_with_a_cobalamin_allergy_is_a_hard_stop(api: APIClient, patient: Any) -> None:
    PatientFact.objects.create(patient=patient, kind="cobalamin_allergy")
    body = {"patient": patient.pk, "kind": "hydroxocobalamin", "route": "IM", "start_date": "2027-01-08"}

    refused = api.post("/api/medications/", body, format="json")
    assert [w["code"] for w in refused.json()["warnings"]] == ["cobalamin_allergy"]
    no_reason = api.post("/api/medications/", {**body, "acknowledge": ["cobalamin_allergy"]}, format="json")
    assert list(no_reason.json()) == ["override_reason"]

    created = api.post(
        "/api/medications/",
        {**body, "acknowledge": ["cobalamin_allergy"], "override_reason": "test dose tolerated"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert Alert.objects.get(patient=patient, kind="contraindication").rule_id == "S-11"


@pytest.mark.parametrize(
    ("kind", "route", "warns"),
    [
        ("cyanocobalamin", "IV", True),
        ("cyanocobalamin", "deep_SC", False),
        ("hydroxocobalamin", "SC", True),
        ("hydroxocobalamin", "IV", True),
        ("hydroxocobalamin", "IM", False),
        # RULES S-12: the 5 g IV cyanide antidote is a different product, recorded as "other".
        ("other", "IV", False),
    ],
)
def test_a_wrong_b12_route_is_a_warning_acknowledged_without_a_reason(
    api: APIClient, patient: Any, kind: str, route: str, warns: bool
) -> None:
    body = {"patient": patient.pk, "kind": kind, "route": route, "start_date": "2027-01-08"}

    first = api.post("/api/medications/", body, format="json")

    if not warns:
        assert first.status_code == 201, first.json()
        return
    assert first.status_code == 400
    assert [w["code"] for w in first.json()["warnings"]] == ["wrong_route"]
    acked = api.post("/api/medications/", {**body, "acknowledge": ["wrong_route"]}, format="json")
    assert acked.status_code == 201, acked.json()
    assert Alert.objects.get(patient=patient, kind="contraindication").rule_id == "S-12"


def test_it_stores_deep_sc_in_the_regimen_spelling(api: APIClient, patient: Any) -> None:
    body = {"patient": patient.pk, "kind": "cyanocobalamin", "route": "deep_SC", "start_date": "2027-01-08"}
    assert api.post("/api/medications/", body, format="json").json()["route"] == "deep SC"


# --- Medications: validation, listing, stopping ---------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "vitamin_d"}, "kind"),
        ({"start_date": "08/01/2027"}, "start_date"),
        ({"start_date": "2030-01-01"}, "start_date"),
        ({"stop_date": "2027-01-01"}, "stop_date"),
        ({"route": "IO"}, "route"),
        ({"dose": "-1"}, "dose"),
        ({"dose_unit": "ml"}, "dose_unit"),
        ({"dose_unit": ""}, "dose_unit"),
        ({"acknowledge": "folic_acid_before_b12"}, "acknowledge"),
    ],
)
def test_it_refuses_bad_medication_input_naming_the_field(
    api: APIClient, patient: Any, change: dict[str, Any], field: str
) -> None:
    body = {**folic(patient), **change}

    response = api.post("/api/medications/", body, format="json")

    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not Medication.objects.exists()


def test_it_refuses_a_medication_for_another_clinics_patient(api: APIClient, other_clinic: Any) -> None:
    theirs = PatientFactory(clinic=other_clinic)

    response = api.post("/api/medications/", folic(theirs), format="json")

    assert response.status_code == 400
    assert "patient" in response.json()
    assert not Medication.objects.exists()


def test_it_lists_medications_by_patient_kind_and_active(api: APIClient, patient: Any, clinic: Any) -> None:
    other_patient = PatientFactory(clinic=clinic)
    iron = Medication.objects.create(patient=patient, kind="iron", start_date=date(2026, 12, 1))
    stopped = Medication.objects.create(
        patient=patient, kind="iron", start_date=date(2026, 11, 1), stop_date=date(2026, 12, 1)
    )
    b12 = Medication.objects.create(patient=patient, kind="hydroxocobalamin", start_date=date(2026, 12, 1))
    Medication.objects.create(patient=other_patient, kind="iron", start_date=date(2026, 12, 1))

    def ids(query: str) -> set[int]:
        response = api.get(f"/api/medications/?{query}")
        assert response.status_code == 200, response.json()
        return {m["id"] for m in response.json()["results"]}

    assert ids(f"patient={patient.pk}") == {iron.pk, stopped.pk, b12.pk}
    assert ids(f"patient={patient.pk}&kind=iron") == {iron.pk, stopped.pk}
    assert ids(f"patient={patient.pk}&active=true") == {iron.pk, b12.pk}
    assert ids(f"patient={patient.pk}&active=false") == {stopped.pk}
    assert api.get("/api/medications/?kind=vitamin_d").status_code == 400


def test_it_hides_another_clinics_medications(api: APIClient, other_clinic: Any) -> None:
    theirs = Medication.objects.create(
        patient=PatientFactory(clinic=other_clinic), kind="iron", start_date=date(2026, 12, 1)
    )

    assert api.get("/api/medications/").json()["results"] == []
    assert api.get(f"/api/medications/{theirs.pk}/").status_code == 404
    assert api.patch(f"/api/medications/{theirs.pk}/", {"stop_date": "2027-01-09"}, format="json").status_code == 404
    theirs.refresh_from_db()
    assert theirs.stop_date is None


def test_it_stops_a_medication_and_only_its_stop_date_changes(
    api: APIClient, patient: Any, evaluations: list[int]
) -> None:
    med = Medication.objects.create(patient=patient, kind="iron", start_date=date(2027, 1, 2))

    before = api.patch(f"/api/medications/{med.pk}/", {"stop_date": "2027-01-01"}, format="json")
    other = api.patch(f"/api/medications/{med.pk}/", {"stop_date": "2027-01-09", "route": "IV"}, format="json")
    stopped = api.patch(f"/api/medications/{med.pk}/", {"stop_date": "2027-01-09"}, format="json")

    assert before.status_code == 400 and "stop_date" in before.json()
    assert other.status_code == 400 and "route" in other.json()
    assert stopped.status_code == 200, stopped.json()
    assert stopped.json()["stop_date"] == "2027-01-09"
    assert stopped.json()["active"] is False
    med.refresh_from_db()
    assert (med.stop_date, med.route) == (date(2027, 1, 9), "")
    assert evaluations == [patient.pk]
    assert api.put(f"/api/medications/{med.pk}/", {"stop_date": None}, format="json").status_code == 405
    assert api.delete(f"/api/medications/{med.pk}/").status_code == 405


# --- Patient facts and events ---------------------------------------------------------------------


def test_it_records_lists_and_ends_facts(api: APIClient, patient: Any, evaluations: list[int]) -> None:
    pregnancy = api.post(
        "/api/patient-facts/",
        {"patient": patient.pk, "kind": "pregnancy", "onset_date": "2026-09-01", "note": "EDD June"},
        format="json",
    )
    transfusion = api.post(
        "/api/patient-facts/", {"patient": patient.pk, "kind": "transfusion", "onset_date": "2027-01-05"}, format="json"
    )
    no_cancer = api.post(
        "/api/patient-facts/", {"patient": patient.pk, "kind": "active_cancer", "absent": True}, format="json"
    )
    assert pregnancy.status_code == transfusion.status_code == no_cancer.status_code == 201
    assert pregnancy.json()["present"] is True
    assert no_cancer.json()["present"] is False
    assert pregnancy.json()["recorded_by"] == "nurse"

    listed = api.get(f"/api/patient-facts/?patient={patient.pk}&kind=pregnancy").json()["results"]
    assert [f["id"] for f in listed] == [pregnancy.json()["id"]]

    ended = api.post(f"/api/patient-facts/{pregnancy.json()['id']}/end/", {"end_date": "2027-01-09"}, format="json")
    assert ended.status_code == 200, ended.json()
    assert ended.json()["end_date"] == "2027-01-09"
    assert ended.json()["present"] is False
    assert evaluations == [patient.pk] * 4

    again = api.post(f"/api/patient-facts/{pregnancy.json()['id']}/end/", {"end_date": "2027-01-10"}, format="json")
    assert again.status_code == 409
    event = api.post(f"/api/patient-facts/{transfusion.json()['id']}/end/", {}, format="json")
    assert event.status_code == 409


def test_ending_a_fact_defaults_to_today_and_refuses_a_date_before_onset(api: APIClient, patient: Any) -> None:
    fact = PatientFact.objects.create(patient=patient, kind="inpatient", onset_date=date(2027, 1, 5))

    early = api.post(f"/api/patient-facts/{fact.pk}/end/", {"end_date": "2027-01-04"}, format="json")
    ended = api.post(f"/api/patient-facts/{fact.pk}/end/", {}, format="json")

    assert early.status_code == 400 and "end_date" in early.json()
    assert ended.status_code == 200
    assert ended.json()["end_date"] == "2027-01-10"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "headache"}, "kind"),
        ({"kind": "transfusion"}, "onset_date"),
        ({"kind": "transfusion", "onset_date": "2027-01-05", "absent": True}, "absent"),
        ({"kind": "pregnancy", "onset_date": "2027-02-01"}, "onset_date"),
        ({"kind": "pregnancy", "onset_date": "2026-09-01", "end_date": "2026-08-01"}, "end_date"),
        ({"kind": "pregnancy", "onset_date": "not a date"}, "onset_date"),
        ({"kind": "active_cancer", "absent": True, "end_date": "2027-01-01"}, "end_date"),
    ],
)
def test_it_refuses_bad_fact_input_naming_the_field(
    api: APIClient, patient: Any, body: dict[str, Any], field: str
) -> None:
    response = api.post("/api/patient-facts/", {"patient": patient.pk, **body}, format="json")

    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not PatientFact.objects.exists()


def test_it_keeps_facts_within_the_clinic(api: APIClient, other_clinic: Any) -> None:
    theirs = PatientFactory(clinic=other_clinic)
    fact = PatientFact.objects.create(patient=theirs, kind="pregnancy")

    created = api.post("/api/patient-facts/", {"patient": theirs.pk, "kind": "pregnancy"}, format="json")

    assert created.status_code == 400 and "patient" in created.json()
    assert api.get("/api/patient-facts/").json()["results"] == []
    assert api.get(f"/api/patient-facts/{fact.pk}/").status_code == 404
    assert api.post(f"/api/patient-facts/{fact.pk}/end/", {}, format="json").status_code == 404


@pytest.mark.parametrize("url", ["/api/medications/", "/api/patient-facts/"])
def test_only_clinic_staff_may_use_the_clinical_api(anon_api: APIClient, url: str) -> None:
    assert anon_api.get(url).status_code == 401
    outsider = client_for(UserFactory(username="no-clinic"))
    assert outsider.get(url).status_code == 403


def test_a_second_override_keeps_the_one_open_alert(api: APIClient, patient: Any) -> None:
    body = folic(patient, acknowledge=["folic_acid_before_b12"], override_reason="awaiting B12 stock")

    first = api.post("/api/medications/", body, format="json")
    second = api.post("/api/medications/", {**body, "start_date": "2027-01-09"}, format="json")

    assert first.status_code == second.status_code == 201
    assert Medication.objects.filter(patient=patient).count() == 2
    assert Alert.objects.filter(patient=patient, kind="folic_acid_before_b12").count() == 1


def test_folic_acid_is_allowed_for_a_patient_enrolled_with_b12_given_elsewhere(api: APIClient, patient: Any) -> None:
    # Given a patient moved in on maintenance, last B12 given elsewhere on 1 December
    with time_machine.travel("2026-12-10 09:00:00+00:00", tick=False):
        services.regimen_start(
            patient=patient,
            protocol=Protocol.objects.get(code="hydroxo-uk-standard"),
            start_date=date(2026, 12, 10),
            options={"enrol": {"phase": "maintenance", "last_dose_date": "2026-12-01"}},
        )

    response = api.post("/api/medications/", folic(patient), format="json")

    assert response.status_code == 201, response.json()
