"""MMA in the pre-treatment B12 status (RULES §5.1: MMA sits in the "Deficiency confirmed" column, "Elevated =
functional deficiency"; ULN the reporting lab's, else the §8 Q4 fallback 400 nmol/L [P]).

A total B12 of 400 ng/L is "deficiency unlikely" by NG239, but with an MMA of 1500 nmol/L before T0 the status is
"deficient" (functional) where people read it (/b12-status/, the trends). Nitrous-oxide patients often have a
normal serum B12 with a raised MMA. S-3 keeps reading the B12 levels alone: MMA also rises with kidney
impairment, which a true TMA often brings (§8 Q4), so a raised MMA never turns "TMA pattern without low B12:
exclude TTP urgently" (`tma_pattern_b12_not_low`, §10 V-7) into the pseudo-TMA banner. An MMA not above its ULN
changes nothing; an MMA taken after T0 is not pre-treatment.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from rest_framework.test import APIClient

from notifications.models import Alert
from patients.models import Patient
from tests.monitoring.conftest import Enter
from tests.timeline import day, start_treatment

pytestmark = pytest.mark.django_db

S3_KINDS = {"pseudo_tma_pattern", "tma_pattern_b12_not_low"}


def tma_pattern(patient: Patient, enter: Enter, on: date) -> None:
    """Hb, platelets and a haemolysis marker abnormal on one day (S-3's laboratory pattern)."""
    enter(patient, "hemoglobin", "85", "g/L", on)  # below every Hb LLN
    enter(patient, "platelets", "60", "10^9/L", on)
    enter(patient, "ldh", "3000", "U/L", on)


def answers(api: APIClient, patient: Patient) -> dict[str, Any]:
    status = api.get(f"/api/patients/{patient.pk}/b12-status/").json()
    trends = {e["analyte"]: e for e in api.get(f"/api/patients/{patient.pk}/trends/").json()["analytes"]}
    alerts = {a.kind: a for a in Alert.objects.filter(patient=patient, kind__in=S3_KINDS).exclude(status="resolved")}
    return {"api": status, "trends": trends, "alerts": alerts}


def test_b12_400_with_mma_1500_before_t0_is_functional_deficiency_but_s3_still_asks_to_exclude_ttp(
    api: APIClient, patient: Patient, enter: Enter
) -> None:
    enter(patient, "b12_total", "400", "ng/L", day(-3))  # NG239: > 350, "deficiency unlikely" on its own
    mma = enter(patient, "mma", "1500", "nmol/L", day(-3))  # above the 400 nmol/L fallback ULN
    start_treatment(patient)
    tma_pattern(patient, enter, day(2))

    got = answers(api, patient)

    assert got["api"]["status"] == "deficient"
    functional = got["api"]["functional_deficiency"]
    assert (functional["result_id"], functional["value"], functional["uln"]) == (mma["id"], "1500", "400")
    readings = {r["analyte"]: r["reading"] for r in got["api"]["results"]}
    assert readings == {"b12_total": "unlikely", "mma": "elevated"}
    b12_entry = got["trends"]["b12_total"]
    assert b12_entry["b12_status"]["status"] == "deficient"
    assert b12_entry["b12_status"]["functional"]["value"] == "1500"
    assert b12_entry["normalization"]["status"] != "normal_at_baseline"
    assert got["trends"]["mma"]["b12_status"]["status"] == "deficient"
    assert set(got["alerts"]) == {"tma_pattern_b12_not_low"}  # the B12 level is not low: exclude TTP first
    assert got["alerts"]["tma_pattern_b12_not_low"].evidence["b12"] == "unlikely"


def test_mma_above_the_reporting_labs_own_upper_limit_counts(api: APIClient, patient: Patient, enter: Enter) -> None:
    enter(patient, "b12_total", "400", "ng/L", day(-3))
    enter(patient, "mma", "300", "nmol/L", day(-3), ref_high="271")  # below the fallback 400, above the lab's 271
    start_treatment(patient)
    tma_pattern(patient, enter, day(2))

    got = answers(api, patient)

    assert got["api"]["status"] == "deficient"
    assert got["api"]["functional_deficiency"]["uln_source"] == "reporting lab"


def test_mma_alone_before_t0_when_elevated_gives_deficient_and_s3_reads_the_level_as_pending(
    api: APIClient, patient: Patient, enter: Enter
) -> None:
    enter(patient, "mma", "0.9", "umol/L", day(-2))  # 900 nmol/L
    start_treatment(patient)
    tma_pattern(patient, enter, day(2))

    got = answers(api, patient)

    assert got["api"]["status"] == "deficient"
    assert "B12: pending" in got["alerts"]["pseudo_tma_pattern"].message  # no level yet: pending counts as low


@pytest.mark.parametrize("mma_value", ["250", "400"])  # 400 = the ULN itself: not above it
def test_an_mma_not_above_its_upper_limit_changes_nothing(
    api: APIClient, patient: Patient, enter: Enter, mma_value: str
) -> None:
    enter(patient, "b12_total", "400", "ng/L", day(-3))
    enter(patient, "mma", mma_value, "nmol/L", day(-3))
    start_treatment(patient)
    tma_pattern(patient, enter, day(2))

    got = answers(api, patient)

    assert got["api"]["status"] == "unlikely"
    assert got["api"]["functional_deficiency"] is None
    assert {r["analyte"]: r["reading"] for r in got["api"]["results"]}["mma"] == "not_elevated"
    assert got["trends"]["b12_total"]["b12_status"] == {"status": "unlikely", "cutoffs": "NG239"}
    assert got["trends"]["b12_total"]["normalization"]["status"] == "normal_at_baseline"
    assert set(got["alerts"]) == {"tma_pattern_b12_not_low"}


def test_a_normal_mma_does_not_lower_a_low_or_pending_b12(api: APIClient, patient: Patient, enter: Enter) -> None:
    """§5.1 gives MMA no "indeterminate" or "unlikely" reading: a normal MMA leaves an indeterminate B12
    indeterminate, and with no B12 level the status stays unknown (S-3: pending)."""
    enter(patient, "mma", "200", "nmol/L", day(-3))
    start_treatment(patient)
    tma_pattern(patient, enter, day(2))

    got = answers(api, patient)

    assert got["api"]["status"] == "unknown"
    assert "B12: pending" in got["alerts"]["pseudo_tma_pattern"].message


def test_an_mma_taken_after_t0_is_not_pre_treatment(api: APIClient, patient: Patient, enter: Enter) -> None:
    enter(patient, "b12_total", "400", "ng/L", day(-3))
    start_treatment(patient)
    enter(patient, "mma", "1500", "nmol/L", day(1))  # after the first dose: not read (S-13)
    tma_pattern(patient, enter, day(2))

    got = answers(api, patient)

    assert got["api"]["status"] == "unlikely"
    assert got["api"]["functional_deficiency"] is None
    assert [r["analyte"] for r in got["api"]["results"]] == ["b12_total"]
    assert set(got["alerts"]) == {"tma_pattern_b12_not_low"}


def test_an_mma_on_the_day_of_the_first_dose_is_not_pre_treatment(
    api: APIClient, patient: Patient, enter: Enter
) -> None:
    """Strictly before T0's date, as for B12 (§10 V-7, D-59): a same-day sample may follow the dose."""
    enter(patient, "b12_total", "400", "ng/L", day(-3))
    enter(patient, "mma", "1500", "nmol/L", day(0))
    start_treatment(patient)

    assert api.get(f"/api/patients/{patient.pk}/b12-status/").json()["status"] == "unlikely"


def test_the_latest_pre_treatment_mma_decides(api: APIClient, patient: Patient, enter: Enter) -> None:
    enter(patient, "b12_total", "400", "ng/L", day(-10))
    enter(patient, "mma", "1500", "nmol/L", day(-10))
    enter(patient, "mma", "250", "nmol/L", day(-2))  # the latest before T0 is normal
    start_treatment(patient)

    assert api.get(f"/api/patients/{patient.pk}/b12-status/").json()["status"] == "unlikely"


def test_the_admin_trends_page_names_the_functional_deficiency(
    client: Any, admin_user: Any, patient: Patient, enter: Enter
) -> None:
    enter(patient, "b12_total", "400", "ng/L", day(-3))
    enter(patient, "mma", "1500", "nmol/L", day(-3))
    start_treatment(patient)
    client.force_login(admin_user)  # at the test clock's time, so the session is current

    response = client.get(f"/admin/patients/patient/{patient.pk}/trends/")
    assert response.status_code == 200
    page = response.content.decode()

    assert "B12 status before treatment: <strong>deficient</strong>" in page
    assert "functional deficiency: MMA 1500 nmol/L above its upper limit 400" in page
