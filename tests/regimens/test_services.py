"""Regimen write services on PostgreSQL: every write re-plans through the engine and syncs rows
(RULES "Scheduling semantics"; SPEC.md "Core behaviour" 3). "Now" is fixed with time_machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from patients.models import Clinic, Patient
from patients.services import clinic_update_calendar
from regimens.models import (
    DecisionKind,
    DoseStatus,
    LabRecheck,
    Protocol,
    ProtocolPhase,
    RecheckStatus,
    Regimen,
    RegimenStatus,
    ScheduledDose,
)
from regimens.services import (
    dose_record_administration,
    dose_record_not_given,
    regimen_confirm_gate,
    regimen_end_phase,
    regimen_record_review,
    regimen_start,
    regimen_stop,
    regimens_extend_horizons,
)
from tests.factories import PatientFactory
from tracker.errors import ConflictError, ServiceError, WarningsNotAcknowledged


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(datetime(2027, 1, 4, 9, tzinfo=UTC), tick=False) as traveller:
        yield traveller


def jan(day: int) -> date:
    return date(2027, 1, day)


def at(day: date, hour: int = 8, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def start(patient: Patient, code: str, on: date = date(2027, 1, 4), **kwargs: Any) -> Regimen:
    return regimen_start(patient=patient, protocol=Protocol.objects.get(code=code), start_date=on, **kwargs)


def planned(regimen: Regimen, phase: str | None = None) -> list[date]:
    rows = regimen.doses.filter(status=DoseStatus.PLANNED)
    if phase is not None:
        rows = rows.filter(phase=phase)
    return list(rows.order_by("phase_index", "sequence").values_list("due_date", flat=True))


def slot(regimen: Regimen, phase_index: int, sequence: int, status: str = DoseStatus.PLANNED) -> ScheduledDose:
    return regimen.doses.get(phase_index=phase_index, sequence=sequence, status=status)


def give(dose: ScheduledDose, when: datetime, **kwargs: Any) -> ScheduledDose:
    return dose_record_administration(dose=dose, administered_at=when, **kwargs)


# --- regimen_start ----------------------------------------------------------------------------


def test_it_plans_doses_and_rechecks_as_soon_as_a_regimen_starts(patient: Patient, clock: Any) -> None:
    regimen = start(patient, "hydroxo-uk-standard")

    assert planned(regimen, "loading") == [jan(4), jan(6), jan(8), jan(11), jan(13), jan(15)]
    assert planned(regimen, "maintenance")[0] == date(2027, 4, 9)
    # No baseline results: L-6 (days 14, 28), L-7 (day 56), L-8 (month 3); pernicious anaemia: L-12.
    keys = set(regimen.lab_rechecks.values_list("key", flat=True))
    assert keys == {"L-6@14", "L-6@28", "L-7@56", "L-8@90", "L-12@365"}
    regimen.refresh_from_db()
    assert (regimen.status, regimen.current_phase, regimen.extend_on) == (RegimenStatus.ACTIVE, 0, date(2027, 3, 11))


def test_it_refuses_a_start_date_more_than_365_days_ahead_and_writes_nothing(patient: Patient, clock: Any) -> None:
    with pytest.raises(ServiceError) as exc:
        start(patient, "hydroxo-uk-standard", on=jan(4) + timedelta(days=366))

    assert exc.value.field == "start_date"
    assert (Regimen.objects.count(), ScheduledDose.objects.count(), LabRecheck.objects.count()) == (0, 0, 0)


def test_it_refuses_an_unknown_option_naming_it_and_writes_nothing(patient: Patient, clock: Any) -> None:
    with pytest.raises(ServiceError) as exc:
        start(patient, "hydroxo-uk-standard", options={"colour": "blue"})

    assert exc.value.field == "options.colour"
    assert (Regimen.objects.count(), ScheduledDose.objects.count(), LabRecheck.objects.count()) == (0, 0, 0)


def test_it_refuses_maintenance_outside_8_to_13_weeks_without_a_reason(patient: Patient, clock: Any) -> None:
    options: dict[str, Any] = {"phases": {"maintenance": {"spacing_value": 14}}}

    with pytest.raises(ServiceError) as exc:
        start(patient, "hydroxo-uk-standard", options=options)
    assert exc.value.field == "options.phases.maintenance.spacing_value"
    assert Regimen.objects.count() == 0

    regimen = start(patient, "hydroxo-uk-standard", options={**options, "override_reason": "travels abroad"})
    assert planned(regimen, "maintenance")[0] == jan(15) + timedelta(weeks=14)
    assert regimen.override_reason == "travels abroad"


def test_it_allows_one_active_regimen_per_patient(patient: Patient, clock: Any) -> None:
    first = start(patient, "hydroxo-uk-standard")
    doses = ScheduledDose.objects.count()

    with pytest.raises(ServiceError) as exc:
        start(patient, "ileal-resection")

    assert exc.value.field == "patient"
    assert list(Regimen.objects.values_list("id", flat=True)) == [first.id]
    assert ScheduledDose.objects.count() == doses


def test_it_enrols_a_patient_already_on_maintenance_one_interval_after_their_last_dose(
    patient: Patient, clock: Any
) -> None:
    regimen = start(
        patient, "hydroxo-uk-standard", options={"enrol": {"phase": "maintenance", "last_dose_date": "2026-12-01"}}
    )

    assert planned(regimen, "loading") == []
    # 1 December 2026 + 12 weeks.
    assert planned(regimen, "maintenance")[0] == date(2027, 2, 23)
    regimen.refresh_from_db()
    assert regimen.current_phase == 1


def test_it_refuses_enrolment_in_a_phase_the_protocol_does_not_have(patient: Patient, clock: Any) -> None:
    with pytest.raises(ServiceError) as exc:
        start(patient, "hydroxo-uk-standard", options={"enrol": {"phase": "booster", "last_dose_date": "2026-12-01"}})

    assert exc.value.field == "options.enrol.phase"
    assert Regimen.objects.count() == 0


# --- dose_record_administration ---------------------------------------------------------------


def test_it_replans_later_doses_from_a_late_dose_and_keeps_their_ids(patient: Patient, clock: Any) -> None:
    regimen = start(patient, "hydroxo-uk-standard")
    ids = {(d.phase_index, d.sequence): d.id for d in regimen.doses.filter(status=DoseStatus.PLANNED)}
    give(slot(regimen, 0, 1), at(jan(4)))
    clock.move_to(at(jan(7), 12))

    dose = give(slot(regimen, 0, 2), at(jan(7)))

    assert (dose.status, dose.due_date) == (DoseStatus.GIVEN, jan(6))
    # Given Thu 7: Sat 9 -> Mon 11, 13, 15; Sun 17 -> Mon 18; maintenance 12 weeks after 18 Jan.
    assert planned(regimen, "loading") == [jan(11), jan(13), jan(15), jan(18)]
    assert planned(regimen, "maintenance")[0] == date(2027, 4, 12)
    for key in [(0, 3), (0, 4), (0, 5), (0, 6), (1, 1)]:
        assert slot(regimen, *key).id == ids[key]


def test_it_returns_the_same_dose_for_a_repeated_administration(patient: Patient, clock: Any) -> None:
    regimen = start(patient, "hydroxo-uk-standard")
    first = give(slot(regimen, 0, 1), at(jan(4)), lot_number="L123", site="left deltoid")
    rows = ScheduledDose.objects.count()

    # The same instant written with Berlin's offset is the same request.
    again = give(first, at(jan(4)).astimezone(ZoneInfo("Europe/Berlin")), lot_number="L123", site="left deltoid")

    assert again.id == first.id
    assert again.recorded_at == first.recorded_at
    assert ScheduledDose.objects.count() == rows


def test_it_refuses_a_conflicting_administration_of_a_dose_already_given(patient: Patient, clock: Any) -> None:
    regimen = start(patient, "hydroxo-uk-standard")
    first = give(slot(regimen, 0, 1), at(jan(4)), lot_number="L123")

    with pytest.raises(ConflictError):
        give(first, at(jan(4)), lot_number="L999")

    first.refresh_from_db()
    assert first.lot_number == "L123"


def test_it_refuses_an_administration_time_without_a_time_zone(patient: Patient, clock: Any) -> None:
    regimen = start(patient, "hydroxo-uk-standard")

    with pytest.raises(ServiceError) as exc:
        give(slot(regimen, 0, 1), datetime(2027, 1, 4, 8, 0))  # noqa: DTZ001

    assert exc.value.field == "administered_at"
    assert slot(regimen, 0, 1).status == DoseStatus.PLANNED


def test_it_refuses_an_administration_in_the_future(patient: Patient, clock: Any) -> None:
    regimen = start(patient, "hydroxo-uk-standard")

    with pytest.raises(ServiceError) as exc:
        give(slot(regimen, 0, 1), at(jan(4), 11))

    assert exc.value.field == "administered_at"


def test_it_refuses_to_give_a_cancelled_dose(patient: Patient, clock: Any) -> None:
    regimen = start(patient, "hydroxo-uk-standard")
    dose = slot(regimen, 0, 1)
    regimen_stop(regimen=regimen, reason="moved away", acknowledge=["lifelong_therapy_stopped"])

    with pytest.raises(ConflictError) as exc:
        give(dose, at(jan(4), 8))

    assert exc.value.field == "status"
    dose.refresh_from_db()
    assert dose.status == DoseStatus.CANCELLED


def test_it_refuses_to_give_a_dose_while_an_earlier_one_is_still_planned(patient: Patient, clock: Any) -> None:
    regimen = start(patient, "hydroxo-uk-standard")
    clock.move_to(at(jan(6), 12))

    with pytest.raises(ConflictError) as exc:
        give(slot(regimen, 0, 2), at(jan(6)))

    assert exc.value.field == "dose"
    assert not regimen.doses.filter(status=DoseStatus.GIVEN).exists()


def test_it_replans_from_the_patients_local_date_across_the_march_clock_change(clinic: Clinic) -> None:
    clinic.open_weekdays = list(range(7))
    clinic.save(update_fields=["open_weekdays"])
    patient = PatientFactory(clinic=clinic, timezone="Europe/Berlin")
    with time_machine.travel(datetime(2027, 3, 26, 9, tzinfo=UTC), tick=False) as traveller:
        regimen = start(patient, "hydroxo-uk-neuro", on=date(2027, 3, 26))
        give(slot(regimen, 0, 1), at(date(2027, 3, 26)))
        traveller.move_to(datetime(2027, 3, 28, 0, 0, tzinfo=UTC))

        # 23:30 UTC on Saturday 27 March is 00:30 on Sunday 28 March in Berlin (CET, UTC+1).
        give(slot(regimen, 0, 2), datetime(2027, 3, 27, 23, 30, tzinfo=UTC))

    # Alternate days from Sunday 28 March, not from the UTC date (27 March).
    assert planned(regimen, "loading")[0] == date(2027, 3, 30)


# --- dose_record_not_given --------------------------------------------------------------------


def test_it_keeps_a_dose_not_given_with_its_reason_and_plans_a_replacement(patient: Patient, clock: Any) -> None:
    regimen = start(patient, "hydroxo-uk-standard")
    give(slot(regimen, 0, 1), at(jan(4)))
    clock.move_to(at(jan(6), 17))
    missed = slot(regimen, 0, 2)

    dose_record_not_given(dose=missed, reason="did not attend")

    missed.refresh_from_db()
    assert (missed.status, missed.not_given_reason, missed.not_given_on, missed.due_date) == (
        DoseStatus.NOT_GIVEN,
        "did not attend",
        jan(6),
        jan(6),
    )
    replacement = slot(regimen, 0, 2)
    assert replacement.id != missed.id
    # The first open day after Wednesday 6 is Thursday 7; then Sat 9 -> Mon 11, 13, 15; Sun 17 -> 18.
    assert planned(regimen, "loading") == [jan(7), jan(11), jan(13), jan(15), jan(18)]


def test_it_needs_a_reason_for_a_dose_not_given(patient: Patient, clock: Any) -> None:
    regimen = start(patient, "hydroxo-uk-standard")

    with pytest.raises(ServiceError) as exc:
        dose_record_not_given(dose=slot(regimen, 0, 1), reason="  ")

    assert exc.value.field == "reason"
    assert slot(regimen, 0, 1).status == DoseStatus.PLANNED


def test_it_returns_the_same_dose_for_a_repeated_not_given_and_refuses_a_different_reason(
    patient: Patient, clock: Any
) -> None:
    regimen = start(patient, "hydroxo-uk-standard")
    missed = dose_record_not_given(dose=slot(regimen, 0, 1), reason="refused")
    rows = ScheduledDose.objects.count()

    again = dose_record_not_given(dose=missed, reason="refused")
    assert (again.id, ScheduledDose.objects.count()) == (missed.id, rows)
    with pytest.raises(ConflictError):
        dose_record_not_given(dose=missed, reason="did not attend")


def test_it_moves_the_lab_rechecks_with_the_day_the_first_dose_was_given(patient: Patient, clock: Any) -> None:
    regimen = start(patient, "hydroxo-uk-standard")
    day_14 = regimen.lab_rechecks.get(key="L-6@14")
    assert day_14.due_date == jan(18)
    clock.move_to(at(jan(5), 12))

    give(slot(regimen, 0, 1), at(jan(5)))

    day_14.refresh_from_db()
    # T0 is the first dose as given (RULES §2): 5 January + 14 days, window ± 3.
    assert (day_14.due_date, day_14.window_start, day_14.window_end) == (jan(19), jan(16), jan(22))


# --- Clinician decisions ----------------------------------------------------------------------


def test_it_plans_neuro_maintenance_56_days_after_the_last_loading_dose_when_the_phase_is_ended(
    patient: Patient, clock: Any
) -> None:
    regimen = start(patient, "hydroxo-uk-neuro")
    assert planned(regimen, "maintenance") == []
    give(slot(regimen, 0, 1), at(jan(4)))
    clock.move_to(at(jan(6), 12))
    give(slot(regimen, 0, 2), at(jan(6)))

    # (two loading doses: ending this early needs a reason, RULES §10 V-5)
    regimen = regimen_end_phase(regimen=regimen, note="no further improvement", reason="plateau confirmed by neurology")

    assert planned(regimen, "loading") == []
    assert regimen.doses.filter(phase="loading", status=DoseStatus.CANCELLED).exists()
    # §1.3: first maintenance dose 56 days after the last loading dose (Wed 6 Jan + 56 = Wed 3 Mar).
    assert planned(regimen, "maintenance")[0] == date(2027, 3, 3)
    assert regimen.current_phase == 1
    assert regimen.decisions.filter(kind=DecisionKind.END_PHASE, phase_index=0, decided_on=jan(6)).exists()


def test_it_refuses_to_end_a_phase_that_ends_by_itself(patient: Patient, clock: Any) -> None:
    regimen = start(patient, "hydroxo-uk-standard")

    with pytest.raises(ConflictError) as exc:
        regimen_end_phase(regimen=regimen)

    assert exc.value.field == "phase"


# RULES §10 V-5: the neurological loading phase (R-UK-2) needs a dose before it ends, and a reason before six.


def give_loading(regimen: Regimen, clock: Any, count: int) -> None:
    """Give the next `count` planned loading doses, each on its due day."""
    for _ in range(count):
        dose = regimen.doses.filter(phase="loading", status=DoseStatus.PLANNED).order_by("sequence").first()
        assert dose is not None
        clock.move_to(at(dose.due_date, 12))
        give(dose, at(dose.due_date))


def test_it_refuses_to_end_the_neuro_loading_phase_before_any_loading_dose_is_given(
    patient: Patient, clock: Any
) -> None:
    regimen = start(patient, "hydroxo-uk-neuro")

    with pytest.raises(ConflictError) as exc:
        regimen_end_phase(regimen=regimen, reason="no longer needed")

    assert exc.value.field == "phase"
    assert not regimen.decisions.exists()
    assert planned(regimen, "maintenance") == []


def test_it_needs_a_reason_to_end_the_neuro_loading_phase_after_five_loading_doses(
    patient: Patient, clock: Any
) -> None:
    regimen = start(patient, "hydroxo-uk-neuro")
    give_loading(regimen, clock, 5)

    with pytest.raises(ServiceError) as exc:
        regimen_end_phase(regimen=regimen, note="no further improvement", reason="  ")

    assert exc.value.field == "reason"
    assert not regimen.decisions.exists()


def test_it_keeps_the_reason_for_ending_the_neuro_loading_phase_early_on_the_decision_note(
    patient: Patient, clock: Any
) -> None:
    regimen = start(patient, "hydroxo-uk-neuro")
    give_loading(regimen, clock, 1)

    regimen = regimen_end_phase(regimen=regimen, note="no further improvement", reason="transferred to neurology")

    decision = regimen.decisions.get(kind=DecisionKind.END_PHASE)
    assert decision.note == "no further improvement\nEnded after 1 loading dose (§10 V-5): transferred to neurology"
    assert regimen.current_phase == 1


def test_it_ends_the_neuro_loading_phase_after_six_loading_doses_without_a_reason(patient: Patient, clock: Any) -> None:
    regimen = start(patient, "hydroxo-uk-neuro")
    give_loading(regimen, clock, 6)

    regimen = regimen_end_phase(regimen=regimen)

    assert regimen.current_phase == 1
    assert regimen.decisions.get(kind=DecisionKind.END_PHASE).note == ""


def test_it_counts_loading_doses_given_elsewhere_before_an_enrolment(patient: Patient, clock: Any) -> None:
    enrol = {"phase": "loading", "last_dose_date": "2027-01-02", "doses_given": 5}
    regimen = start(patient, "hydroxo-uk-neuro", options={"enrol": enrol})
    give_loading(regimen, clock, 1)

    regimen = regimen_end_phase(regimen=regimen)

    assert regimen.current_phase == 1


def test_a_plateau_review_before_six_loading_doses_needs_a_note_as_its_reason(patient: Patient, clock: Any) -> None:
    regimen = start(patient, "hydroxo-uk-neuro")
    with pytest.raises(ConflictError) as none_given:
        regimen_record_review(regimen=regimen, outcome="plateau_reached", note="no change")
    give_loading(regimen, clock, 3)

    with pytest.raises(ServiceError) as exc:
        regimen_record_review(regimen=regimen, outcome="plateau_reached")
    assert not regimen.decisions.exists()
    regimen_record_review(regimen=regimen, outcome="plateau_reached", note="neurologist: plateau since week 1")

    assert none_given.value.field == "phase"
    assert exc.value.field == "note"
    end = regimen.decisions.get(kind=DecisionKind.END_PHASE)
    assert end.note == (
        "Plateau reached at review\nEnded after 3 loading doses (§10 V-5): neurologist: plateau since week 1"
    )
    regimen.refresh_from_db()
    assert regimen.current_phase == 1


def test_it_plans_the_phase_after_the_gate_once_a_clinician_confirms_it(patient: Patient, clock: Any) -> None:
    regimen = start(patient, "cyano-us-label")
    # Nothing past the gate is planned, but with daily doses still to give nobody is waiting yet.
    assert regimen.awaiting_gate is False
    assert set(regimen.doses.values_list("phase", flat=True)) == {"daily"}
    clock.move_to(at(jan(11), 12))

    regimen = regimen_confirm_gate(regimen=regimen, note="reticulocytes up")

    assert regimen.awaiting_gate is False
    # Alternate days from the later of the gate (11 Jan) and 2 days after the 7th daily dose (12 Jan).
    assert planned(regimen, "alternate")[0] == jan(14)
    with pytest.raises(ConflictError):
        regimen_confirm_gate(regimen=regimen)


# --- regimen_stop -----------------------------------------------------------------------------


def test_it_needs_the_s5_warning_acknowledged_to_stop_lifelong_therapy_for_pernicious_anaemia(
    patient: Patient, clock: Any
) -> None:
    regimen = start(patient, "hydroxo-uk-standard")

    with pytest.raises(WarningsNotAcknowledged) as exc:
        regimen_stop(regimen=regimen, reason="patient request")

    assert [w.code for w in exc.value.warnings] == ["lifelong_therapy_stopped"]
    regimen.refresh_from_db()
    assert regimen.status == RegimenStatus.ACTIVE
    assert regimen.doses.filter(status=DoseStatus.PLANNED).exists()


def test_it_cancels_planned_doses_and_due_rechecks_when_a_regimen_stops(patient: Patient, clock: Any) -> None:
    regimen = start(patient, "hydroxo-uk-standard")
    given = give(slot(regimen, 0, 1), at(jan(4)))

    regimen = regimen_stop(regimen=regimen, reason="patient request", acknowledge=["lifelong_therapy_stopped"])

    assert regimen.status == RegimenStatus.STOPPED
    assert regimen.extend_on is None
    assert "lifelong_therapy_stopped" in regimen.acknowledged_warnings
    assert not regimen.doses.filter(status=DoseStatus.PLANNED).exists()
    assert regimen.doses.get(id=given.id).status == DoseStatus.GIVEN
    assert set(regimen.lab_rechecks.values_list("status", flat=True)) == {RecheckStatus.CANCELLED}


def test_it_stops_without_a_warning_when_the_cause_is_reversible(clinic: Clinic, clock: Any) -> None:
    patient = PatientFactory(clinic=clinic, deficiency_cause="diet")
    regimen = start(patient, "hydroxo-uk-standard")

    regimen = regimen_stop(regimen=regimen, reason="levels restored")

    assert regimen.status == RegimenStatus.STOPPED


# --- clinic_update_calendar -------------------------------------------------------------------


def test_it_moves_a_planned_dose_off_a_new_closed_date_and_leaves_given_doses_alone(
    patient: Patient, clinic: Clinic, clock: Any
) -> None:
    regimen = start(patient, "hydroxo-uk-standard")
    first = give(slot(regimen, 0, 1), at(jan(4)))
    second = slot(regimen, 0, 2)

    clinic_update_calendar(clinic=clinic, closed_dates=[jan(6)])

    moved = ScheduledDose.objects.get(id=second.id)
    assert (moved.status, moved.due_date) == (DoseStatus.PLANNED, jan(7))
    assert planned(regimen, "loading") == [jan(7), jan(11), jan(13), jan(15), jan(18)]
    unchanged = ScheduledDose.objects.get(id=first.id)
    assert (unchanged.status, unchanged.due_date, unchanged.administered_at) == (DoseStatus.GIVEN, jan(4), at(jan(4)))


def test_it_replans_when_the_open_weekdays_change(patient: Patient, clinic: Clinic, clock: Any) -> None:
    regimen = start(patient, "hydroxo-uk-standard")
    first = give(slot(regimen, 0, 1), at(jan(4)))

    clinic_update_calendar(clinic=clinic, open_weekdays=[1, 2, 3])

    # Tuesday-Thursday: Wed 6; Fri 8 closed -> Tue 12, Thu 14; Sat 16 -> Tue 19, Thu 21.
    assert planned(regimen, "loading") == [jan(6), jan(12), jan(14), jan(19), jan(21)]
    assert all(d.weekday() in (1, 2, 3) for d in planned(regimen))
    assert ScheduledDose.objects.get(id=first.id).due_date == jan(4)


def test_it_refuses_a_clinic_with_no_open_weekday(clinic: Clinic, clock: Any) -> None:
    with pytest.raises(ServiceError) as exc:
        clinic_update_calendar(clinic=clinic, open_weekdays=[])

    assert exc.value.field == "open_weekdays"


# --- regimens_extend_horizons -----------------------------------------------------------------


def test_it_extends_a_lifelong_horizon_when_extend_on_comes_and_only_once(patient: Patient, clock: Any) -> None:
    regimen = start(patient, "hydroxo-uk-standard")
    assert planned(regimen, "maintenance")[-1] == date(2027, 12, 17)

    assert regimens_extend_horizons(at=at(date(2027, 3, 10), 12)) == {"extended": 0}
    assert regimens_extend_horizons(at=at(date(2027, 3, 11), 12)) == {"extended": 1}
    assert regimens_extend_horizons(at=at(date(2027, 3, 11), 12)) == {"extended": 0}

    # 17 Dec 2027 + 12 weeks = 10 Mar 2028, now within 12 months.
    assert planned(regimen, "maintenance")[-1] == date(2028, 3, 10)
    regimen.refresh_from_db()
    assert regimen.extend_on is not None and regimen.extend_on > date(2027, 3, 11)


def test_it_extends_the_neuro_loading_phase_14_days_ahead(patient: Patient, clock: Any) -> None:
    regimen = start(patient, "hydroxo-uk-neuro")
    regimen.refresh_from_db()
    assert regimen.extend_on == jan(6)

    assert regimens_extend_horizons(at=at(jan(6), 12)) == {"extended": 1}

    assert planned(regimen, "loading")[-1] == jan(20)


# --- Cost ---------------------------------------------------------------------------------------


def test_it_starts_a_regimen_in_the_same_few_queries_however_many_doses_it_plans(
    patient: Patient, clinic: Clinic, clock: Any
) -> None:
    # ileal-resection plans 12 monthly doses, bariatric-oral about 365 daily ones: rows are
    # written in bulk, so the count of queries does not follow the count of doses.
    counts = {}
    bariatric = PatientFactory(clinic=clinic, deficiency_cause="bariatric_surgery")
    for code, who in (("ileal-resection", patient), ("bariatric-oral", bariatric)):
        protocol = Protocol.objects.get(code=code)
        with CaptureQueriesContext(connection) as queries:
            regimen = regimen_start(patient=who, protocol=protocol, start_date=jan(4))
        counts[code] = len(queries)
        assert regimen.doses.count() >= 12

    # 11 for the regimen itself, 2 for the baseline lab flags (monitoring.inputs.lab_context) and
    # 3 for the point-of-care safety checks (monitoring.safety: the phases' drugs and routes, Leber's
    # disease, allergy); an oral protocol adds 1 for the oral first-line check (§10 V-6: neurological
    # symptoms and IF antibody facts).
    assert counts["ileal-resection"] + 1 == counts["bariatric-oral"] <= 17


# --- Protocol edits -----------------------------------------------------------------------------


def test_it_keeps_a_running_regimen_on_the_protocol_it_started_with(
    patient: Patient, clinic: Clinic, clock: Any
) -> None:
    # Given the RULES example regimen (maintenance every 12 weeks: first on 2027-04-09)
    regimen = start(patient, "hydroxo-uk-standard")
    # When an admin changes the protocol's maintenance to every 8 weeks
    ProtocolPhase.objects.filter(protocol__code="hydroxo-uk-standard", key="maintenance").update(spacing_value=8)
    # and the regimen is re-planned (a loading dose is given)
    first = regimen.doses.get(phase="loading", sequence=1, status=DoseStatus.PLANNED)
    dose_record_administration(dose=first, administered_at=at(jan(4), 9))

    # Then the running regimen keeps its 12 weeks (six loading doses to 15 Jan + 84 days)
    assert planned(regimen, "maintenance")[0] == date(2027, 4, 9)
    # while a regimen started now follows the edited protocol (15 Jan + 56 days)
    newcomer = start(PatientFactory(clinic=clinic), "hydroxo-uk-standard")
    assert planned(newcomer, "maintenance")[0] == date(2027, 3, 12)
