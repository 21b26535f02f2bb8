"""API: entering lab results (one, or a panel), reading them back, and the analyte catalogue."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from patients.models import Clinic, LabResult, Patient, PatientFact
from tests.conftest import client_for
from tests.factories import PatientFactory, UserFactory, staff_user

pytestmark = pytest.mark.django_db

COLLECTED = "2026-11-02T09:30:00+00:00"


def enter(api: APIClient, patient: Patient, analyte: str, value: Any, unit: str, **extra: Any) -> Any:
    body = {"patient": patient.pk, "analyte": analyte, "value": value, "unit": unit, "collected_at": COLLECTED}
    return api.post("/api/lab-results/", {**body, **extra}, format="json")


# --- Units: every accepted unit converts to the canonical value ----------------------------------

CONVERSIONS = [
    ("hemoglobin", "120", "g/L", "120"),
    ("hemoglobin", "12.1", "g/dL", "121"),
    ("hemoglobin", "7.5", "mmol/L", "120.825"),  # RULES: mmol/L x 16.11
    ("platelets", "150", "10^9/L", "150"),
    ("platelets", "150", "x10^9/L", "150"),
    ("platelets", "150", "10^3/uL", "150"),
    ("platelets", "150", "K/uL", "150"),
    ("platelets", "150000", "/uL", "150"),  # §5.3: cells/uL = (x10^9/L) x 1000
    ("b12_total", "300", "ng/L", "300"),
    ("b12_total", "300", "pg/mL", "300"),  # §5.3: 1 pg/mL = 1 ng/L
    ("b12_total", "221.4", "pmol/L", "300"),  # §5.3: pmol/L = pg/mL x 0.738
    ("b12_total", "100", "pmol/L", "135.501355"),  # 100 / 0.738, stored to 6 places
    ("ldh", "200", "U/L", "200"),
    ("ldh", "200", "IU/L", "200"),
    ("ldh", "3.5", "ukat/L", "210"),  # §5.3: ukat/L x 60
    ("folate", "6", "ug/L", "6"),
    ("folate", "6", "µg/L", "6"),
    ("folate", "6", "ng/mL", "6"),
    ("folate", "13.596", "nmol/L", "6"),  # §5.3: nmol/L = ng/mL x 2.266
    ("creatinine", "80", "umol/L", "80"),
    ("creatinine", "80", "µmol/L", "80"),
    ("creatinine", "2.0", "mg/dL", "176.8"),  # §5.3: PLASMIC 2.0 mg/dL = 176.8 umol/L
]


@pytest.mark.parametrize(("analyte", "value", "unit", "canonical"), CONVERSIONS)
def test_it_converts_every_accepted_unit_to_the_canonical_unit(
    api: APIClient, patient: Patient, analyte: str, value: str, unit: str, canonical: str
) -> None:
    response = enter(api, patient, analyte, value, unit)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert Decimal(str(body["value_canonical"])) == Decimal(canonical)
    assert body["value"] == value
    assert body["unit"] == unit
    stored = LabResult.objects.get(pk=body["id"])
    assert stored.value_canonical == Decimal(canonical)
    assert stored.value_as_entered == value
    assert stored.unit_as_entered == unit


def test_it_returns_every_documented_field(api: APIClient, patient: Patient, nurse: Any) -> None:
    response = enter(api, patient, "hemoglobin", 11.8, "g/dL", reported_at="2026-11-02T15:00:00+00:00", lab="RLBUHT")

    assert response.status_code == 201
    body = response.json()
    assert body["analyte"] == "hemoglobin"
    assert body["loinc"] == "718-7"
    assert body["value"] == "11.8"  # a JSON number keeps its spelling
    assert body["value_canonical"] == 118
    assert body["unit_canonical"] == "g/L"
    assert body["interpretation"] == "low"
    assert body["source"] == "entered"
    assert body["entered_by"] == nurse.username
    assert body["lab"] == "RLBUHT"
    assert body["patient"] == patient.pk
    assert {"id", "presence", "ref_low", "ref_high", "collected_at", "reported_at", "note", "created_at"} <= set(body)


def test_it_accepts_the_preferred_loinc_and_stores_it(api: APIClient, patient: Patient) -> None:
    body = enter(api, patient, "718-7", "125", "g/L").json()

    assert (body["analyte"], body["loinc"]) == ("hemoglobin", "718-7")


def test_it_accepts_an_alternate_loinc_and_keeps_the_labs_code(api: APIClient, patient: Patient) -> None:
    # RULES §7.1: always store the lab's own LOINC if supplied.
    body = enter(api, patient, "26515-7", "200", "10^9/L").json()

    assert (body["analyte"], body["loinc"]) == ("platelets", "26515-7")


def test_it_stores_the_preferred_loinc_for_a_code(api: APIClient, patient: Patient) -> None:
    body = enter(api, patient, "ldh", "200", "U/L").json()

    assert body["loinc"] == "2532-0"


def test_it_records_schistocytes_as_present_or_absent(api: APIClient, patient: Patient) -> None:
    body = enter(api, patient, "schistocytes", "seen", "").json()

    assert body["presence"] == "present"
    assert body["interpretation"] == "present"
    assert body["value_canonical"] is None


# --- Interpretation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sex", "value", "expected"),
    [
        ("female", "119", "low"),
        ("female", "120", "normal"),  # exactly at the LLN is normal (RULES §5.2, WHO 120 g/L)
        ("male", "129", "low"),
        ("male", "130", "normal"),  # WHO 130 g/L
        ("male", "181", "high"),
        ("female", "69", "critically_low"),  # §3.3 A-H5: < 70 g/L
    ],
)
def test_it_interprets_hemoglobin_at_the_sex_specific_limits(
    api: APIClient, clinic: Clinic, sex: str, value: str, expected: str
) -> None:
    patient = PatientFactory(clinic=clinic, sex=sex)

    assert enter(api, patient, "hemoglobin", value, "g/L").json()["interpretation"] == expected


def test_it_uses_the_pregnancy_limit_when_a_pregnancy_covers_the_collection_date(
    api: APIClient, patient: Patient
) -> None:
    PatientFact.objects.create(patient=patient, kind="pregnancy", onset_date=date(2026, 9, 1))

    assert enter(api, patient, "hemoglobin", "112", "g/L").json()["interpretation"] == "normal"


def test_it_ignores_a_pregnancy_that_ended_or_was_checked_absent(api: APIClient, patient: Patient) -> None:
    PatientFact.objects.create(
        patient=patient, kind="pregnancy", onset_date=date(2025, 1, 1), end_date=date(2025, 9, 1)
    )
    PatientFact.objects.create(patient=patient, kind="pregnancy", absent=True)

    assert enter(api, patient, "hemoglobin", "112", "g/L").json()["interpretation"] == "low"


def test_the_labs_range_overrides_the_default(api: APIClient, patient: Patient) -> None:
    # Default female LLN 120 would call 11.5 g/dL low; this lab says 11.0-15.0 g/dL.
    body = enter(api, patient, "hemoglobin", "11.5", "g/dL", ref_low="11.0", ref_high="15.0").json()

    assert body["interpretation"] == "normal"
    assert (body["ref_low"], body["ref_high"]) == (110, 150)  # stored in the canonical unit


def test_a_lab_range_still_flags_a_critical_value(api: APIClient, patient: Patient) -> None:
    body = enter(api, patient, "hemoglobin", "6.5", "g/dL", ref_low=11, ref_high=15).json()

    assert body["interpretation"] == "critically_low"


def test_an_analyte_without_a_default_range_has_no_interpretation(api: APIClient, patient: Patient) -> None:
    assert enter(api, patient, "ferritin", "40", "ug/L").json()["interpretation"] == ""


# --- Bad input: 400 naming the field, and nothing stored ----------------------------------------

BAD_INPUTS = [
    ({"analyte": "vitamin-z"}, "analyte"),
    ({"analyte": "20646-6"}, "analyte"),  # homocystine, not homocysteine (§7.1)
    ({"unit": "mg/L"}, "unit"),
    ({"value": "NaN"}, "value"),
    ({"value": "inf"}, "value"),
    ({"value": "-Infinity"}, "value"),
    ({"value": "twelve"}, "value"),
    ({"value": ""}, "value"),
    ({"value": True}, "value"),
    ({"value": "350"}, "value"),  # RULES: hemoglobin above 300 g/L is impossible
    ({"value": "35", "unit": "g/dL"}, "value"),
    ({"value": "-1"}, "value"),
    ({"collected_at": "2026-11-02T09:30:00"}, "collected_at"),  # no offset
    ({"collected_at": "yesterday"}, "collected_at"),
    ({"reported_at": "2026-11-01T09:30:00+00:00"}, "reported_at"),
    ({"ref_low": "150", "ref_high": "120"}, "ref_low"),
    ({"ref_low": "-5"}, "ref_low"),
    ({"ref_high": "abc"}, "ref_high"),
    ({"lab": "x" * 101}, "lab"),
    ({"patient": 999999}, "patient"),
]


@pytest.mark.parametrize(("change", "field"), BAD_INPUTS)
def test_it_refuses_bad_input_naming_the_field_and_stores_nothing(
    api: APIClient, patient: Patient, change: dict[str, Any], field: str
) -> None:
    body = {"patient": patient.pk, "analyte": "hemoglobin", "value": "120", "unit": "g/L", "collected_at": COLLECTED}

    response = api.post("/api/lab-results/", {**body, **change}, format="json")

    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert LabResult.objects.count() == 0


def test_it_refuses_a_collection_time_in_the_future(api: APIClient, patient: Patient) -> None:
    later = (timezone.now() + timedelta(hours=1)).isoformat()

    response = enter(api, patient, "hemoglobin", "120", "g/L", collected_at=later)

    assert response.status_code == 400
    assert "collected_at" in response.json()
    assert LabResult.objects.count() == 0


def test_it_allows_a_few_minutes_of_clock_skew(api: APIClient, patient: Patient) -> None:
    soon = (timezone.now() + timedelta(minutes=4)).isoformat()

    assert enter(api, patient, "hemoglobin", "120", "g/L", collected_at=soon).status_code == 201


def test_it_refuses_a_unit_for_schistocytes(api: APIClient, patient: Patient) -> None:
    response = enter(api, patient, "schistocytes", "present", "g/L")

    assert response.status_code == 400
    assert "unit" in response.json()


def test_it_evaluates_the_patient_after_a_result(api: APIClient, patient: Patient) -> None:
    with mock.patch("tracker.events.announce_on_commit") as evaluate:
        enter(api, patient, "hemoglobin", "120", "g/L")

    evaluate.assert_called_once_with("patient.changed", patient_id=patient.pk)


# --- Panels -----------------------------------------------------------------------------------


def panel(patient: Patient, *results: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"patient": patient.pk, "collected_at": COLLECTED, "results": list(results), **extra}


def test_it_stores_a_panel_of_one_sample(api: APIClient, patient: Patient) -> None:
    body = panel(
        patient,
        {"analyte": "hemoglobin", "value": "10.5", "unit": "g/dL"},
        {"analyte": "777-3", "value": 90, "unit": "K/uL"},
        {"analyte": "mcv", "value": "112", "unit": "fL", "ref_low": 80, "ref_high": 100},
        lab="North Devon",
        reported_at="2026-11-02T16:00:00+00:00",
    )

    with mock.patch("tracker.events.announce_on_commit") as evaluate:
        response = api.post("/api/lab-results/panel/", body, format="json")

    assert response.status_code == 201, response.json()
    results = response.json()
    assert [(r["analyte"], r["value_canonical"], r["interpretation"]) for r in results] == [
        ("hemoglobin", 105, "low"),
        ("platelets", 90, "low"),
        ("mcv", 112, "high"),
    ]
    assert {r["lab"] for r in results} == {"North Devon"}
    assert LabResult.objects.filter(patient=patient).count() == 3
    evaluate.assert_called_once_with("patient.changed", patient_id=patient.pk)


def test_a_panel_with_one_bad_result_stores_nothing_and_names_it(api: APIClient, patient: Patient) -> None:
    body = panel(
        patient,
        {"analyte": "hemoglobin", "value": "105", "unit": "g/L"},
        {"analyte": "platelets", "value": "90", "unit": "g/L"},
        {"analyte": "mcv", "value": "9000", "unit": "fL"},
    )

    response = api.post("/api/lab-results/panel/", body, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"results[1].unit", "results[2].value"}
    assert LabResult.objects.count() == 0


def test_a_panel_names_a_missing_field_of_a_result(api: APIClient, patient: Patient) -> None:
    body = panel(patient, {"analyte": "hemoglobin", "value": "105", "unit": "g/L"}, {"analyte": "mcv", "unit": "fL"})

    response = api.post("/api/lab-results/panel/", body, format="json")

    assert response.status_code == 400
    assert "results[1].value" in response.json()
    assert LabResult.objects.count() == 0


def test_an_empty_panel_is_refused(api: APIClient, patient: Patient) -> None:
    response = api.post("/api/lab-results/panel/", panel(patient), format="json")

    assert response.status_code == 400
    assert "results" in response.json()


def test_a_panel_collected_in_the_future_is_refused(api: APIClient, patient: Patient) -> None:
    later = (timezone.now() + timedelta(days=1)).isoformat()
    body = panel(patient, {"analyte": "hemoglobin", "value": "105", "unit": "g/L"}, collected_at=later)

    response = api.post("/api/lab-results/panel/", body, format="json")

    assert response.status_code == 400
    assert "collected_at" in response.json()
    assert LabResult.objects.count() == 0


# --- Access -----------------------------------------------------------------------------------


@pytest.fixture
def foreign_patient(other_clinic: Clinic) -> Patient:
    return PatientFactory(clinic=other_clinic)


def test_staff_cannot_enter_results_for_another_clinics_patient(api: APIClient, foreign_patient: Patient) -> None:
    response = enter(api, foreign_patient, "hemoglobin", "120", "g/L")

    assert response.status_code == 400
    assert "patient" in response.json()
    assert LabResult.objects.count() == 0


def test_staff_cannot_enter_a_panel_for_another_clinics_patient(api: APIClient, foreign_patient: Patient) -> None:
    body = panel(foreign_patient, {"analyte": "hemoglobin", "value": "105", "unit": "g/L"})

    response = api.post("/api/lab-results/panel/", body, format="json")

    assert response.status_code == 400
    assert "patient" in response.json()


def test_staff_cannot_read_another_clinics_results(
    api: APIClient, patient: Patient, foreign_patient: Patient, other_clinic: Clinic
) -> None:
    theirs = enter(client_for(staff_user(other_clinic)), foreign_patient, "hemoglobin", "120", "g/L").json()
    mine = enter(api, patient, "hemoglobin", "120", "g/L").json()

    assert api.get(f"/api/lab-results/{theirs['id']}/").status_code == 404
    assert [r["id"] for r in api.get("/api/lab-results/").json()["results"]] == [mine["id"]]


def test_a_clinician_may_enter_results_too(clinician: Any, patient: Patient) -> None:
    assert enter(client_for(clinician), patient, "hemoglobin", "120", "g/L").status_code == 201


def test_anonymous_users_get_nothing(anon_api: APIClient, patient: Patient) -> None:
    assert anon_api.get("/api/lab-results/").status_code in (401, 403)
    assert enter(anon_api, patient, "hemoglobin", "120", "g/L").status_code in (401, 403)
    assert anon_api.get("/api/analytes/").status_code in (401, 403)
    assert LabResult.objects.count() == 0


def test_a_patient_portal_user_cannot_use_the_staff_api(patient: Patient) -> None:
    patient.user = UserFactory(username="portal-patient")
    patient.save(update_fields=["user"])
    portal = client_for(patient.user)

    assert portal.get("/api/lab-results/").status_code == 403
    assert enter(portal, patient, "hemoglobin", "120", "g/L").status_code == 403
    assert LabResult.objects.count() == 0


def test_results_cannot_be_changed_or_deleted(api: APIClient, patient: Patient) -> None:
    result = enter(api, patient, "hemoglobin", "120", "g/L").json()

    assert api.patch(f"/api/lab-results/{result['id']}/", {"value": "90"}, format="json").status_code == 405
    assert api.delete(f"/api/lab-results/{result['id']}/").status_code == 405
    assert LabResult.objects.get().value_as_entered == "120"


# --- Filters ----------------------------------------------------------------------------------


@pytest.fixture
def history(patient: Patient, clinic: Clinic) -> dict[str, Any]:
    other = PatientFactory(clinic=clinic)
    LabResult.objects.bulk_create(
        [
            LabResult(
                patient=patient,
                analyte="hemoglobin",
                loinc="718-7",
                value_as_entered="100",
                unit_as_entered="g/L",
                value_canonical=Decimal(100),
                unit_canonical="g/L",
                interpretation="low",
                # 00:30 on 1 October in London (BST): the patient's day, not the UTC one, counts.
                collected_at=datetime(2026, 9, 30, 23, 30, tzinfo=UTC),
            ),
            LabResult(
                patient=patient,
                analyte="hemoglobin",
                loinc="718-7",
                value_as_entered="125",
                unit_as_entered="g/L",
                value_canonical=Decimal(125),
                unit_canonical="g/L",
                interpretation="normal",
                collected_at=datetime(2026, 11, 1, 0, 30, tzinfo=UTC),
                source="imported",
            ),
            LabResult(
                patient=patient,
                analyte="platelets",
                loinc="26515-7",
                value_as_entered="90",
                unit_as_entered="10^9/L",
                value_canonical=Decimal(90),
                unit_canonical="10^9/L",
                interpretation="low",
                collected_at=datetime(2026, 10, 15, 9, tzinfo=UTC),
            ),
            LabResult(
                patient=other,
                analyte="hemoglobin",
                loinc="718-7",
                value_as_entered="140",
                unit_as_entered="g/L",
                value_canonical=Decimal(140),
                unit_canonical="g/L",
                interpretation="normal",
                collected_at=datetime(2026, 10, 20, 9, tzinfo=UTC),
            ),
        ]
    )
    return {"patient": patient, "other": other}


def values(api: APIClient, query: str) -> list[str]:
    response = api.get(f"/api/lab-results/?{query}")
    assert response.status_code == 200, response.json()
    return [r["value"] for r in response.json()["results"]]


def test_it_lists_newest_collection_first(api: APIClient, history: dict[str, Any]) -> None:
    assert values(api, "") == ["125", "140", "90", "100"]


def test_it_filters_by_patient(api: APIClient, history: dict[str, Any]) -> None:
    assert values(api, f"patient={history['other'].pk}") == ["140"]


def test_it_filters_by_analyte_code_or_any_loinc(api: APIClient, history: dict[str, Any]) -> None:
    assert values(api, "analyte=platelets") == ["90"]
    assert values(api, "analyte=777-3") == ["90"]
    assert values(api, "analyte=26515-7") == ["90"]


def test_an_unknown_analyte_filter_is_a_400(api: APIClient, history: dict[str, Any]) -> None:
    response = api.get("/api/lab-results/?analyte=unobtainium")

    assert response.status_code == 400
    assert "analyte" in response.json()


def test_it_filters_by_collection_dates(api: APIClient, history: dict[str, Any]) -> None:
    assert values(api, "collected_from=2026-10-15&collected_to=2026-10-31") == ["140", "90"]
    assert values(api, "collected_from=2026-11-01") == ["125"]
    assert values(api, "collected_to=2026-10-01") == ["100"]
    assert values(api, "collected_to=2026-09-30") == []


def test_it_filters_by_interpretation_and_source(api: APIClient, history: dict[str, Any]) -> None:
    assert values(api, "interpretation=low") == ["90", "100"]
    assert values(api, "source=imported") == ["125"]


def test_a_bad_filter_value_is_a_400(api: APIClient, history: dict[str, Any]) -> None:
    assert api.get("/api/lab-results/?collected_from=soon").status_code == 400
    assert api.get("/api/lab-results/?interpretation=dreadful").status_code == 400


# --- Catalogue --------------------------------------------------------------------------------


def test_the_catalogue_lists_codes_loinc_and_units(api: APIClient) -> None:
    response = api.get("/api/analytes/")

    assert response.status_code == 200
    by_code = {a["code"]: a for a in response.json()}
    assert by_code["hemoglobin"]["loinc"] == "718-7"
    assert by_code["hemoglobin"]["canonical_unit"] == "g/L"
    assert [u["symbol"] for u in by_code["hemoglobin"]["units"]] == ["g/L", "g/dL", "mmol/L"]
    assert by_code["platelets"]["alternate_loinc"] == ["26515-7"]
    assert by_code["schistocytes"]["kind"] == "qualitative"


# --- Admin: view only, scoped to the admin's clinics ---------------------------------------------


def test_the_admin_lists_results_view_only_and_filters_them(admin_client: Any, history: dict[str, Any]) -> None:
    listing = admin_client.get("/admin/patients/labresult/?analyte=platelets&interpretation=low&source=entered")
    result = LabResult.objects.get(analyte="platelets")

    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 1
    assert admin_client.get("/admin/patients/labresult/add/").status_code == 403
    detail = admin_client.get(f"/admin/patients/labresult/{result.pk}/change/")
    assert detail.status_code == 200
    assert detail.context["has_change_permission"] is False
    assert detail.context["has_delete_permission"] is False


def test_a_clinic_admin_sees_only_their_clinics_results(
    client: Any, clinic: Clinic, other_clinic: Clinic, history: dict[str, Any]
) -> None:
    from django.contrib.auth.models import Permission

    from patients.models import ClinicMembership, Role
    from tests.conftest import assert_admin_refused

    clinic_admin = UserFactory(username="clinic-admin", is_staff=True)
    ClinicMembership.objects.create(user=clinic_admin, clinic=clinic, role=Role.ADMIN)
    clinic_admin.user_permissions.add(Permission.objects.get(codename="view_labresult"))
    hidden = LabResult.objects.create(
        patient=PatientFactory(clinic=other_clinic),
        analyte="hemoglobin",
        loinc="718-7",
        value_as_entered="99",
        collected_at=datetime(2026, 10, 1, tzinfo=UTC),
    )
    client.force_login(clinic_admin)

    # The admin is the superusers' tool: a clinic admin is pointed to the web app.
    assert_admin_refused(client.get("/admin/patients/labresult/"))
    assert_admin_refused(client.get(f"/admin/patients/labresult/{hidden.pk}/change/"))
    # Its clinic scoping stays: the same user would see only their clinic's four results.
    from django.contrib import admin

    from tests.conftest import admin_request

    scoped = admin.site._registry[LabResult].get_queryset(admin_request(clinic_admin))
    assert scoped.count() == 4 and not scoped.filter(pk=hidden.pk).exists()
