"""Monitoring services (issue 3). `lab_context` feeds the lab-recheck plan of the engine."""

from __future__ import annotations

from datetime import date

from patients.models import IRREVERSIBLE_CAUSES, Patient
from regimens.schedule import LabContext


def lab_context(patient: Patient, t0: date | None) -> LabContext:
    """The baseline and follow-up flags RULES.md §2 plans rechecks from.

    Until lab results exist this only knows the cause (L-12); the monitoring work fills in
    the baseline flags from the latest result of each analyte before T0.
    """
    return LabContext(irreversible_cause=patient.deficiency_cause in IRREVERSIBLE_CAUSES)
