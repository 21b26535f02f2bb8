"""Rechecks follow the data (RULES §2): baseline results re-plan the conditional
rechecks, and a result inside or after a recheck's window completes it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import pytest
from rest_framework.test import APIClient

from monitoring.inputs import lab_context
from patients.models import Patient
from regimens.models import LabRecheck, Protocol, RecheckStatus, Regimen, ScheduledDose
from regimens.services import dose_record_administration, regimen_start
from tests.factories import PatientFactory
from tests.timeline import T0, day, noon

pytestmark = pytest.mark.django_db

@pytest.fixture
def treated(patient: Patient, clock: Any) -> Regimen:
    regimen = regimen_start(patient=patient, protocol=Protocol.objects.get(code="hydroxo-uk-standard"), start_date=T0)
    first = ScheduledDose.objects.filter(regimen=regimen).order_by("due_date").first()
    assert first is not None
    dose_record_administration(dose=first, administered_at=datetime(2027, 1, 4, 10, tzinfo=UTC))
    return regimen


@pytest.fixture
def enter(api: APIClient, clock: Any, django_capture_on_commit_callbacks: Any) -> Any:
    def post(patient: Patient, analyte: str, value: str, unit: str, on: date) -> None:
        clock.move_to(max(noon(on) + timedelta(hours=1), noon(T0)))
        body = {
            "patient": patient.pk,
            "analyte": analyte,
            "value": value,
            "unit": unit,
            "collected_at": noon(on).isoformat(),
        }
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post("/api/lab-results/", body, format="json")
        assert response.status_code == 201, response.json()

    return post


def live(patient: Patient, rule: str | None = None) -> dict[str, str]:
    rows = LabRecheck.objects.filter(patient=patient).exclude(status=RecheckStatus.CANCELLED)
    if rule:
        rows = rows.filter(rule=rule)
    return dict(rows.values_list("key", "status"))


def test_without_a_baseline_hb_rechecks_and_week_8_are_planned(patient: Patient, treated: Regimen) -> None:
    keys = live(patient)
    assert {"L-6@14", "L-6@28", "L-7@56"} <= set(keys)
    assert not live(patient, "L-4")


def test_a_normal_baseline_drops_the_hb_rechecks(patient: Patient, treated: Regimen, enter: Any) -> None:
    enter(patient, "hemoglobin", "130", "g/L", T0)  # female LLN 120: normal
    enter(patient, "platelets", "250", "10^9/L", T0)
    enter(patient, "mcv", "90", "fL", T0)

    assert not live(patient, "L-6")
    assert not live(patient, "L-7")


def test_low_baseline_platelets_plan_weekly_counts_until_normal(patient: Patient, treated: Regimen, enter: Any) -> None:
    enter(patient, "platelets", "149", "10^9/L", day(-1))  # just below the LLN
    assert {"L-4@7", "L-4@14"} <= set(live(patient, "L-4"))

    enter(patient, "platelets", "140", "10^9/L", day(14))  # still low: weekly counts follow
    planned = live(patient, "L-4")
    assert planned["L-4@14"] == RecheckStatus.DONE
    assert planned["L-4@7"] == RecheckStatus.DONE  # answered by the later result (after its window)
    assert planned["L-4@21"] == RecheckStatus.DUE

    enter(patient, "platelets", "150", "10^9/L", day(21))  # exactly the LLN: normal

    after = live(patient, "L-4")
    assert after["L-4@21"] == RecheckStatus.DONE
    assert not [key for key in after if key not in ("L-4@7", "L-4@14", "L-4@21")]  # no more weekly counts


def test_baseline_of_150_plans_no_platelet_rechecks(patient: Patient, treated: Regimen, enter: Any) -> None:
    enter(patient, "platelets", "150", "10^9/L", day(-1))

    assert not live(patient, "L-4")


def test_a_result_before_the_window_does_not_complete_the_recheck(
    patient: Patient, treated: Regimen, enter: Any
) -> None:
    enter(patient, "hemoglobin", "100", "g/L", T0)  # low: L-6 at day 14 (window 11..17)
    enter(patient, "hemoglobin", "104", "g/L", day(10))
    assert live(patient, "L-6")["L-6@14"] == RecheckStatus.DUE

    enter(patient, "hemoglobin", "112", "g/L", day(11))  # first day of the window

    assert live(patient, "L-6")["L-6@14"] == RecheckStatus.DONE


def test_abnormal_ldh_plans_the_haemolysis_follow_up(patient: Patient, treated: Regimen, enter: Any) -> None:
    enter(patient, "ldh", "900", "U/L", day(-1))

    assert {"L-5@7", "L-5@14"} <= set(live(patient, "L-5"))


def test_severe_anaemia_plans_potassium_within_48_hours(patient: Patient, treated: Regimen, enter: Any) -> None:
    enter(patient, "hemoglobin", "7.9", "g/dL", T0)  # 79 g/L < 80 [P]

    l1 = LabRecheck.objects.get(patient=patient, key="L-1@0")
    assert (l1.window_start, l1.window_end, l1.analytes) == (T0, day(2), ["potassium"])


def test_lab_context_reads_baseline_and_follow_up_flags(clinic: Any, clock: Any) -> None:
    from patients.models import LabResult

    patient = cast(Patient, PatientFactory(clinic=clinic, sex="male"))

    def add(analyte: str, value: str, on: date) -> None:
        LabResult.objects.create(
            patient=patient,
            analyte=analyte,
            loinc="x",
            value_as_entered=value,
            value_canonical=value,
            collected_at=noon(on),
        )

    add("hemoglobin", "129", day(-3))
    add("platelets", "40", day(-3))
    add("ldh", "500", day(-3))
    add("platelets", "60", day(3))
    add("platelets", "160", day(9))

    ctx = lab_context(patient, T0)

    assert ctx.has_baseline and ctx.hb_low and not ctx.hb_severe
    assert ctx.platelets_low and ctx.platelets_very_low and ctx.hemolysis_abnormal and ctx.cbc_abnormal
    assert ctx.platelets_rising_on == day(3)
    assert ctx.platelets_normal_on == day(9)
    assert ctx.irreversible_cause  # pernicious anaemia (factory default)
    assert lab_context(patient, None).has_baseline is False
