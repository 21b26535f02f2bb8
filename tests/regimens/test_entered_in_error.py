"""RULES §10 V-14: a dose recorded as given or not given can be marked entered in error: by a clinician,
or by the nurse who recorded it within 7 days [P]. The record stays (struck through, who, when, why),
the slot is planned again as if the record never happened, and the later doses are re-planned."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from patients.models import Role
from regimens.models import DoseStatus, Protocol, Regimen, ScheduledDose
from regimens.services import dose_record_administration, dose_record_not_given, regimen_start, regimen_stop
from tests.conftest import client_for
from tests.factories import staff_user

pytestmark = pytest.mark.django_db

MONDAY = date(2027, 1, 4)


def at(on: date, hour: int = 8) -> datetime:
    return datetime(on.year, on.month, on.day, hour, tzinfo=UTC)


def jan(n: int) -> date:
    return date(2027, 1, n)


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(at(MONDAY, 9), tick=False) as traveller:
        yield traveller


@pytest.fixture
def regimen(patient: Any, clock: Any) -> Regimen:
    return regimen_start(patient=patient, protocol=Protocol.objects.get(code="hydroxo-uk-standard"), start_date=MONDAY)


def slot(regimen: Regimen, sequence: int, phase_index: int = 0) -> ScheduledDose:
    return regimen.doses.get(phase_index=phase_index, sequence=sequence, status__in=["planned", "given"])


def loading(regimen: Regimen) -> list[date]:
    return list(
        regimen.doses.filter(phase_index=0, status=DoseStatus.PLANNED)
        .order_by("sequence")
        .values_list("due_date", flat=True)
    )


def mark(client: APIClient, dose: ScheduledDose, reason: str = "recorded on the wrong patient") -> Any:
    return client.post(f"/api/doses/{dose.pk}/entered-in-error/", {"reason": reason}, format="json")


def test_it_lets_the_nurse_who_recorded_a_dose_mark_it_entered_in_error(
    regimen: Regimen, nurse: Any, nurse_api: APIClient, clock: Any
) -> None:
    # Given the nurse recorded loading dose 2 (due Wednesday 6th) as given on Thursday 7th, and the later
    # doses followed from that date
    dose_record_administration(dose=slot(regimen, 1), administered_at=at(jan(4)), user=nurse)
    clock.move_to(at(jan(7), 11))
    second = dose_record_administration(dose=slot(regimen, 2), administered_at=at(jan(7)), user=nurse)
    assert loading(regimen) == [jan(11), jan(13), jan(15), jan(18)]
    clock.move_to(at(jan(8), 9))

    # When she marks it entered in error the next day
    response = mark(nurse_api, second)

    # Then the record stays, struck through with who, when and why
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "entered_in_error"
    assert body["error_reason"] == "recorded on the wrong patient"
    assert body["error_recorded_by"] == nurse.pk
    assert body["error_recorded_at"] == "2027-01-08T09:00:00Z"
    assert body["administered_at"] == "2027-01-07T08:00:00Z"
    # And the slot is planned again on its own date (overdue: it was never given), the later doses after it
    again = slot(regimen, 2)
    assert again.pk != second.pk and again.status == DoseStatus.PLANNED and again.due_date == jan(6)
    assert loading(regimen) == [jan(6), jan(8), jan(11), jan(13), jan(15)]


def test_it_lists_entered_in_error_doses_with_their_status(regimen: Regimen, nurse: Any, nurse_api: APIClient) -> None:
    first = dose_record_administration(dose=slot(regimen, 1), administered_at=at(jan(4)), user=nurse)
    mark(nurse_api, first)

    listed = nurse_api.get(f"/api/doses/?regimen={regimen.pk}&status=entered_in_error").json()["results"]

    assert [(d["id"], d["status"]) for d in listed] == [(first.pk, "entered_in_error")]


def test_it_plans_the_first_dose_again_when_it_was_entered_in_error(
    regimen: Regimen, nurse: Any, nurse_api: APIClient
) -> None:
    first = dose_record_administration(dose=slot(regimen, 1), administered_at=at(jan(4)), user=nurse)

    mark(nurse_api, first)

    assert loading(regimen) == [jan(4), jan(6), jan(8), jan(11), jan(13), jan(15)]
    regimen.refresh_from_db()
    assert regimen.doses.filter(status=DoseStatus.GIVEN).count() == 0


def test_it_moves_a_replacement_back_when_the_not_given_record_was_wrong(
    regimen: Regimen, nurse: Any, nurse_api: APIClient, clock: Any
) -> None:
    # Given dose 1 was recorded as not given on Monday: its replacement is on Tuesday
    not_given = dose_record_not_given(dose=slot(regimen, 1), reason="did not attend", user=nurse)
    assert loading(regimen)[0] == jan(5)

    # When that record is marked entered in error (the patient did come)
    response = mark(nurse_api, not_given, "the patient came; wrong row")

    # Then the slot is planned on its original day again and the not-given row stays, struck through
    assert response.status_code == 200, response.json()
    assert loading(regimen)[:2] == [jan(4), jan(6)]
    kept = ScheduledDose.objects.get(pk=not_given.pk)
    assert (kept.status, kept.not_given_reason) == (DoseStatus.ENTERED_IN_ERROR, "did not attend")


@pytest.mark.parametrize(("days_later", "allowed"), [(7, True), (8, False)])
def test_it_gives_the_recording_nurse_7_days(
    regimen: Regimen, nurse: Any, nurse_api: APIClient, clock: Any, days_later: int, allowed: bool
) -> None:
    first = dose_record_administration(dose=slot(regimen, 1), administered_at=at(jan(4), 8), user=nurse)
    clock.move_to(at(jan(4 + days_later), 9))

    response = mark(nurse_api, first)

    assert response.status_code == (200 if allowed else 403), response.json()
    if not allowed:
        assert "only a clinician" in response.json()["detail"]
        assert ScheduledDose.objects.get(pk=first.pk).status == DoseStatus.GIVEN


def test_it_reads_the_nurses_limit_from_the_setting(
    regimen: Regimen, nurse: Any, nurse_api: APIClient, clock: Any, settings: Any
) -> None:
    settings.COBALT = {**settings.COBALT, "ENTERED_IN_ERROR_RECORDER_DAYS": 2}
    first = dose_record_administration(dose=slot(regimen, 1), administered_at=at(jan(4), 8), user=nurse)
    clock.move_to(at(jan(7), 9))

    assert mark(nurse_api, first).status_code == 403


def test_it_lets_a_clinician_mark_a_dose_entered_in_error_at_any_time(
    regimen: Regimen, nurse: Any, clinician: Any, clinician_api: APIClient, clock: Any
) -> None:
    first = dose_record_administration(dose=slot(regimen, 1), administered_at=at(jan(4), 8), user=nurse)
    clock.move_to(at(date(2027, 3, 1), 9))

    response = mark(clinician_api, first)

    assert response.status_code == 200, response.json()
    assert response.json()["error_recorded_by"] == clinician.pk


def test_it_refuses_another_nurse(regimen: Regimen, nurse: Any, clinic: Any) -> None:
    first = dose_record_administration(dose=slot(regimen, 1), administered_at=at(jan(4), 8), user=nurse)
    colleague = client_for(staff_user(clinic, Role.NURSE, username="colleague"))

    response = mark(colleague, first)

    assert response.status_code == 403
    assert ScheduledDose.objects.get(pk=first.pk).status == DoseStatus.GIVEN


def test_it_refuses_a_dose_that_was_never_recorded(regimen: Regimen, clinician_api: APIClient) -> None:
    response = mark(clinician_api, slot(regimen, 1))

    assert response.status_code == 409
    assert "status" in response.json()


def test_it_needs_a_reason(regimen: Regimen, nurse: Any, nurse_api: APIClient) -> None:
    first = dose_record_administration(dose=slot(regimen, 1), administered_at=at(jan(4), 8), user=nurse)

    response = nurse_api.post(f"/api/doses/{first.pk}/entered-in-error/", {"reason": "  "}, format="json")

    assert response.status_code == 400
    assert "reason" in response.json()


def test_it_answers_a_repeat_unchanged_and_a_different_repeat_with_409(
    regimen: Regimen, nurse: Any, nurse_api: APIClient
) -> None:
    first = dose_record_administration(dose=slot(regimen, 1), administered_at=at(jan(4), 8), user=nurse)
    assert mark(nurse_api, first).status_code == 200
    planned_before = loading(regimen)

    assert mark(nurse_api, first).status_code == 200
    assert mark(nurse_api, first, "another reason").status_code == 409
    assert loading(regimen) == planned_before


def test_it_corrects_the_record_of_a_stopped_regimen_without_planning_it_again(
    patient: Any, regimen: Regimen, nurse: Any, clinician_api: APIClient
) -> None:
    first = dose_record_administration(dose=slot(regimen, 1), administered_at=at(jan(4), 8), user=nurse)
    regimen_stop(regimen=regimen, reason="moved away", acknowledge=["lifelong_therapy_stopped"])

    response = mark(clinician_api, first)

    assert response.status_code == 200, response.json()
    assert not regimen.doses.filter(status=DoseStatus.PLANNED).exists()


def test_it_runs_the_monitoring_rules_again_after_the_correction(
    regimen: Regimen, nurse: Any, nurse_api: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    first = dose_record_administration(dose=slot(regimen, 1), administered_at=at(jan(4), 8), user=nurse)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        mark(nurse_api, first)

    assert len(callbacks) >= 1
