"""Point-of-care safety checks (RULES.md §4) that regimen services call before they write.

Each function returns the warnings that apply; the service refuses to write until the
client acknowledges each warning's code (tracker.errors.require_acknowledged). The
`after_*` hooks run inside the service's transaction, after the write, so that an alert
raised by an acknowledged warning is committed together with the change that caused it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from patients.models import IRREVERSIBLE_CAUSES
from tracker.errors import SafetyWarning

if TYPE_CHECKING:
    from patients.models import Patient
    from regimens.models import Protocol, Regimen, ScheduledDose


def regimen_start_warnings(*, patient: Patient, protocol: Protocol) -> list[SafetyWarning]:
    """Warnings when a regimen is started (S-10, S-11, S-12, R-ORAL-1)."""
    return []


def administration_warnings(
    *, dose: ScheduledDose, route: str, administered_at: datetime
) -> list[SafetyWarning]:
    """Warnings when a dose is recorded as given (S-2 low platelets, S-12 wrong route)."""
    return []


def regimen_stop_warnings(*, regimen: Regimen) -> list[SafetyWarning]:
    """S-5: stopping lifelong therapy when the cause is irreversible is a hard-stop warning."""
    # The regimen's own copy of its protocol (regimens/services.py protocol_snapshot).
    snapshot_phases = regimen.protocol_snapshot.get("phases")
    conditions = (
        {p["end_condition"] for p in snapshot_phases}
        if snapshot_phases
        else set(regimen.protocol.phases.values_list("end_condition", flat=True))
    )
    lifelong = bool(conditions & {"lifelong", "until_cause_resolved"})
    if lifelong and regimen.patient.deficiency_cause in IRREVERSIBLE_CAUSES:
        return [
            SafetyWarning(
                code="lifelong_therapy_stopped",
                rule="S-5",
                message=(
                    "Lifelong therapy is indicated: the recorded cause "
                    f"({regimen.patient.get_deficiency_cause_display()}) is irreversible."
                ),
            )
        ]
    return []


def after_regimen_stopped(*, regimen: Regimen, acknowledged: list[str]) -> None:
    """Called inside the stop transaction. The monitoring layer raises the S-5 alert here."""


def after_dose_recorded(*, dose: ScheduledDose, acknowledged: list[str]) -> None:
    """Called inside the transaction that records a dose given or not given."""


def after_review_recorded(*, regimen: Regimen, outcome: str) -> None:
    """Called inside the transaction that records a §1.3 review (e.g. 'worsening' -> HIGH alert)."""
