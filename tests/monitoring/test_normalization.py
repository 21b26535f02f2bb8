"""Time to normalization of Hb and platelets on the dashboard: per patient (the list behind it, page and API)
and its distribution (API, page chart and table), checked against days counted by hand from the rows; the
query count does not grow with patients."""

from __future__ import annotations

import statistics
from typing import Any

import pytest
from django.test import Client

from patients.models import FactKind, Interpretation, LabResult, Role
from regimens.models import DoseStatus, Regimen, RegimenStatus, ScheduledDose
from tests.conftest import client_for
from tests.factories import (
    LabResultFactory,
    PatientFactFactory,
    PatientFactory,
    RegimenFactory,
    ScheduledDoseFactory,
    staff_user,
)
from tests.timeline import day, noon

pytestmark = pytest.mark.django_db

LOW, NORMAL, HIGH = Interpretation.LOW, Interpretation.NORMAL, Interpretation.HIGH


def treated(clinic: Any, first_dose: int, mrn: str, status: str = RegimenStatus.ACTIVE, **regimen: Any) -> Any:
    """A patient (or `regimen`'s) with a regimen whose first dose was given on day `first_dose` (its T0)."""
    fields = {"patient": PatientFactory(clinic=clinic, mrn=mrn), **regimen}
    made = RegimenFactory(start_date=day(first_dose), status=status, **fields)
    ScheduledDoseFactory(
        regimen=made, due_date=day(first_dose), status=DoseStatus.GIVEN, administered_at=noon(day(first_dose))
    )
    return made.patient


def result(patient: Any, on_day: int, interpretation: str, analyte: str = "hemoglobin", **fields: Any) -> Any:
    value = {LOW: "95", NORMAL: "135", HIGH: "450"}[interpretation] if analyte == "platelets" else None
    value = value or {LOW: "95", NORMAL: "135", HIGH: "190"}[interpretation]
    return LabResultFactory(
        patient=patient,
        analyte=analyte,
        loinc="777-3" if analyte == "platelets" else "718-7",
        value_as_entered=value,
        unit_as_entered="g/L" if analyte == "hemoglobin" else "10*9/L",
        unit_canonical="g/L" if analyte == "hemoglobin" else "10*9/L",
        interpretation=interpretation,
        collected_at=noon(day(on_day)),
        **fields,
    )


@pytest.fixture
def outcomes(clinic: Any, other_clinic: Any, clock: Any) -> dict[str, Any]:
    """Today is T0 (4 January 2027). Days are counted from each patient's first dose."""
    a = treated(clinic, -100, "A")  # Hb 20 days, platelets 10 days
    result(a, -102, LOW)
    result(a, -90, LOW)
    result(a, -80, NORMAL)
    result(a, -101, LOW, "platelets")
    result(a, -90, NORMAL, "platelets")
    b = treated(clinic, -100, "B")  # Hb 70 days: a normal result entered in error does not count
    result(b, -100, LOW)  # on T0: still the baseline
    result(b, -70, LOW)
    result(b, -60, NORMAL, error_reason="wrong patient", error_recorded_at=noon(day(-59)))
    result(b, -30, NORMAL)
    c = treated(clinic, -30, "C")  # Hb not yet (30 days so far): the normal Hb 5 days after a transfusion is not read
    result(c, -31, LOW)
    PatientFactFactory(patient=c, kind=FactKind.TRANSFUSION, onset_date=day(-25))
    result(c, -20, NORMAL)
    result(c, -5, LOW)
    d = treated(clinic, -100, "D")  # baseline Hb normal: nothing to normalize
    result(d, -101, NORMAL)
    result(d, -50, NORMAL)
    e = treated(clinic, -100, "E", options={"enrol": {"last_dose_date": day(-130).isoformat()}})  # V-1: no windows
    result(e, -101, LOW)
    result(e, -50, NORMAL)
    f = RegimenFactory(patient=PatientFactory(clinic=clinic, mrn="F"), start_date=day(-5)).patient  # no dose yet
    result(f, -6, LOW)
    # H: a stopped regimen long ago, and the current one whose first dose was on day -50 (V-1: its T0).
    h = treated(clinic, -300, "H", status=RegimenStatus.STOPPED)
    ScheduledDoseFactory(
        regimen=RegimenFactory(patient=h, start_date=day(-50)),
        due_date=day(-50),
        status=DoseStatus.GIVEN,
        administered_at=noon(day(-50)),
    )
    result(h, -200, NORMAL)
    result(h, -51, LOW)
    result(h, -20, NORMAL)
    g = treated(clinic, -100, "G")  # platelets: a rebound above the range reaches the target (>= LLN) on day 14
    result(g, -101, LOW, "platelets")
    result(g, -86, HIGH, "platelets")
    result(g, -60, NORMAL, "platelets")
    other = treated(other_clinic, -100, "A")  # another clinic's patient never counts
    result(other, -101, LOW)
    result(other, -90, NORMAL)
    return {"hb_days": {"A": 20, "B": 70, "H": 30}, "hb_not_yet": {"C": 30}, "plt_days": {"A": 10, "G": 14}}


def test_the_dashboard_reports_the_distribution(outcomes: Any, admin_api: Any) -> None:
    figures = admin_api.get("/api/dashboard/").json()["outcomes"]["time_to_normalization"]
    assert [b["band"] for b in figures["bands"]] == ["1-16", "17-32", "33-63", "64-104", "105+"]
    hb = figures["hemoglobin"]
    assert (hb["patients"], hb["normalized"], hb["not_yet"], hb["not_yet_past_target"]) == (4, 3, 1, 0)
    assert hb["median_days"] == statistics.median(outcomes["hb_days"].values()) == 30
    assert (hb["target_days"], hb["target_rule"]) == (63, "A-H4")
    # A (20) and H (30) by day 63; B (70) too late; C's day 63 has not come.
    assert (hb["normalized_by_target"], hb["target_judged"], hb["normalized_by_target_share"]) == (2, 3, 0.6667)
    assert {b["band"]: b["patients"] for b in hb["by_band"]} == {
        "1-16": 0,
        "17-32": 2,
        "33-63": 0,
        "64-104": 1,
        "105+": 0,
        "not_yet": 1,
    }
    plt = figures["platelets"]
    assert (plt["patients"], plt["normalized"], plt["median_days"], plt["target_rule"]) == (2, 2, 12, "A-P2")
    assert (plt["normalized_by_target"], plt["target_judged"]) == (2, 2)


def test_the_list_behind_it_gives_each_patients_days(outcomes: Any, admin_api: Any) -> None:
    body = admin_api.get("/api/dashboard/normalization/?analyte=hemoglobin").json()
    rows = {r["mrn"]: r for r in body["results"]}
    assert {m: r["days"] for m, r in rows.items() if r["days"] is not None} == outcomes["hb_days"]
    assert rows["C"]["days"] is None and rows["C"]["days_so_far"] == 30 and rows["C"]["band"] == "not_yet"
    assert rows["H"]["t0"] == day(-50).isoformat() and rows["H"]["normalized_on"] == day(-20).isoformat()
    assert rows["B"]["baseline_on"] == day(-100).isoformat()
    listed = admin_api.get("/api/dashboard/normalization/?analyte=hemoglobin&band=17-32").json()
    assert sorted(r["mrn"] for r in listed["results"]) == ["A", "H"]
    plt = admin_api.get("/api/dashboard/normalization/?analyte=platelets").json()
    assert {r["mrn"]: r["days"] for r in plt["results"]} == outcomes["plt_days"]
    assert admin_api.get("/api/dashboard/normalization/?analyte=sodium").status_code == 400


def test_it_matches_days_counted_from_the_rows(outcomes: Any, clinic: Any, admin_api: Any) -> None:
    """Each normalized patient's days, counted straight from the tables: the first dose given in the current
    regimen, then the first later Hb at or above the LLN not entered in error."""
    body = admin_api.get("/api/dashboard/normalization/?analyte=hemoglobin").json()
    normalized = [row for row in body["results"] if row["days"] is not None]
    assert len(normalized) == 3
    for row in normalized:
        regimen = Regimen.objects.filter(patient_id=row["patient"]).order_by("-start_date").first()
        assert regimen is not None
        t0 = ScheduledDose.objects.filter(regimen=regimen, status=DoseStatus.GIVEN).order_by("administered_at")[0]
        assert t0.administered_at is not None
        first = (
            LabResult.objects.filter(
                patient_id=row["patient"],
                analyte="hemoglobin",
                collected_at__gt=t0.administered_at,
                interpretation__in=[NORMAL, HIGH],
                error_recorded_at__isnull=True,
            )
            .order_by("collected_at")
            .first()
        )
        assert first is not None
        assert row["days"] == (first.collected_at - t0.administered_at).days
    summary = admin_api.get("/api/dashboard/").json()["outcomes"]["time_to_normalization"]["hemoglobin"]
    assert summary["normalized"] == len(normalized)
    assert summary["median_days"] == statistics.median(row["days"] for row in normalized)


def test_the_page_shows_the_api_numbers_and_lists_the_patients(outcomes: Any, clinic_admin: Any) -> None:
    browser = Client()
    browser.force_login(clinic_admin)
    html = browser.get("/dashboard/").content.decode()
    assert "Time to normalization" in html
    assert 'data-figure="A-H4-median">30<' in html
    assert 'data-figure="A-P2-median">12<' in html
    assert 'data-figure="A-H4-patients">4<' in html
    assert "2 of 3 whose day has come (67%)" in html
    assert "/dashboard/normalization/?clinic=" in html and "band=not_yet" in html
    page = browser.get("/dashboard/normalization/?analyte=hemoglobin&band=not_yet")
    assert page.status_code == 200
    listed = page.content.decode()
    assert "30 so far" in listed and ">C<" in listed and ">A<" not in listed
    everyone = browser.get("/dashboard/normalization/?analyte=hemoglobin").content.decode()
    assert all(f">{mrn}<" in everyone for mrn in ("A", "B", "C", "H"))
    assert ">D<" not in everyone and ">E<" not in everyone and ">F<" not in everyone


def test_the_list_is_for_the_clinic_admins_of_that_clinic(clinic: Any, other_clinic: Any, nurse: Any) -> None:
    assert client_for(nurse).get("/api/dashboard/normalization/").status_code == 403
    admin = staff_user(clinic, Role.ADMIN, username="admin-here")
    assert client_for(admin).get(f"/api/dashboard/normalization/?clinic={other_clinic.id}").status_code == 404
    browser = Client()
    browser.force_login(nurse)
    assert browser.get("/dashboard/normalization/").status_code == 403


def _grow(clinic: Any, patients: int) -> None:
    for n in range(patients):
        patient = treated(clinic, -60, f"P{n}")
        result(patient, -61, LOW)
        result(patient, -61, LOW, "platelets")
        result(patient, -40, NORMAL)
        result(patient, -50, NORMAL, "platelets")
        PatientFactFactory(patient=patient, onset_date=day(-45))


@pytest.mark.parametrize("patients", [2, 20])
def test_its_query_count_does_not_grow_with_patients(
    clinic: Any, clinic_admin: Any, clock: Any, patients: int, django_assert_max_num_queries: Any
) -> None:
    _grow(clinic, patients)
    api = client_for(clinic_admin)
    # The user's clinics (staff check), their memberships (admin check) and the four reads of
    # monitoring/normalization.py.
    with django_assert_max_num_queries(6):
        body = api.get("/api/dashboard/normalization/").json()
    assert body["count"] == 2 * patients
    browser = Client()
    browser.force_login(clinic_admin)
    # The same, the session, the user and the middleware's clinics, and the form's clinics.
    with django_assert_max_num_queries(9):
        assert browser.get("/dashboard/normalization/?analyte=platelets").status_code == 200
