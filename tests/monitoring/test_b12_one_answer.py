"""One pre-treatment B12 answer (RULES §5.1, §10 V-7): S-3, the trends' B12 entries and
/api/patients/{id}/b12-status/ read the same B12 (the latest before T0) with the same cut-offs (the reporting
lab's set, else the default), so they never disagree on one patient."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from notifications.models import Alert
from patients.models import Patient
from regimens.models import Protocol, ScheduledDose
from regimens.services import dose_record_administration, regimen_start
from tests.monitoring.conftest import Enter
from tests.timeline import T0, day, noon

pytestmark = pytest.mark.django_db



def start_treatment(patient: Patient, django_capture_on_commit_callbacks: Any) -> None:
    """T0: the first dose given at 10:00 on T0."""
    with time_machine.travel(noon(T0), tick=False), django_capture_on_commit_callbacks(execute=True):
        protocol = Protocol.objects.get(code="hydroxo-uk-standard")
        regimen = regimen_start(patient=patient, protocol=protocol, start_date=T0)
        first = ScheduledDose.objects.filter(regimen=regimen).order_by("due_date").first()
        assert first is not None
        dose_record_administration(dose=first, administered_at=datetime(2027, 1, 4, 10, tzinfo=UTC))


def tma_pattern(patient: Patient, enter: Enter, on: date) -> None:
    enter(patient, "hemoglobin", "85", "g/L", on)  # female LLN 120
    enter(patient, "platelets", "60", "10^9/L", on)
    enter(patient, "ldh", "3000", "U/L", on)


def three_answers(api: APIClient, patient: Patient) -> dict[str, Any]:
    status = api.get(f"/api/patients/{patient.pk}/b12-status/").json()
    trends = api.get(f"/api/patients/{patient.pk}/trends/?analytes=b12_total").json()
    (entry,) = trends["analytes"]
    alerts = {a.kind: a for a in Alert.objects.filter(patient=patient).exclude(status="resolved")}
    s3 = alerts.get("pseudo_tma_pattern") or alerts.get("tma_pattern_b12_not_low")
    return {"api": status, "trends": entry, "alerts": alerts, "s3": s3}


def test_it_gives_one_answer_for_a_b12_of_120_before_treatment(
    api: APIClient, patient: Patient, enter: Enter, django_capture_on_commit_callbacks: Any
) -> None:
    enter(patient, "b12_total", "120", "ng/L", day(-3))
    start_treatment(patient, django_capture_on_commit_callbacks)
    enter(patient, "b12_total", "900", "ng/L", day(20))  # on treatment: falsely reassuring (S-13)
    tma_pattern(patient, enter, day(21))

    answers = three_answers(api, patient)

    assert answers["api"]["status"] == "deficient"
    assert answers["trends"]["b12_status"] == {"status": "deficient", "cutoffs": "NG239"}
    assert answers["trends"]["normalization"]["status"] != "normal_at_baseline"  # was "normal at baseline"
    assert answers["trends"]["normalization"]["baseline"] == {"value": "120", "on": day(-3).isoformat()}
    assert answers["s3"].kind == "pseudo_tma_pattern"
    assert answers["s3"].evidence["b12"] == "deficient"


@pytest.mark.parametrize(
    ("lab_cutoffs", "status", "kind", "normalization"),
    [
        ({}, "unlikely", "tma_pattern_b12_not_low", "normal_at_baseline"),  # NG239: 380 > 350
        ({"Other lab": "AFP-2017"}, "indeterminate", "pseudo_tma_pattern", "not_yet_normal"),  # AFP: 200-400
    ],
)
def test_the_three_agree_at_the_reporting_labs_cut_offs(
    api: APIClient,
    patient: Patient,
    enter: Enter,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
    lab_cutoffs: dict[str, str],
    status: str,
    kind: str,
    normalization: str,
) -> None:
    settings.COBALT = {**settings.COBALT, "B12_LAB_CUTOFFS": lab_cutoffs}
    enter(patient, "b12_total", "380", "ng/L", day(-3), lab="Other lab")
    start_treatment(patient, django_capture_on_commit_callbacks)
    tma_pattern(patient, enter, day(2))

    answers = three_answers(api, patient)

    assert answers["api"]["status"] == status
    assert answers["trends"]["b12_status"]["status"] == status
    assert answers["trends"]["normalization"]["status"] == normalization
    assert answers["s3"].kind == kind
    assert answers["s3"].evidence["b12"] == status
    cutoffs = answers["api"]["cutoffs"]
    assert cutoffs == answers["trends"]["b12_status"]["cutoffs"] == answers["s3"].evidence["b12_cutoffs"]
    other = {"pseudo_tma_pattern", "tma_pattern_b12_not_low"} - {kind}
    assert not other & set(answers["alerts"])


def test_s3_reads_the_pre_treatment_b12_not_a_later_one(
    api: APIClient, patient: Patient, enter: Enter, django_capture_on_commit_callbacks: Any
) -> None:
    enter(patient, "b12_total", "100", "ng/L", day(-3))
    start_treatment(patient, django_capture_on_commit_callbacks)
    enter(patient, "b12_total", "1500", "ng/L", day(10))  # high on IM treatment
    tma_pattern(patient, enter, day(12))

    alerts = three_answers(api, patient)["alerts"]

    assert alerts["pseudo_tma_pattern"].evidence["b12"] == "deficient"
    assert "tma_pattern_b12_not_low" not in alerts


def test_a_b12_taken_only_after_t0_leaves_s3_pending(
    api: APIClient, patient: Patient, enter: Enter, django_capture_on_commit_callbacks: Any
) -> None:
    start_treatment(patient, django_capture_on_commit_callbacks)
    enter(patient, "b12_total", "1500", "ng/L", day(3))
    tma_pattern(patient, enter, day(5))

    answers = three_answers(api, patient)

    assert answers["api"]["status"] == "unknown"
    assert answers["trends"]["b12_status"]["status"] == "unknown"
    assert "B12: pending" in answers["alerts"]["pseudo_tma_pattern"].message


def test_a_b12_entered_in_error_is_not_read(
    api: APIClient, patient: Patient, enter: Enter, django_capture_on_commit_callbacks: Any
) -> None:
    from patients.models import LabResult

    wrong = enter(patient, "b12_total", "900", "ng/L", day(-4))
    LabResult.objects.filter(pk=wrong["id"]).update(error_recorded_at=noon(day(-4)), error_reason="other patient")
    enter(patient, "b12_total", "120", "ng/L", day(-5))
    start_treatment(patient, django_capture_on_commit_callbacks)

    assert api.get(f"/api/patients/{patient.pk}/b12-status/").json()["status"] == "deficient"
