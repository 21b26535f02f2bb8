"""Information prompts on the patient record and the lab-request view (RULES §4 S-7, S-14; §10 V-15).

They are INFO only: they never change a dose, open no alert and need no acknowledgement. Each is
recomputed from the record on every request, so it appears and disappears with the facts behind it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date

from patients.models import DeficiencyCause, FactKind, Patient, PatientFact
from patients.selectors import pregnant_on
from tracker.clock import patient_today

# RULES S-7: "Age ≥ 75" (AFP-2017: adults older than 75 are a risk group for screening). Not a [P] number.
S7_AGE = 75

AGE_75_OR_OVER = "age_75_or_over"
PREGNANCY_ACTIVE_B12 = "pregnancy_active_b12"
NITROUS_OXIDE_TESTS = "nitrous_oxide_homocysteine_or_mma"
ETHNICITY_REFERENCE_RANGES = "ethnicity_reference_ranges"


@dataclass(frozen=True)
class Prompt:
    code: str
    rule: str
    message: str
    severity: str = "info"
    details: dict[str, object] = field(default_factory=dict)


def patient_prompts(
    patient: Patient, on: date | None = None, facts: Iterable[PatientFact] | None = None
) -> list[Prompt]:
    """The S-7 and S-14 prompts that apply to `patient` on `on` (default: their today). `facts`: the patient's
    facts already read (the patient page), else their pregnancies are read here."""
    on = on or patient_today(patient)
    prompts: list[Prompt] = []
    age = patient.age_on(on)
    if age >= S7_AGE:
        prompts.append(
            Prompt(
                code=AGE_75_OR_OVER,
                rule="S-7",
                message=(
                    f"Age {age}: people aged 75 or over are a risk group for B12 deficiency. Consider screening "
                    "and a lower threshold to act on borderline results. No change to the dose."
                ),
                details={"age": age},
            )
        )
    if facts is None:
        facts = list(PatientFact.objects.filter(patient=patient, kind=FactKind.PREGNANCY))
    if pregnant_on(facts, on):
        prompts.append(
            Prompt(
                code=PREGNANCY_ACTIVE_B12,
                rule="S-14",
                message="Pregnancy: request active B12 as the initial test (NG239).",
            )
        )
    if patient.deficiency_cause == DeficiencyCause.NITROUS_OXIDE:
        prompts.append(
            Prompt(
                code=NITROUS_OXIDE_TESTS,
                rule="S-14",
                message="Nitrous oxide use: request homocysteine or MMA as the initial test (NG239).",
            )
        )
    # Cobalt records no ethnicity, so the note is shown on every record (docs/clinical-reference.md, Decisions).
    prompts.append(
        Prompt(
            code=ETHNICITY_REFERENCE_RANGES,
            rule="S-14",
            message=(
                "For people of Black ethnicity, B12 reference ranges may be higher and treatment may be needed "
                "at lower cut-offs (NG239)."
            ),
            details={"applies_to": "patients of Black ethnicity (not recorded in Cobalt)"},
        )
    )
    return prompts


def patient_prompts_data(patient: Patient, on: date | None = None) -> list[dict[str, object]]:
    return [asdict(p) for p in patient_prompts(patient, on)]
