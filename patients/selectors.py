"""Read functions over patients' rows that every app shares (HackSoft "selectors")."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Protocol, TypeVar

from django.db import connection

from patients.models import FactKind, Patient, PatientFact


class FactLike(Protocol):
    kind: str
    absent: bool
    onset_date: date | None
    end_date: date | None


F = TypeVar("F", bound=FactLike)


def fact_present(facts: Iterable[F], kind: str, on: date | None = None) -> F | None:
    """The first recorded (not checked-and-absent) fact of `kind` among `facts`, covering `on` when given."""
    for fact in facts:
        if fact.kind != kind or fact.absent:
            continue
        if on is not None and (
            (fact.onset_date is not None and fact.onset_date > on) or (fact.end_date is not None and fact.end_date < on)
        ):
            continue
        return fact
    return None


def pregnant_on(facts: Iterable[FactLike], on: date) -> bool:
    """Whether a pregnancy recorded among `facts` covers `on` (pregnancy changes the Hb range, RULES §5.2)."""
    return fact_present(facts, FactKind.PREGNANCY, on) is not None


def patient_pregnant_on(patient: Patient, on: date) -> bool:
    return pregnant_on(PatientFact.objects.filter(patient=patient, kind=FactKind.PREGNANCY), on)


# RULES R-ORAL-1, §8 Q2, §10 V-6: oral B12 is not dependable for these causes; it needs a clinician's
# confirmation (an override with a reason) and at least 1000 mcg a day.
ORAL_CAUTION_CAUSES = frozenset({"pernicious_anemia", "autoimmune_gastritis"})


def oral_caution_cause(patient: Patient, on: date, facts: Iterable[FactLike] | None = None) -> str | None:
    """Why oral B12 needs a clinician's confirmation for this patient (§10 V-6), or None: the recorded
    cause (pernicious anaemia, autoimmune gastritis) or an IF-antibody-positive fact covering `on`
    (among `facts` when the caller has loaded them)."""
    if patient.deficiency_cause in ORAL_CAUTION_CAUSES:
        return str(patient.deficiency_cause)
    if facts is None:
        facts = PatientFact.objects.filter(patient=patient, kind=FactKind.IF_ANTIBODY_POSITIVE)
    if fact_present(facts, FactKind.IF_ANTIBODY_POSITIVE, on) is not None:
        return FactKind.IF_ANTIBODY_POSITIVE.value
    return None


# RULES R-ORAL-1 (NG239: "if the cause is or may be malabsorption, prescribe at least 1 mg a day"), §8 Q2,
# §10 V-6: every recorded cause is read as malabsorption, or possibly so (`other`, `unknown`), except these two.
# This reading needs clinical sign-off (docs/clinical-reference.md, decision D-ORAL-2).
NOT_MALABSORPTION_CAUSES = frozenset({"diet", "nitrous_oxide"})


def oral_dose_check_cause(patient: Patient, on: date, facts: Iterable[FactLike] | None = None) -> str | None:
    """Why an oral dose below 1000 mcg a day needs an override reason (R-ORAL-1, §10 V-6), or None: a cause of
    the oral first-line caution (`oral_caution_cause`), else the recorded cause when it is or may be
    malabsorption (any but diet and nitrous oxide)."""
    cause = oral_caution_cause(patient, on, facts)
    if cause is not None:
        return cause
    if patient.deficiency_cause not in NOT_MALABSORPTION_CAUSES:
        return str(patient.deficiency_cause)
    return None


# A skip over the (clinic, timezone) index: per clinic its first zone, then each next zone after the last one found.
_CLINIC_ZONES = """
WITH RECURSIVE zone (clinic_id, timezone) AS (
    SELECT c.id, (SELECT p.timezone FROM patients_patient p WHERE p.clinic_id = c.id ORDER BY p.timezone LIMIT 1)
    FROM unnest(%s::bigint[]) AS c (id)
    UNION ALL
    SELECT z.clinic_id, (
        SELECT p.timezone FROM patients_patient p WHERE p.clinic_id = z.clinic_id AND p.timezone > z.timezone
        ORDER BY p.timezone LIMIT 1
    )
    FROM zone z WHERE z.timezone IS NOT NULL
)
SELECT DISTINCT timezone FROM zone WHERE timezone IS NOT NULL
"""


def clinic_patient_zones(clinic_ids: Sequence[int]) -> set[str]:
    """The time zones of the patients of the clinics `clinic_ids`, in one query of a few index lookups per zone
    (patient_clinic_zone_idx), not a read of every patient: a clinic's patients live in a handful of zones."""
    if not clinic_ids:
        return set()
    if connection.vendor != "postgresql":  # SQLite (`make run`'s default): the plain DISTINCT
        rows = Patient.objects.filter(clinic_id__in=clinic_ids).order_by().values_list("timezone", flat=True)
        return set(rows.distinct())
    with connection.cursor() as cursor:
        cursor.execute(_CLINIC_ZONES, [list(clinic_ids)])
        return {zone for (zone,) in cursor.fetchall()}
