"""Read functions over patients' rows that every app shares (HackSoft "selectors")."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Protocol, TypeVar

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
