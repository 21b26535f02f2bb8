"""The monitoring sweep (monitoring/sweep.py): time-based rules run day by day through run_sweeps,
opening alerts on the right day and not before, idempotent, and with a query count that does not grow
with the number of patients (RULES S-4, S-6(a), §1.3, §3.3)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from typing import Any, cast

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from monitoring.sweep import Wanted, apply_alerts, monitoring
from notifications.models import Alert, Delivery
from patients.models import Patient, PatientFact
from regimens.models import LabRecheck, Protocol, RecheckStatus, Regimen, RegimenDecision, ScheduledDose
from regimens.services import (
    dose_record_administration,
    protocol_copy,
    protocol_phase_update,
    regimen_confirm_gate,
    regimen_record_review,
    regimen_start,
    regimen_stop,
)
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def new_patient(**fields: Any) -> Patient:
    return cast(Patient, PatientFactory(**fields))


START = date(2027, 1, 4)  # a Monday


def at(on: date, hour: int = 10) -> datetime:
    return datetime(on.year, on.month, on.day, hour, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock() -> Iterator[Any]:
    with time_machine.travel(at(START), tick=False) as traveller:
        yield traveller


def start(patient: Patient, code: str, give_first: bool = False) -> Regimen:
    regimen = regimen_start(patient=patient, protocol=Protocol.objects.get(code=code), start_date=START)
    if give_first:
        first = ScheduledDose.objects.filter(regimen=regimen).order_by("due_date").first()
        assert first is not None
        dose_record_administration(dose=first, administered_at=at(START, 9))
    return regimen


def alert(patient: Patient, kind: str) -> Alert | None:
    return Alert.objects.filter(patient=patient, kind=kind).exclude(status="resolved").first()


def run(on: date, hour: int = 10) -> str:
    out = StringIO()
    call_command("run_sweeps", "--at", at(on, hour).isoformat(), "--only", "monitoring", stdout=out)
    return out.getvalue()


# --- S-4 dose_overdue --------------------------------------------------------------------------------------


def test_overdue_maintenance_dose_opens_medium_after_14_days_and_high_after_28(clinic: Any) -> None:
    # ileal-resection: one lifelong monthly phase (maintenance), first dose due on the start date.
    patient = new_patient(clinic=clinic)
    start(patient, "ileal-resection")
    seen = {}
    for offset in (14, 15, 28, 29):
        run(START + timedelta(days=offset))
        found = alert(patient, "dose_overdue")
        seen[offset] = found.severity if found else None
    assert seen == {14: None, 15: "medium", 28: "medium", 29: "high"}
    assert Alert.objects.filter(patient=patient, kind="dose_overdue").count() == 1


def test_neurological_history_uses_7_and_14_days(clinic: Any) -> None:
    patient = new_patient(clinic=clinic, neurological_involvement=True)
    start(patient, "ileal-resection")
    seen = {}
    for offset in (7, 8, 14, 15):
        run(START + timedelta(days=offset))
        found = alert(patient, "dose_overdue")
        seen[offset] = found.severity if found else None
    assert seen == {7: None, 8: "medium", 14: "medium", 15: "high"}


def test_overdue_is_judged_on_the_patients_local_date(clinic: Any) -> None:
    london = new_patient(clinic=clinic, timezone="Europe/London")
    auckland = new_patient(clinic=clinic, timezone="Pacific/Auckland")  # UTC+13 in January
    start(london, "ileal-resection")
    start(auckland, "ileal-resection")

    run(START + timedelta(days=14), hour=12)  # 01:00 on day 15 in Auckland

    assert alert(london, "dose_overdue") is None
    assert alert(auckland, "dose_overdue") is not None


def test_loading_doses_are_not_maintenance_doses(clinic: Any) -> None:
    patient = new_patient(clinic=clinic)
    start(patient, "hydroxo-uk-standard")  # six loading doses, none given

    run(START + timedelta(days=40))

    assert alert(patient, "dose_overdue") is None


# RULES §10 V-5 [P]: S-4 covers the loading doses of neurological patients: more than 2 days overdue -> HIGH.


def test_a_neuro_loading_dose_more_than_2_days_overdue_opens_dose_overdue_high(clinic: Any) -> None:
    patient = new_patient(clinic=clinic)  # no flag: the R-UK-2 loading phase is neurological by itself
    start(patient, "hydroxo-uk-neuro")  # first loading dose due 4 Jan, never given
    seen = {}
    for offset in (1, 2, 3):
        run(START + timedelta(days=offset))
        found = alert(patient, "dose_overdue")
        seen[offset] = (found.severity, found.evidence["days_overdue"], found.evidence["loading"]) if found else None
    assert seen == {1: None, 2: None, 3: ("high", 3, True)}


def test_a_loading_dose_of_a_patient_with_the_neurological_flag_counts_after_2_days(clinic: Any) -> None:
    patient = new_patient(clinic=clinic, neurological_involvement=True)
    start(patient, "hydroxo-uk-standard")

    run(START + timedelta(days=2))
    assert alert(patient, "dose_overdue") is None
    run(START + timedelta(days=3))
    found = alert(patient, "dose_overdue")
    assert found is not None and (found.severity, found.rule_id) == ("high", "S-4")


def test_a_loading_dose_of_a_patient_with_a_neurological_symptom_fact_counts_after_2_days(clinic: Any) -> None:
    patient = new_patient(clinic=clinic)
    PatientFact.objects.create(patient=patient, kind="neuro_symptoms", onset_date=START)
    start(patient, "hydroxo-uk-standard")

    run(START + timedelta(days=3))

    found = alert(patient, "dose_overdue")
    assert found is not None and found.severity == "high" and found.evidence["neuro"] is True


def test_a_symptom_fact_marked_absent_is_not_neurological_history(clinic: Any) -> None:
    patient = new_patient(clinic=clinic)
    PatientFact.objects.create(patient=patient, kind="neuro_symptoms", absent=True)
    start(patient, "hydroxo-uk-standard")

    run(START + timedelta(days=10))

    assert alert(patient, "dose_overdue") is None


def test_the_neuro_loading_overdue_alert_resolves_once_the_dose_is_recorded(clinic: Any, clock: Any) -> None:
    patient = new_patient(clinic=clinic)
    regimen = start(patient, "hydroxo-uk-neuro")
    run(START + timedelta(days=3))
    assert alert(patient, "dose_overdue") is not None

    clock.move_to(at(START + timedelta(days=3), 11))
    dose = ScheduledDose.objects.filter(regimen=regimen, status="planned").order_by("due_date").first()
    assert dose is not None
    dose_record_administration(dose=dose, administered_at=at(START + timedelta(days=3), 10))
    run(START + timedelta(days=3), hour=12)

    assert alert(patient, "dose_overdue") is None


def test_overdue_alert_resolves_once_the_dose_is_recorded(clinic: Any, clock: Any) -> None:
    patient = new_patient(clinic=clinic)
    regimen = start(patient, "ileal-resection")
    run(START + timedelta(days=20))
    assert alert(patient, "dose_overdue") is not None

    clock.move_to(at(START + timedelta(days=21)))
    dose = ScheduledDose.objects.filter(regimen=regimen, status="planned").order_by("due_date").first()
    assert dose is not None
    dose_record_administration(dose=dose, administered_at=at(START + timedelta(days=21), 9))
    run(START + timedelta(days=21))

    assert alert(patient, "dose_overdue") is None
    assert Alert.objects.get(patient=patient, kind="dose_overdue").resolution == "dose recorded or cancelled"


def test_the_same_instant_twice_changes_nothing(clinic: Any) -> None:
    patient = new_patient(clinic=clinic)
    start(patient, "ileal-resection")
    first = monitoring(at(START + timedelta(days=30)))
    snapshot = list(Alert.objects.values_list("id", "status", "severity", "message"))

    second = monitoring(at(START + timedelta(days=30)))

    assert first["dose_overdue_raised"] == 1
    assert all(v == 0 for v in second.values()), second
    assert list(Alert.objects.values_list("id", "status", "severity", "message")) == snapshot


# --- RULES §10 V-3 (a further overdue step reopens) and V-2 (a critical alert waits for a person) -----------


def test_a_further_overdue_step_reopens_an_acknowledged_overdue_alert(clinic: Any) -> None:
    from notifications.alerts import alert_acknowledge
    from tests.factories import staff_user

    patient = new_patient(clinic=clinic)
    start(patient, "ileal-resection")
    run(START + timedelta(days=15))
    found = alert(patient, "dose_overdue")
    assert found is not None and found.severity == "medium"
    nurse = staff_user(clinic)
    alert_acknowledge(alert=found, user=nurse, note="Left a message", at=at(START + timedelta(days=15), 11))

    run(START + timedelta(days=20))  # the same dose, more days: nothing new
    still = alert(patient, "dose_overdue")
    assert still is not None and (still.status, still.acknowledged_by) == ("acknowledged", nurse)

    run(START + timedelta(days=29))  # more than 28 days: high
    reopened = alert(patient, "dose_overdue")
    assert reopened is not None and (reopened.status, reopened.severity) == ("open", "high")
    assert reopened.acknowledged_by is None and reopened.reopened_at == at(START + timedelta(days=29))
    assert Delivery.objects.filter(purpose="alert", alert=reopened, user=nurse).exists()


def test_a_critical_sweep_alert_no_longer_wanted_shows_target_met_and_stays_open(clinic: Any) -> None:
    patient = new_patient(clinic=clinic)
    wanted = {patient.pk: Wanted("critical", "Critical for the test.", "Act.", {"fact_ids": [1]}, "S-6(a)")}
    apply_alerts("neuro_treatment_delay", wanted, at(START), resolution="B12 given")

    counts = apply_alerts("neuro_treatment_delay", {}, at(START + timedelta(days=1)), resolution="B12 given")

    found = alert(patient, "neuro_treatment_delay")
    assert counts["neuro_treatment_delay_resolved"] == 0
    assert found is not None and found.status == "open"
    assert (found.target_met_at, found.target_met_evidence) == (at(START + timedelta(days=1)), {"reason": "B12 given"})
    again = apply_alerts("neuro_treatment_delay", {}, at(START + timedelta(days=2)), resolution="B12 given")
    assert all(v == 0 for v in again.values())
    assert alert(patient, "neuro_treatment_delay").target_met_at == at(START + timedelta(days=1))  # type: ignore[union-attr]


# --- §3.3 lab_recheck_overdue ------------------------------------------------------------------------------


def test_recheck_overdue_the_day_after_its_window_and_done_when_the_result_arrives(
    clinic: Any, clock: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from rest_framework.test import APIClient

    from tests.factories import staff_user

    patient = new_patient(clinic=clinic)
    start(patient, "hydroxo-uk-standard", give_first=True)  # no baseline: L-6 Hb day 14 ± 3
    l6 = LabRecheck.objects.get(patient=patient, key="L-6@14")
    assert l6.window_end == date(2027, 1, 21)

    run(date(2027, 1, 21))
    assert alert(patient, "lab_recheck_overdue") is None
    run(date(2027, 1, 22))
    found = alert(patient, "lab_recheck_overdue")
    assert found is not None and found.severity == "medium"
    assert LabRecheck.objects.get(pk=l6.pk).status == RecheckStatus.OVERDUE

    clock.move_to(at(date(2027, 1, 22), 15))
    api = APIClient()
    api.force_authenticate(cast(Any, staff_user(clinic)))

    def post(analyte: str, value: str, unit: str, hour: int) -> None:
        body = {"patient": patient.pk, "analyte": analyte, "value": value, "unit": unit}
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post(
                "/api/lab-results/", {**body, "collected_at": at(date(2027, 1, 22), hour).isoformat()}, format="json"
            )
        assert response.status_code == 201

    post("folate", "6", "ug/L", 13)  # answers no recheck: the overdue one stays, and so does the alert
    assert LabRecheck.objects.get(pk=l6.pk).status == RecheckStatus.OVERDUE
    assert alert(patient, "lab_recheck_overdue") is not None
    post("hemoglobin", "130", "g/L", 14)
    assert LabRecheck.objects.get(pk=l6.pk).status == RecheckStatus.DONE
    assert alert(patient, "lab_recheck_overdue") is None


# --- §1.3 neuro review -------------------------------------------------------------------------------------


def test_neuro_loading_review_prompt_escalates_and_a_review_resolves_it(clinic: Any, clock: Any) -> None:
    patient = new_patient(clinic=clinic, neurological_involvement=True)
    regimen = start(patient, "hydroxo-uk-neuro", give_first=True)
    seen = {}
    for offset in (13, 14, 21):
        run(START + timedelta(days=offset))
        found = alert(patient, "neuro_review_due")
        seen[offset] = found.severity if found else None
    assert seen == {13: None, 14: "info", 21: "medium"}

    clock.move_to(at(START + timedelta(days=22)))
    regimen_record_review(regimen=regimen, outcome="still_improving")
    run(START + timedelta(days=22))
    assert alert(patient, "neuro_review_due") is None

    run(START + timedelta(days=42))  # 6 weeks without a specialist note
    found = alert(patient, "neuro_review_due")
    assert found is not None and found.severity == "high"
    assert RegimenDecision.objects.filter(regimen=regimen).count() == 1


def test_a_clinics_copy_with_a_shorter_review_interval_prompts_on_its_own_day(
    clinic: Any, clinic_admin: Any, clock: Any
) -> None:
    """The sweep's "review due" follows the interval the regimen's plan prompts with (its protocol phase's "review
    every"), not a second number: a clinic's copy set to 7 days alerts on day 7, and again 7 days after a review."""
    neuro = protocol_copy(protocol=Protocol.objects.get(code="hydroxo-uk-neuro"), clinic=clinic, by=clinic_admin)
    protocol_phase_update(phase=neuro.phases.get(key="loading"), by=clinic_admin, review_every_days=7)
    patient = new_patient(clinic=clinic, neurological_involvement=True)
    regimen = start(patient, neuro.code, give_first=True)
    seen = {}
    for offset in (6, 7):
        run(START + timedelta(days=offset))
        found = alert(patient, "neuro_review_due")
        seen[offset] = found.severity if found else None
    assert seen == {6: None, 7: "info"}

    clock.move_to(at(START + timedelta(days=8)))
    regimen_record_review(regimen=regimen, outcome="still_improving")
    run(START + timedelta(days=14))
    assert alert(patient, "neuro_review_due") is None
    run(START + timedelta(days=15))
    found = alert(patient, "neuro_review_due")
    assert found is not None and found.severity == "info"


# --- S-6(a) -------------------------------------------------------------------------------------------------


def test_neuro_symptoms_without_b12_within_24_hours(clinic: Any, clock: Any) -> None:
    patient = new_patient(clinic=clinic)
    clock.move_to(at(START, 8))
    PatientFact.objects.create(patient=patient, kind="neuro_symptoms", onset_date=START)

    monitoring(at(START + timedelta(days=1), 7))  # 23 h
    assert alert(patient, "neuro_treatment_delay") is None
    monitoring(at(START + timedelta(days=1), 8))  # 24 h
    found = alert(patient, "neuro_treatment_delay")
    assert found is not None and (found.severity, found.rule_id) == ("high", "S-6(a)")


def test_a_dose_within_24_hours_means_no_delay_alert(clinic: Any, clock: Any) -> None:
    patient = new_patient(clinic=clinic)
    clock.move_to(at(START, 8))
    PatientFact.objects.create(patient=patient, kind="neuro_symptoms", onset_date=START)
    clock.move_to(at(START, 10))
    start(patient, "hydroxo-uk-neuro", give_first=True)  # given at 09:00, an hour after the symptoms

    monitoring(at(START + timedelta(days=2)))

    assert alert(patient, "neuro_treatment_delay") is None


def test_the_neurological_involvement_flag_alone_starts_the_24_hours(clinic: Any, clock: Any) -> None:
    # RULES §10 V-5: S-6(a) also applies when only the patient's flag is set.
    clock.move_to(at(START, 8))
    patient = new_patient(clinic=clinic, neurological_involvement=True)

    monitoring(at(START + timedelta(days=1), 7))  # 23 h
    assert alert(patient, "neuro_treatment_delay") is None
    monitoring(at(START + timedelta(days=1), 8))  # 24 h
    found = alert(patient, "neuro_treatment_delay")
    assert found is not None and (found.severity, found.rule_id) == ("high", "S-6(a)")
    assert found.evidence["fact_ids"] == []
    assert found.evidence["neurological_involvement_since"] == at(START, 8).isoformat()


def test_the_flag_counts_from_when_it_was_switched_on(clinic: Any, clock: Any) -> None:
    clock.move_to(at(START, 8))
    patient = new_patient(clinic=clinic)
    clock.move_to(at(START + timedelta(days=3), 9))
    patient.neurological_involvement = True
    patient.save()

    monitoring(at(START + timedelta(days=4), 8))  # 23 h after the flag, 4 days after the patient was created
    assert alert(patient, "neuro_treatment_delay") is None
    monitoring(at(START + timedelta(days=4), 9))
    assert alert(patient, "neuro_treatment_delay") is not None


def test_a_flag_switched_off_raises_nothing(clinic: Any, clock: Any) -> None:
    clock.move_to(at(START, 8))
    patient = new_patient(clinic=clinic, neurological_involvement=True)
    patient.neurological_involvement = False
    patient.save()

    monitoring(at(START + timedelta(days=2)))

    assert alert(patient, "neuro_treatment_delay") is None


def test_a_flagged_patient_enrolled_after_treatment_elsewhere_has_no_delay(clinic: Any, clock: Any) -> None:
    clock.move_to(at(START, 8))
    patient = new_patient(clinic=clinic, neurological_involvement=True)
    regimen_start(
        patient=patient,
        protocol=Protocol.objects.get(code="hydroxo-uk-neuro"),
        start_date=START,
        options={"enrol": {"phase": "maintenance", "last_dose_date": "2026-12-20"}},
    )

    monitoring(at(START + timedelta(days=3)))

    assert alert(patient, "neuro_treatment_delay") is None


# --- §10 V-9 gate_pending ----------------------------------------------------------------------------------


def reach_the_gate(patient: Patient, clock: Any) -> Regimen:
    """cyano-us-label with its seven daily doses given on their due days (the last on Tue 12 Jan)."""
    regimen = start(patient, "cyano-us-label")
    for _ in range(7):
        dose = ScheduledDose.objects.filter(regimen=regimen, status="planned").order_by("due_date").first()
        assert dose is not None
        clock.move_to(at(dose.due_date, 11))
        dose_record_administration(dose=dose, administered_at=at(dose.due_date, 9))
    regimen.refresh_from_db()
    assert regimen.awaiting_gate is True
    return regimen


def test_gate_pending_opens_high_more_than_2_days_after_the_last_dose_before_the_gate(clinic: Any, clock: Any) -> None:
    patient = new_patient(clinic=clinic)
    reach_the_gate(patient, clock)
    seen = {}
    for day in (12, 13, 14, 15):
        run(date(2027, 1, day))
        found = alert(patient, "gate_pending")
        seen[day] = found.severity if found else None
    assert seen == {12: None, 13: None, 14: None, 15: "high"}
    found = alert(patient, "gate_pending")
    assert found is not None and found.rule_id == "§10 V-9"
    assert found.evidence["last_dose_on"] == "2027-01-12" and found.evidence["days_waiting"] == 3


def test_gate_pending_resolves_when_the_gate_is_confirmed(clinic: Any, clock: Any) -> None:
    patient = new_patient(clinic=clinic)
    regimen = reach_the_gate(patient, clock)
    run(date(2027, 1, 15))
    assert alert(patient, "gate_pending") is not None

    clock.move_to(at(date(2027, 1, 15), 12))
    regimen_confirm_gate(regimen=regimen, note="reticulocytes up")
    run(date(2027, 1, 15), hour=13)

    assert alert(patient, "gate_pending") is None
    assert Alert.objects.get(patient=patient, kind="gate_pending").resolution == "gate confirmed or regimen stopped"


def test_gate_pending_resolves_when_the_regimen_is_stopped(clinic: Any, clock: Any) -> None:
    patient = new_patient(clinic=clinic, deficiency_cause="unknown")
    regimen = reach_the_gate(patient, clock)
    run(date(2027, 1, 16))
    assert alert(patient, "gate_pending") is not None

    clock.move_to(at(date(2027, 1, 16), 12))
    regimen_stop(regimen=regimen, reason="no reticulocyte response: switching")
    run(date(2027, 1, 16), hour=13)

    assert alert(patient, "gate_pending") is None


def test_a_regimen_with_doses_left_before_the_gate_is_not_pending(clinic: Any) -> None:
    patient = new_patient(clinic=clinic)
    start(patient, "cyano-us-label")  # seven daily doses, none given: overdue, but not waiting at the gate

    run(START + timedelta(days=20))

    assert alert(patient, "gate_pending") is None


# --- Bounded queries ---------------------------------------------------------------------------------------


def _population(clinic: Any, n: int) -> list[Patient]:
    patients = []
    for i in range(n):
        patient = new_patient(clinic=clinic, neurological_involvement=i % 2 == 0)
        start(patient, "ileal-resection" if i % 3 else "hydroxo-uk-neuro", give_first=i % 3 == 0)
        if i % 5 == 0:
            PatientFact.objects.create(patient=patient, kind="neuro_symptoms", onset_date=START)
        patients.append(patient)
    return patients


def _steady_state_queries(clinic: Any, n: int) -> int:
    _population(clinic, n)
    when = at(START + timedelta(days=30))
    monitoring(when)  # opens the alerts
    with CaptureQueriesContext(connection) as queries:
        monitoring(when)
    return len(queries)


def test_query_count_does_not_grow_from_5_to_50_patients(clinic: Any, django_assert_max_num_queries: Any) -> None:
    few = _steady_state_queries(clinic, 5)
    assert Alert.objects.exclude(status="resolved").count() >= 5
    Alert.objects.all().delete()
    many = _steady_state_queries(clinic, 45)  # 50 patients in all
    assert Alert.objects.exclude(status="resolved").count() >= 50
    assert many == few
    with django_assert_max_num_queries(few):
        monitoring(at(START + timedelta(days=30)))


def test_run_sweeps_prints_the_monitoring_counts(clinic: Any) -> None:
    patient = new_patient(clinic=clinic)
    start(patient, "ileal-resection")

    output = run(START + timedelta(days=15))

    assert "monitoring:" in output and "dose_overdue_raised=1" in output


def test_start_up_warns_that_the_retired_review_interval_setting_is_no_longer_read(monkeypatch: Any) -> None:
    monkeypatch.setenv("COBALT_NEURO_REVIEW_EVERY_DAYS", "7")
    out = StringIO()
    call_command("check", stdout=out, stderr=out)
    assert "cobalt.W001" in out.getvalue() and "review every" in out.getvalue()
    monkeypatch.delenv("COBALT_NEURO_REVIEW_EVERY_DAYS")
    out = StringIO()
    call_command("check", stdout=out, stderr=out)
    assert "cobalt.W001" not in out.getvalue()
