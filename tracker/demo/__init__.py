"""A believable demo: two clinics, their staff, a superuser and ~40 patients on every built-in protocol
at different stages, written through the product's own services (`manage.py seed_demo` runs it).

`clinics` holds the clinics, calendars and logins; `patients` the patients and their treatment
stories; `labs` their lab histories. Idempotent: clinics, users and patients are keyed on name,
username and MRN, and a patient who already exists is skipped with the regimen they have.

Import this package only once Django is set up: it reaches every app's models.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from django.utils import timezone as djtz

from notifications.models import Alert, AlertStatus
from patients.models import Clinic, LabResult, Patient
from regimens.models import DoseStatus, Protocol, Regimen, ScheduledDose
from tracker.demo.clinics import CLINICS, Login, ensure_clinic, ensure_staff, ensure_superuser, staff_of
from tracker.demo.patients import PatientSeed, build_patient_seeds, create_patient, protocol_codes

# Fixed, so every run draws the same patients, names and histories.
SEED = 20270104

__all__ = ["SEED", "DemoError", "Login", "PatientSeed", "SeedResult", "seed", "summary_counts"]


class DemoError(Exception):
    """The database cannot take the demo (e.g. not migrated)."""


@dataclass
class SeedResult:
    # Staff logins clinic by clinic, then the superuser.
    logins: list[Login] = field(default_factory=list)
    created: int = 0
    skipped: int = 0


def _no_progress(seeds: Sequence[PatientSeed]) -> Iterable[PatientSeed]:
    return seeds


def seed(
    *, patients: int, progress: Callable[[Sequence[PatientSeed]], Iterable[PatientSeed]] = _no_progress
) -> SeedResult:
    """Create what is missing of the demo; `progress` wraps the patient loop (e.g. a progress bar)."""
    if patients < 0:
        raise ValueError("patients must be 0 or more")
    missing = set(protocol_codes()) - set(Protocol.objects.values_list("code", flat=True))
    if missing:
        raise DemoError(f"Built-in protocols missing ({', '.join(sorted(missing))}); run migrate first.")
    rng = random.Random(SEED)

    result = SeedResult()
    clinics: dict[str, Clinic] = {}
    for clinic_seed in CLINICS:
        clinic = ensure_clinic(clinic_seed)
        clinics[clinic_seed.slug] = clinic
        result.logins.extend(ensure_staff(clinic_seed, clinic))
    result.logins.append(ensure_superuser())

    for patient_seed in progress(build_patient_seeds(patients, rng)):
        clinic = clinics[patient_seed.clinic_slug]
        if Patient.objects.filter(clinic=clinic, mrn=patient_seed.mrn).exists():
            result.skipped += 1
            continue
        create_patient(seed=patient_seed, clinic=clinic, staff=staff_of(clinic))
        result.created += 1
    return result


def summary_counts() -> dict[str, int]:
    """What the database holds now (all clinics, not only the demo's)."""
    today = djtz.localdate()
    doses = ScheduledDose.objects
    return {
        "patients": Patient.objects.count(),
        "regimens": Regimen.objects.count(),
        "given": doses.filter(status=DoseStatus.GIVEN).count(),
        "planned": doses.filter(status=DoseStatus.PLANNED).count(),
        "not_given": doses.filter(status=DoseStatus.NOT_GIVEN).count(),
        "overdue": doses.filter(status=DoseStatus.PLANNED, due_date__lt=today).count(),
        "results": LabResult.objects.count(),
        "alerts": Alert.objects.exclude(status=AlertStatus.RESOLVED).count(),
    }
