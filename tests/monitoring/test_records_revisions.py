"""Monitoring after the clinical revisions of RULES §10: a lab result entered in error is read by no rule
and what it caused is re-evaluated (V-14); rechecks are closed by results the V-10 way (one S-15 task per
analyte set and window, L-11 met by B12 or MMA, L-8 when breastfeeding); S-4 counts from a slot's original
due date (V-11)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from rest_framework.test import APIClient

from monitoring.safety import platelet_warning
from monitoring.selectors import b12_status_for, trends_for
from notifications.models import Alert
from patients.models import FactKind, LabResult, Patient, Role
from regimens.models import LabRecheck, Protocol, RecheckStatus
from regimens.services import dose_record_not_given, regimen_start
from tests.conftest import client_for
from tests.factories import LabResultFactory, PatientFactFactory, staff_user
from tests.monitoring.conftest import Enter
from tests.timeline import T0, day, noon, start_treatment

pytestmark = pytest.mark.django_db



@pytest.fixture
def mark(django_capture_on_commit_callbacks: Any) -> Callable[..., Any]:
    def post(client: APIClient, result_id: int, reason: str = "entered on the wrong patient") -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(f"/api/lab-results/{result_id}/entered-in-error/", {"reason": reason}, format="json")

    return post


def open_alert(patient: Patient, kind: str) -> Alert | None:
    return Alert.objects.filter(patient=patient, kind=kind).exclude(status="resolved").first()


# --- V-14: a lab result entered in error ---------------------------------------------------------------


def test_it_lets_whoever_entered_a_result_mark_it_entered_in_error_and_keeps_it_listed(
    patient: Patient, nurse: Any, api: APIClient, enter: Enter, mark: Any
) -> None:
    result_id = enter(patient, "hemoglobin", "100", "g/L", T0)["id"]

    response = mark(api, result_id)

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["entered_in_error"] is True
    assert (body["error_reason"], body["error_recorded_by"]) == ("entered on the wrong patient", "nurse")
    assert body["error_recorded_at"] is not None
    listed = api.get(f"/api/lab-results/?patient={patient.pk}").json()["results"]
    assert [(r["id"], r["entered_in_error"]) for r in listed] == [(result_id, True)]


def test_it_refuses_another_nurse_and_gives_the_author_7_days(
    patient: Patient, clinic: Any, enter: Enter, mark: Any, clock: Any, clinician_api: APIClient
) -> None:
    result_id = enter(patient, "hemoglobin", "100", "g/L", T0)["id"]
    colleague = client_for(staff_user(clinic, Role.NURSE, username="colleague"))
    assert mark(colleague, result_id).status_code == 403

    clock.move_to(noon(T0) + timedelta(days=7, hours=2))
    author_late = mark(client_for(LabResult.objects.get(pk=result_id).entered_by), result_id)
    assert author_late.status_code == 403
    assert mark(clinician_api, result_id).status_code == 200


def test_it_needs_a_reason_and_refuses_a_second_different_reason(
    patient: Patient, api: APIClient, enter: Enter, mark: Any
) -> None:
    result_id = enter(patient, "hemoglobin", "100", "g/L", T0)["id"]

    blank = mark(api, result_id, " ")
    assert blank.status_code == 400 and "reason" in blank.json()
    assert mark(api, result_id).status_code == 200
    assert mark(api, result_id).status_code == 200
    assert mark(api, result_id, "another reason").status_code == 409


def test_the_alert_a_result_entered_in_error_opened_resolves_on_re_evaluation(
    patient: Patient, api: APIClient, enter: Enter, mark: Any
) -> None:
    # Given a slow Hb rise at day 14 (A-H2) opened by the day-14 result
    start_treatment(patient)
    enter(patient, "hemoglobin", "100", "g/L", T0)
    wrong = enter(patient, "hemoglobin", "102", "g/L", day(14))["id"]
    assert open_alert(patient, "hemoglobin_slow_rise") is not None

    # When that result is marked entered in error
    assert mark(api, wrong).status_code == 200

    # Then the alert no longer holds and resolves, saying why
    alert = Alert.objects.get(patient=patient, kind="hemoglobin_slow_rise")
    assert alert.status == "resolved"
    assert "entered in error" in alert.resolution


def test_an_alert_still_held_by_other_results_stays_open(
    patient: Patient, api: APIClient, enter: Enter, mark: Any
) -> None:
    start_treatment(patient)
    enter(patient, "hemoglobin", "100", "g/L", T0)
    enter(patient, "hemoglobin", "102", "g/L", day(13))
    duplicate = enter(patient, "hemoglobin", "102", "g/L", day(14))["id"]

    mark(api, duplicate)

    assert open_alert(patient, "hemoglobin_slow_rise") is not None


def test_a_recheck_completed_only_by_that_result_is_due_again(
    patient: Patient, api: APIClient, enter: Enter, mark: Any
) -> None:
    regimen = start_treatment(patient)
    wrong = enter(patient, "hemoglobin", "125", "g/L", day(14))["id"]
    assert LabRecheck.objects.get(regimen=regimen, key="L-6@14").status == RecheckStatus.DONE

    mark(api, wrong)

    recheck = LabRecheck.objects.get(regimen=regimen, key="L-6@14")
    assert (recheck.status, recheck.completed_at) == (RecheckStatus.DUE, None)


def test_a_recheck_another_result_answers_stays_done(patient: Patient, api: APIClient, enter: Enter, mark: Any) -> None:
    regimen = start_treatment(patient)
    enter(patient, "hemoglobin", "125", "g/L", day(13))
    wrong = enter(patient, "hemoglobin", "126", "g/L", day(14))["id"]

    mark(api, wrong)

    assert LabRecheck.objects.get(regimen=regimen, key="L-6@14").status == RecheckStatus.DONE


def test_a_recheck_closed_by_hand_is_not_reopened(
    patient: Patient, api: APIClient, enter: Enter, mark: Any, clinician_api: APIClient
) -> None:
    regimen = start_treatment(patient)
    recheck = LabRecheck.objects.get(regimen=regimen, key="L-6@14")
    clinician_api.post(f"/api/lab-rechecks/{recheck.pk}/complete/", {"note": "drawn at the GP"}, format="json")
    wrong = enter(patient, "hemoglobin", "125", "g/L", day(14))["id"]

    mark(api, wrong)

    assert LabRecheck.objects.get(pk=recheck.pk).status == RecheckStatus.DONE


def test_selectors_and_the_s2_check_ignore_a_result_entered_in_error(patient: Patient, clock: Any) -> None:
    clock.move_to(noon(T0))
    kept = LabResultFactory(
        patient=patient,
        analyte="platelets",
        loinc="777-3",
        value_as_entered="200",
        unit_as_entered="10^9/L",
        unit_canonical="10^9/L",
    )
    LabResultFactory(
        patient=patient,
        analyte="platelets",
        loinc="777-3",
        value_as_entered="20",
        unit_as_entered="10^9/L",
        unit_canonical="10^9/L",
        collected_at=noon(T0) - timedelta(hours=1),
        error_recorded_at=noon(T0),
    )
    LabResultFactory(
        patient=patient,
        analyte="b12_total",
        loinc="2132-9",
        value_as_entered="50",
        unit_as_entered="ng/L",
        unit_canonical="ng/L",
        error_recorded_at=noon(T0),
    )

    series = trends_for(patient, ["platelets"])

    assert platelet_warning(patient=patient, at=noon(T0)) is None
    assert b12_status_for(patient)["status"] == "unknown"
    (platelets,) = [s for s in series["analytes"] if s["analyte"] == "platelets"]
    assert [p["result_id"] for p in platelets["points"]] == [kept.pk]


# --- V-10: rechecks the way results close them ---------------------------------------------------------


def test_a_second_anaemia_alert_does_not_plan_a_second_ferritin_and_folate_recheck(
    patient: Patient, enter: Enter
) -> None:
    regimen = start_treatment(patient)
    enter(patient, "hemoglobin", "100", "g/L", T0)
    enter(patient, "hemoglobin", "102", "g/L", day(14))
    enter(patient, "hemoglobin", "103", "g/L", day(16))  # still slow (A-H2), in the first task's window

    tasks = LabRecheck.objects.filter(regimen=regimen, analytes=["ferritin", "folate"])

    assert tasks.count() == 1


def test_a_later_anaemia_alert_plans_a_new_recheck_once_the_first_is_done(patient: Patient, enter: Enter) -> None:
    regimen = start_treatment(patient)
    enter(patient, "hemoglobin", "100", "g/L", T0)
    enter(patient, "hemoglobin", "102", "g/L", day(14))
    enter(patient, "ferritin", "40", "ug/L", day(15))
    enter(patient, "folate", "6", "ug/L", day(15))
    enter(patient, "hemoglobin", "103", "g/L", day(16))

    statuses = list(
        LabRecheck.objects.filter(regimen=regimen, analytes=["ferritin", "folate"])
        .order_by("id")
        .values_list("status", flat=True)
    )

    assert statuses == [RecheckStatus.DONE, RecheckStatus.DUE]


@pytest.mark.parametrize(
    ("drawn", "done"),
    [
        ({"mma": ("0.5", "umol/L")}, True),
        ({"b12_total": ("300", "ng/L")}, True),
        ({}, False),
    ],
)
def test_l11_is_met_by_b12_or_mma_with_the_blood_count(
    patient: Patient, enter: Enter, drawn: dict[str, tuple[str, str]], done: bool
) -> None:
    # Not pernicious anaemia: that would need the oral first-line override (§10 V-6), not this test's subject.
    Patient.objects.filter(pk=patient.pk).update(deficiency_cause="bariatric_surgery")
    patient.refresh_from_db()
    regimen = start_treatment(patient, "bariatric-oral")
    for analyte, (value, unit) in drawn.items():
        enter(patient, analyte, value, unit, day(88))
    enter(patient, "hemoglobin", "130", "g/L", day(88))
    enter(patient, "mcv", "90", "fL", day(88))
    enter(patient, "platelets", "250", "10^9/L", day(88))

    l11 = LabRecheck.objects.get(regimen=regimen, rule="L-11")

    assert (l11.status == RecheckStatus.DONE) is done


def test_the_sweep_counts_an_l11_answered_by_mma_as_done(patient: Patient, clock: Any) -> None:
    Patient.objects.filter(pk=patient.pk).update(deficiency_cause="diet")  # no oral first-line caution (V-6)
    patient.refresh_from_db()
    regimen = start_treatment(patient, "oral-high-dose")
    for analyte, value in (("mma", "0.5"), ("hemoglobin", "130"), ("mcv", "90"), ("platelets", "250")):
        LabResultFactory(patient=patient, analyte=analyte, value_as_entered=value, collected_at=noon(day(88)))

    call_command("run_sweeps", "--at", noon(day(105)).isoformat(), "--only", "monitoring", stdout=StringIO())

    assert LabRecheck.objects.get(regimen=regimen, rule="L-11").status == RecheckStatus.DONE


def test_l8_comes_after_one_month_when_breastfeeding_at_t0(patient: Patient) -> None:
    PatientFactFactory(patient=patient, kind=FactKind.BREASTFEEDING, onset_date=T0 - timedelta(days=40))

    regimen = start_treatment(patient)

    assert LabRecheck.objects.get(regimen=regimen, rule="L-8").due_date == date(2027, 2, 4)


# --- V-11: S-4 from the original due date ----------------------------------------------------------------


def test_s4_counts_from_the_due_date_of_the_dose_not_given_not_from_its_replacement(patient: Patient) -> None:
    # Given the monthly dose due Monday 4 January was not given (did not attend): a replacement is planned on the 5th
    with time_machine.travel(noon(T0), tick=False):
        regimen = regimen_start(patient=patient, protocol=Protocol.objects.get(code="ileal-resection"), start_date=T0)
        dose_record_not_given(dose=regimen.doses.get(sequence=1), reason="did not attend")
    assert regimen.doses.get(sequence=1, status="planned").due_date == day(1)

    # When the sweep runs 15 days after the original due date (14 after the replacement's)
    call_command("run_sweeps", "--at", noon(day(15)).isoformat(), "--only", "monitoring", stdout=StringIO())

    # Then S-4 counts 15 days overdue from 4 January: MEDIUM (> 14 days)
    alert = open_alert(patient, "dose_overdue")
    assert alert is not None and alert.severity == "medium"
    assert alert.evidence["due_date"] == T0.isoformat() and alert.evidence["days_overdue"] == 15
