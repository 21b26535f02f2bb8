"""GET /api/patients/{id}/plasmic/ and /trends/: what a clinician reads off the patient's labs."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from patients.models import LabResult, Patient, PatientFact
from regimens.models import Regimen, ScheduledDose
from tests.conftest import client_for
from tests.factories import PatientFactory, staff_user

pytestmark = pytest.mark.django_db


def result(patient: Patient, analyte: str, value: str, on: date, **extra: Any) -> LabResult:
    units = {
        "hemoglobin": "g/L",
        "platelets": "10^9/L",
        "mcv": "fL",
        "reticulocytes_pct": "%",
        "inr": "ratio",
        "creatinine": "umol/L",
        "bilirubin_indirect": "umol/L",
        "haptoglobin": "g/L",
    }
    return LabResult.objects.create(
        patient=patient,
        analyte=analyte,
        loinc="x",
        value_as_entered=value,
        unit_as_entered=units.get(analyte, ""),
        value_canonical=Decimal(value),
        unit_canonical=units.get(analyte, ""),
        collected_at=datetime(on.year, on.month, on.day, 9, tzinfo=UTC),
        **extra,
    )


def give_first_dose(patient: Patient, on: date) -> None:
    from regimens.models import Protocol

    regimen = Regimen.objects.create(
        patient=patient, protocol=Protocol.objects.get(code="hydroxo-uk-standard"), start_date=on
    )
    ScheduledDose.objects.create(
        regimen=regimen,
        patient=patient,
        phase_index=0,
        phase="loading",
        sequence=1,
        due_date=on,
        drug="hydroxocobalamin",
        dose_mcg=1000,
        route="IM",
        status="given",
        administered_at=datetime(on.year, on.month, on.day, 10, tzinfo=UTC),
    )


def test_plasmic_is_incomplete_with_its_range_until_every_input_is_in(api: Any, patient: Patient) -> None:
    result(patient, "platelets", "12", date(2027, 1, 4))
    result(patient, "mcv", "85", date(2027, 1, 4))
    body = api.get(f"/api/patients/{patient.pk}/plasmic/").json()
    assert body["status"] == "incomplete"
    assert (body["min_score"], body["max_score"]) == (2, 7)
    assert body["score"] is None
    assert "not validated" in body["experimental_retic_variant"]["label"]


def test_plasmic_complete_uses_the_earliest_values_and_recorded_facts(api: Any, patient: Patient) -> None:
    day = date(2027, 1, 4)
    result(patient, "platelets", "12", day)
    result(patient, "platelets", "140", date(2027, 1, 20))  # later value: not the presentation
    result(patient, "reticulocytes_pct", "6", day)
    result(patient, "mcv", "85", day)
    result(patient, "inr", "1.1", day)
    result(patient, "creatinine", "90", day)
    LabResult.objects.create(
        patient=patient,
        analyte="schistocytes",
        loinc="800-3",
        value_as_entered="present",
        presence="present",
        collected_at=datetime(2027, 1, 4, 9, tzinfo=UTC),
    )
    PatientFact.objects.create(patient=patient, kind="active_cancer", absent=True)
    PatientFact.objects.create(patient=patient, kind="transplant", absent=True)
    body = api.get(f"/api/patients/{patient.pk}/plasmic/").json()
    assert (body["status"], body["score"], body["band"], body["applicable"]) == ("complete", 7, "high", True)
    platelets = next(c for c in body["components"] if c["letter"] == "P")
    assert platelets["evidence"]["value"] == "12.000000"
    later = api.get(f"/api/patients/{patient.pk}/plasmic/?since=2027-01-10").json()
    assert next(c for c in later["components"] if c["letter"] == "P")["points"] == 0


def test_trends_report_band_time_in_range_and_days_to_normal(api: Any, patient: Patient) -> None:
    give_first_dose(patient, date(2027, 1, 4))  # T0
    result(patient, "hemoglobin", "90", date(2027, 1, 4))  # baseline (female LLN 120)
    result(patient, "hemoglobin", "110", date(2027, 1, 18))
    result(patient, "hemoglobin", "130", date(2027, 2, 1))  # day 28: normal
    body = api.get(f"/api/patients/{patient.pk}/trends/?analytes=hemoglobin").json()
    assert body["t0"] == "2027-01-04"
    (hb,) = body["analytes"]
    assert hb["unit"] == "g/L"
    assert (hb["band"]["low"], hb["band"]["high"]) == ("120", "160")
    assert [p["day"] for p in hb["points"]] == [0, 14, 28]
    assert hb["normalization"] == {
        "status": "normalized",
        "baseline": {"value": "90", "on": "2027-01-04"},  # for people: no trailing zeros
        "normalized_on": "2027-02-01",
        "days_to_normal": 28,
    }
    # Linear 110 -> 130 over days 14..28 crosses 120 at day 21: days 21..27 of 28 are in range.
    assert hb["time_in_range"] == {"percent": 25.0, "days": 28, "since": "T0"}


def test_trends_use_the_reporting_labs_range_when_given(api: Any, patient: Patient) -> None:
    result(patient, "platelets", "140", date(2027, 1, 4), ref_low=Decimal(140), ref_high=Decimal(450))
    (platelets,) = api.get(f"/api/patients/{patient.pk}/trends/").json()["analytes"]
    assert (platelets["band"]["low"], platelets["band"]["source"]) == ("140", "reporting lab")


def test_an_unknown_analyte_is_a_400_naming_it(api: Any, patient: Patient) -> None:
    response = api.get(f"/api/patients/{patient.pk}/trends/?analytes=unobtainium")
    assert response.status_code == 400
    assert "analytes" in response.json()


def test_staff_of_another_clinic_cannot_see_them(patient: Patient, other_clinic: Any) -> None:
    outsider = client_for(staff_user(other_clinic, username="outsider"))
    assert outsider.get(f"/api/patients/{patient.pk}/plasmic/").status_code == 404
    assert outsider.get(f"/api/patients/{patient.pk}/trends/").status_code == 404


def test_anonymous_users_are_refused(anon_api: Any) -> None:
    patient = PatientFactory()
    assert anon_api.get(f"/api/patients/{patient.pk}/trends/").status_code in (401, 403)


# --- B12 status (RULES §5.1) ---------------------------------------------------------------------


def b12(patient: Patient, analyte: str, value: str, on: date, lab: str = "") -> LabResult:
    unit = "ng/L" if analyte == "b12_total" else "pmol/L"
    return LabResult.objects.create(
        patient=patient,
        analyte=analyte,
        loinc="x",
        value_as_entered=value,
        unit_as_entered=unit,
        value_canonical=Decimal(value),
        unit_canonical=unit,
        collected_at=datetime(on.year, on.month, on.day, 9, tzinfo=UTC),
        lab=lab,
    )


@pytest.mark.parametrize(
    ("total", "expected"),
    [("179", "deficient"), ("180", "indeterminate"), ("350", "indeterminate"), ("351", "unlikely")],
)
def test_b12_status_uses_the_ng239_cut_offs_by_default(patient: Patient, nurse: Any, total: str, expected: str):
    b12(patient, "b12_total", total, date(2027, 1, 2))

    body = client_for(nurse).get(f"/api/patients/{patient.pk}/b12-status/").json()

    assert body["status"] == expected
    assert body["cutoffs"] == "NG239"
    assert body["results"][0]["value"] == Decimal(total)


def test_b12_status_reads_a_labs_result_with_that_labs_cut_offs(patient: Patient, nurse: Any, settings: Any):
    settings.COBALT = {**settings.COBALT, "B12_LAB_CUTOFFS": {"St Mary's": "BSH-2014"}}
    b12(patient, "b12_total", "190", date(2027, 1, 2), lab="St Mary's")

    body = client_for(nurse).get(f"/api/patients/{patient.pk}/b12-status/").json()

    assert (body["status"], body["cutoffs"]) == ("deficient", "BSH-2014")  # < 200 there; indeterminate by NG239


def test_b12_status_takes_the_more_concerning_of_total_and_active(patient: Patient, nurse: Any):
    b12(patient, "b12_total", "400", date(2027, 1, 2))
    b12(patient, "b12_active", "20", date(2027, 1, 2))

    body = client_for(nurse).get(f"/api/patients/{patient.pk}/b12-status/").json()

    assert body["status"] == "deficient"


def test_b12_status_ignores_levels_taken_after_the_first_dose(
    patient: Patient, nurse: Any, builtin_protocols: None
) -> None:
    b12(patient, "b12_total", "120", date(2027, 1, 2))
    give_first_dose(patient, date(2027, 1, 4))
    b12(patient, "b12_total", "900", date(2027, 2, 4))  # on treatment: falsely reassuring (S-13)

    body = client_for(nurse).get(f"/api/patients/{patient.pk}/b12-status/").json()

    assert body["status"] == "deficient"
    assert body["t0"] == "2027-01-04"


def test_b12_status_is_unknown_without_a_level_and_hidden_from_other_clinics(
    patient: Patient, nurse: Any, other_clinic: Any
) -> None:
    assert client_for(nurse).get(f"/api/patients/{patient.pk}/b12-status/").json()["status"] == "unknown"
    outsider = staff_user(other_clinic)
    assert client_for(outsider).get(f"/api/patients/{patient.pk}/b12-status/").status_code == 404


def test_a_mistyped_cut_off_set_stops_the_system_check(settings: Any) -> None:
    from monitoring.checks import b12_cutoff_settings

    settings.COBALT = {**settings.COBALT, "B12_CUTOFFS": "NICE"}
    errors = b12_cutoff_settings(None)
    assert [e.id for e in errors] == ["cobalt.E001"]
    assert "NG239" in errors[0].msg


# --- PLASMIC "haptoglobin undetectable" (RULES §6.1): below the lab's detection limit ---------------------


def haptoglobin_points(api: Any, patient: Patient) -> Any:
    body = api.get(f"/api/patients/{patient.pk}/plasmic/").json()
    hemolysis = next(c for c in body["components"] if c["letter"] == "L")
    return hemolysis["evidence"]["haptoglobin"]["undetectable"], hemolysis["points"]


def hemolysis_negative_otherwise(patient: Patient) -> None:
    result(patient, "reticulocytes_pct", "0.5", date(2027, 1, 4))  # not > 2.5 %
    result(patient, "bilirubin_indirect", "10", date(2027, 1, 4))  # not > 34.2 umol/L


@pytest.mark.parametrize(
    ("value", "configured", "undetectable"),
    [
        ("0", None, True),  # entered as 0: undetectable, as before
        ("0.05", None, False),  # no detection limit configured (RULES gives none): as before
        ("0.05", "0.1", True),  # a "<0.1" entered as 0.05 keeps its point
        ("0.1", "0.1", False),  # at the limit: detected
        ("0.3", "0.1", False),
    ],
)
def test_it_counts_haptoglobin_below_the_detection_limit_as_undetectable(
    api: Any, patient: Patient, settings: Any, value: str, configured: str | None, undetectable: bool
) -> None:
    settings.COBALT = {**settings.COBALT, "HAPTOGLOBIN_DETECTION_LIMIT": configured or ""}
    hemolysis_negative_otherwise(patient)
    result(patient, "haptoglobin", value, date(2027, 1, 4))

    assert haptoglobin_points(api, patient) == (undetectable, int(undetectable))


def test_it_reads_the_reporting_labs_own_detection_limit(api: Any, patient: Patient, settings: Any) -> None:
    settings.COBALT = {
        **settings.COBALT,
        "HAPTOGLOBIN_DETECTION_LIMIT": "0.05",
        "HAPTOGLOBIN_LAB_DETECTION_LIMITS": {"St Mary's": "0.1"},
    }
    hemolysis_negative_otherwise(patient)
    result(patient, "haptoglobin", "0.08", date(2027, 1, 4), lab="St Mary's")

    assert haptoglobin_points(api, patient) == (True, 1)  # 0.08 < 0.1 there (not < the default 0.05)


def test_a_haptoglobin_written_below_a_limit_is_undetectable(api: Any, patient: Patient) -> None:
    hemolysis_negative_otherwise(patient)
    row = result(patient, "haptoglobin", "0.1", date(2027, 1, 4))
    LabResult.objects.filter(pk=row.pk).update(value_as_entered="<0.1")

    assert haptoglobin_points(api, patient) == (True, 1)


def test_a_mistyped_haptoglobin_detection_limit_stops_the_system_check(settings: Any) -> None:
    from monitoring.checks import haptoglobin_detection_limit_settings

    settings.COBALT = {
        **settings.COBALT,
        "HAPTOGLOBIN_DETECTION_LIMIT": "0,1",
        "HAPTOGLOBIN_LAB_DETECTION_LIMITS": {"St Mary's": "-1", "Good lab": "0.08"},
    }
    errors = haptoglobin_detection_limit_settings(None)
    assert [e.id for e in errors] == ["cobalt.E003", "cobalt.E003"]
    settings.COBALT = {**settings.COBALT, "HAPTOGLOBIN_DETECTION_LIMIT": "", "HAPTOGLOBIN_LAB_DETECTION_LIMITS": {}}
    assert haptoglobin_detection_limit_settings(None) == []


# --- Numbers for people in the trends --------------------------------------------------------------------


def test_trends_show_values_without_exponent_or_trailing_zeros(api: Any, patient: Patient) -> None:
    give_first_dose(patient, date(2027, 1, 4))
    result(patient, "hemoglobin", "100", date(2027, 1, 4))  # 100.000000 stored; normalize() gave "1E+2"
    result(patient, "hemoglobin", "121.4", date(2027, 1, 18))
    result(patient, "haptoglobin", "0.35", date(2027, 1, 4), ref_low=Decimal("0.3"), ref_high=Decimal(2))

    hb, hapto = api.get(f"/api/patients/{patient.pk}/trends/?analytes=hemoglobin,haptoglobin").json()["analytes"]

    assert [p["value"] for p in hb["points"]] == ["100", "121.4"]
    assert hb["normalization"]["baseline"]["value"] == "100"
    assert [p["value"] for p in hapto["points"]] == ["0.35"]
    assert (hapto["band"]["low"], hapto["band"]["high"]) == ("0.3", "2")
