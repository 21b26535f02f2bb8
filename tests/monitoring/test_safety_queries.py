"""The written-out queries of the point-of-care safety checks (monitoring/safety.py: last_platelet_count for S-2,
present_fact for S-5, S-10 and S-11) find the same row as the ORM queries they replaced, over rows that each
differ in one of the conditions: another patient or analyte, no value, entered in error, collected later, a tie on
the time; absent, ended, another kind, a tie on when it was recorded."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from monitoring.safety import _platelet_results, last_platelet_count, present_fact
from patients.models import FactKind, LabResult, Patient, PatientFact
from tests.factories import LabResultFactory, PatientFactFactory, PatientFactory

pytestmark = pytest.mark.django_db

DAY = datetime(2027, 1, 10, 9, tzinfo=UTC)


def platelets(patient: Patient, value: str | None, at: datetime, **fields: Any) -> LabResult:
    result: LabResult = LabResultFactory(
        patient=patient,
        platelets=True,
        value_as_entered=value or "haemolysed",
        value_canonical=None if value is None else Decimal(value),
        collected_at=at,
        **fields,
    )
    return result


def orm_last_platelet(patient: Patient, at: datetime) -> LabResult | None:
    last: LabResult | None = _platelet_results(at).filter(patient=patient).order_by("-collected_at", "-id").first()
    return last


def orm_present_fact(patient: Patient, kind: str, on: date) -> PatientFact | None:
    fact: PatientFact | None = (
        PatientFact.objects.filter(patient=patient, kind=kind, absent=False)
        .exclude(end_date__lt=on)
        .order_by("-recorded_at", "-id")
        .first()
    )
    return fact


def test_the_last_platelet_count_is_the_one_the_orm_finds(clinic: Any) -> None:
    patient, other = PatientFactory(clinic=clinic), PatientFactory(clinic=clinic)
    platelets(patient, "140", DAY - timedelta(days=9))
    tied = [platelets(patient, "120", DAY - timedelta(days=5)), platelets(patient, "95", DAY - timedelta(days=5))]
    platelets(patient, None, DAY - timedelta(days=3))  # no value
    platelets(patient, "20", DAY - timedelta(days=2), error_recorded_at=DAY)  # entered in error
    platelets(patient, "60", DAY + timedelta(hours=1))  # collected after the dose
    platelets(other, "30", DAY - timedelta(days=1))  # another patient
    LabResultFactory(patient=patient, collected_at=DAY - timedelta(days=1))  # another analyte (hemoglobin)

    for at in (
        DAY - timedelta(days=10),
        DAY - timedelta(days=9),
        DAY - timedelta(days=5),
        DAY,
        DAY + timedelta(days=1),
    ):
        assert last_platelet_count(patient, at) == orm_last_platelet(patient, at), at
    # The latest within the tie (by id), with its value as a Decimal
    found = last_platelet_count(patient, DAY)
    assert found == tied[1] and found.value_canonical == Decimal(95)
    assert last_platelet_count(patient, DAY + timedelta(days=1)).value_canonical == Decimal(60)
    assert last_platelet_count(patient, DAY - timedelta(days=10)) is None


def test_the_present_fact_is_the_one_the_orm_finds(clinic: Any) -> None:
    patient, other = PatientFactory(clinic=clinic), PatientFactory(clinic=clinic)
    allergy = FactKind.COBALAMIN_ALLERGY

    def fact(days_ago: int, whose: Patient = patient, kind: str = allergy, **fields: Any) -> PatientFact:
        made: PatientFact = PatientFactFactory(patient=whose, kind=kind, onset_date=None, **fields)
        # recorded_at is set on insert (auto_now_add): moved back afterwards
        PatientFact.objects.filter(pk=made.pk).update(recorded_at=DAY - timedelta(days=days_ago))
        made.refresh_from_db()
        return made

    # Recorded in the opposite order of their ids, so that the order by recorded_at is tested, not the ids'
    tied = [fact(5), fact(5)]
    fact(10, absent=True)  # checked and absent: does not cancel the allergy
    ended = fact(20, end_date=DAY.date() - timedelta(days=10))
    oldest = fact(30)
    fact(0, whose=other)  # another patient
    fact(0, kind=FactKind.LEBERS_DISEASE)  # another kind

    for on in (DAY.date() - timedelta(days=40), DAY.date() - timedelta(days=10), DAY.date(), date(2028, 1, 1)):
        for kind in (allergy, FactKind.LEBERS_DISEASE, FactKind.PREGNANCY):
            assert present_fact(patient, kind, on) == orm_present_fact(patient, kind, on), (kind, on)
    assert present_fact(patient, allergy, DAY.date()) == tied[1]
    tied[0].delete()
    tied[1].delete()
    # The allergy recorded with an end before the day no longer stands then; the one without an end still does
    assert present_fact(patient, allergy, DAY.date()) == oldest
    assert present_fact(patient, allergy, DAY.date() - timedelta(days=15)) == ended
    assert present_fact(patient, FactKind.PREGNANCY, DAY.date()) is None
