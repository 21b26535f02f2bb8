"""Issue 12: a repeated lab-result POST stores one row, also when twenty arrive at once; an impossible zero
hemoglobin is refused."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from patients.labs.services import lab_result_record
from patients.models import LabResult
from tests.conftest import client_for
from tests.factories import ClinicFactory, PatientFactory, staff_user

BODY = {"analyte": "hemoglobin", "value": "112", "unit": "g/L", "collected_at": "2026-11-02T09:30:00+00:00"}


@pytest.mark.django_db
def test_an_identical_repeat_post_answers_200_with_the_stored_row(api: APIClient, patient: Any, clock: Any) -> None:
    first = api.post("/api/lab-results/", {**BODY, "patient": patient.pk})
    again = api.post("/api/lab-results/", {**BODY, "patient": patient.pk, "value": "11.2", "unit": "g/dL"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert LabResult.objects.count() == 1
    # A different value, time or a result entered in error is a new row.
    other = api.post("/api/lab-results/", {**BODY, "patient": patient.pk, "value": "113"})
    assert other.status_code == 201
    # The nurse entered it: she may mark it entered in error.
    assert api.post(f"/api/lab-results/{first.json()['id']}/entered-in-error/",
                              {"reason": "wrong patient's tube"}).status_code == 200  # fmt: skip
    assert api.post("/api/lab-results/", {**BODY, "patient": patient.pk}).status_code == 201
    assert LabResult.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_identical_posts_store_one_row(clock: Any) -> None:
    clinic = ClinicFactory()
    patient = PatientFactory(clinic=clinic)
    nurse = staff_user(clinic, username="concurrent-nurse")

    def post(_: int) -> int:
        try:
            response = client_for(nurse).post("/api/lab-results/", {**BODY, "patient": patient.pk}, format="json")
            return int(response.status_code)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=10) as pool:
        codes = list(pool.map(post, range(20)))
    assert sorted(codes) == [200] * 19 + [201]
    assert LabResult.objects.filter(patient=patient).count() == 1


@pytest.mark.django_db
def test_the_service_says_whether_the_row_is_new(patient: Any, clock: Any) -> None:
    from datetime import UTC, datetime

    when = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    given = {"patient": patient, "analyte": "platelets", "value": "140", "unit": "10^9/L", "collected_at": when}
    row, created = lab_result_record(**given)
    same, again = lab_result_record(**given)
    assert (created, again, same.pk) == (True, False, row.pk)


@pytest.mark.django_db
def test_a_hemoglobin_of_zero_is_refused_naming_the_value_and_nothing_is_stored(
    api: APIClient, patient: Any, clock: Any
) -> None:
    # Issue 12: "hemoglobin 0 g/L" was accepted. Zero is outside the physically possible range (RULES first
    # section); a very low real value is still recorded (and raises the alerts a very low value raises).
    refused = api.post("/api/lab-results/", {**BODY, "patient": patient.pk, "value": "0"})
    assert refused.status_code == 400
    assert "zero" in refused.json()["value"][0]
    assert not LabResult.objects.exists()
    assert api.post("/api/lab-results/", {**BODY, "patient": patient.pk, "value": "1"}).status_code == 201


@pytest.mark.django_db
def test_a_repeated_qualitative_result_is_the_stored_row_and_another_lab_or_finding_a_new_one(
    patient: Any, clock: Any
) -> None:
    from datetime import UTC, datetime

    when = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    smear = {"patient": patient, "analyte": "schistocytes", "unit": "", "collected_at": when, "lab": "RVH"}
    row, created = lab_result_record(**smear, value="present")
    assert created and row.value_canonical is None and row.presence == "present"

    # The same finding (as the lab words it) is the stored row; another finding, another lab or a numeric result
    # of the same moment are new rows
    assert lab_result_record(**smear, value="seen") == (row, False)
    assert lab_result_record(**smear, value="absent")[1]
    assert lab_result_record(**{**smear, "lab": "Other lab"}, value="present")[1]
    assert lab_result_record(**{**smear, "analyte": "platelets", "unit": "10^9/L"}, value="140")[1]
    assert lab_result_record(**{**smear, "analyte": "platelets", "unit": "10^9/L"}, value="140")[1] is False
    assert LabResult.objects.filter(patient=patient).count() == 4
