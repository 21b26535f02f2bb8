"""RULES §10 V-12: the S-2 low-platelet warning (and the other point-of-care warnings) shows on a planned
dose before the injection, not only when the nurse records it; it is the same warning the recording asks
to acknowledge."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from patients.models import LabResult, PatientFact
from regimens import services
from regimens.models import Protocol, Regimen, ScheduledDose

pytestmark = pytest.mark.django_db

TODAY = "2026-12-01 09:00:00+00:00"
DOSE_DAY = "2027-01-04 09:00:00+00:00"


@pytest.fixture
def regimen(patient: Any) -> Regimen:
    with time_machine.travel(TODAY, tick=False):
        return services.regimen_start(
            patient=patient, protocol=Protocol.objects.get(code="hydroxo-uk-standard"), start_date=date(2027, 1, 4)
        )


def first(regimen: Regimen) -> ScheduledDose:
    return regimen.doses.get(phase="loading", sequence=1)


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


def test_the_dose_detail_shows_the_low_platelet_warning_before_the_injection(
    api: APIClient, patient: Any, regimen: Regimen
) -> None:
    # Given a planned IM dose today and a platelet count of 45 two days ago
    dose = first(regimen)
    platelets(patient, "45", datetime(2027, 1, 2, 9, 0, tzinfo=UTC))

    with time_machine.travel(DOSE_DAY, tick=False):
        # When the nurse opens the dose
        shown = api.get(f"/api/doses/{dose.pk}/")
        # and records it without acknowledging
        refused = api.post(f"/api/doses/{dose.pk}/administer/", {"administered_at": "2027-01-04T09:00:00Z"})

    # Then the detail carries the S-2 warning, exactly as the recording's 400 body does
    assert shown.status_code == 200
    [warning] = shown.json()["warnings"]
    assert (warning["code"], warning["rule"]) == ("im_injection_low_platelets", "S-2")
    assert warning["details"]["platelets"] == 45
    assert "deep SC" in warning["message"]
    assert refused.json()["warnings"] == shown.json()["warnings"]
    # and showing it writes nothing
    dose.refresh_from_db()
    assert (dose.status, dose.acknowledged_warnings) == ("planned", [])


@pytest.mark.parametrize(("value", "warned"), [("49", True), ("50", False)])
def test_the_dose_detail_applies_the_s2_threshold_exactly(
    api: APIClient, patient: Any, regimen: Regimen, value: str, warned: bool
) -> None:
    platelets(patient, value, datetime(2027, 1, 3, 9, 0, tzinfo=UTC))

    with time_machine.travel(DOSE_DAY, tick=False):
        codes = [w["code"] for w in api.get(f"/api/doses/{first(regimen).pk}/").json()["warnings"]]

    assert codes == (["im_injection_low_platelets"] if warned else [])


@pytest.mark.parametrize(
    ("viewed", "warned"), [("2027-01-04 09:00:00+00:00", False), ("2027-01-05 09:00:00+00:00", True)]
)
def test_the_dose_detail_judges_the_lookback_as_of_now(
    api: APIClient, patient: Any, regimen: Regimen, viewed: str, warned: bool
) -> None:
    # A count of 90 taken on 28 December is 7 days old on 4 January (recent) and 8 days old on the 5th
    platelets(patient, "90", datetime(2026, 12, 28, 9, 0, tzinfo=UTC))

    with time_machine.travel(viewed, tick=False):
        codes = [w["code"] for w in api.get(f"/api/doses/{first(regimen).pk}/").json()["warnings"]]

    assert codes == (["im_injection_low_platelets"] if warned else [])


def test_a_recorded_dose_shows_no_warning(api: APIClient, patient: Any, regimen: Regimen) -> None:
    dose = first(regimen)
    platelets(patient, "45", datetime(2027, 1, 2, 9, 0, tzinfo=UTC))
    with time_machine.travel(DOSE_DAY, tick=False):
        given = api.post(
            f"/api/doses/{dose.pk}/administer/",
            {"administered_at": "2027-01-04T09:00:00Z", "acknowledge": ["im_injection_low_platelets"]},
            format="json",
        )
        assert given.status_code == 200, given.json()

        assert api.get(f"/api/doses/{dose.pk}/").json()["warnings"] == []


def test_the_dose_detail_shows_an_allergy_recorded_after_the_start(
    api: APIClient, patient: Any, regimen: Regimen
) -> None:
    PatientFact.objects.create(patient=patient, kind="cobalamin_allergy", note="urticaria")

    with time_machine.travel(DOSE_DAY, tick=False):
        [warning] = api.get(f"/api/doses/{first(regimen).pk}/").json()["warnings"]

    assert (warning["code"], warning["rule"]) == ("cobalamin_allergy", "S-11")


def test_the_worklist_carries_warnings_only_when_asked(api: APIClient, patient: Any, regimen: Regimen) -> None:
    platelets(patient, "45", datetime(2027, 1, 2, 9, 0, tzinfo=UTC))

    with time_machine.travel(DOSE_DAY, tick=False):
        plain = api.get(f"/api/doses/?regimen={regimen.pk}&due_to=2027-01-05")
        asked = api.get(f"/api/doses/?regimen={regimen.pk}&warnings=true")

    assert "warnings" not in plain.json()["results"][0]
    rows = {row["id"]: row for row in asked.json()["results"]}
    assert [w["code"] for w in rows[first(regimen).pk]["warnings"]] == ["im_injection_low_platelets"]


def test_the_worklist_refuses_a_warnings_value_it_cannot_read(api: APIClient, regimen: Regimen) -> None:
    response = api.get("/api/doses/?warnings=maybe")

    assert response.status_code == 400
    assert "warnings" in response.json()


def test_the_answers_to_an_acknowledged_dose_and_its_error_mark_are_the_rows_as_they_read_back(
    api: APIClient, clinician_api: APIClient, patient: Any, regimen: Regimen
) -> None:
    # The answer of a dose write is rendered from the row the service wrote (issue 16): with what was acknowledged,
    # and once entered in error with who marked it, why and when, it reads back the same.
    dose = first(regimen)
    platelets(patient, "45", datetime(2027, 1, 2, 9, 0, tzinfo=UTC))
    body = {"administered_at": "2027-01-04T09:00:00Z", "acknowledge": ["im_injection_low_platelets"]}

    with time_machine.travel(DOSE_DAY, tick=False):
        given = api.post(f"/api/doses/{dose.pk}/administer/", body, format="json")
        marked = clinician_api.post(
            f"/api/doses/{dose.pk}/entered-in-error/", {"reason": "recorded on the wrong patient"}, format="json"
        )
        read = api.get(f"/api/doses/{dose.pk}/").json()

    assert given.status_code == 200 and marked.status_code == 200, (given.json(), marked.json())
    assert given.json()["acknowledged_warnings"] == ["im_injection_low_platelets"]
    assert marked.json()["status"] == "entered_in_error" and marked.json()["error_recorded_by"] is not None
    assert {**marked.json(), "warnings": []} == read
    assert {k: v for k, v in given.json().items() if not k.startswith("error") and k != "status"} == {
        k: v for k, v in read.items() if not k.startswith("error") and k not in ("status", "warnings")
    }
