"""Write services for medications and patient facts/events).

Each service is one transaction: it checks the input (ServiceError naming the field), runs the
point-of-care safety checks (announced through tracker/events.py; a warning must be acknowledged before anything is
written), writes, raises the alerts of acknowledged overrides and schedules the patient's monitoring
evaluation for after the commit.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction

from patients.models import FactKind, Medication, MedicationKind, Patient, PatientFact
from tracker import events
from tracker.clock import patient_today
from tracker.errors import ConflictError, ServiceError, require_acknowledged, require_override_reason

# Routes a medication may have (regimens.models.Route values); "deep_SC" is accepted for "deep SC".
ROUTES = ("IM", "SC", "deep SC", "PO", "SL", "IN", "IV")
ROUTE_ALIASES = {"deep_sc": "deep SC", "deep sc": "deep SC", "deepsc": "deep SC"}
DOSE_UNITS = ("mcg", "mg")
# Facts that are events (one day, nothing to end): RULES §3.6 transfusion.
EVENT_KINDS = frozenset({FactKind.TRANSFUSION})


def _user(user: Any) -> Any:
    return user if getattr(user, "is_authenticated", False) else None


def normalize_route(route: str) -> str:
    route = (route or "").strip()
    if not route:
        return ""
    alias = ROUTE_ALIASES.get(route.lower())
    if alias:
        return alias
    for known in ROUTES:
        if route.upper() == known.upper():
            return known
    raise ServiceError("route", f"'{route}' is not a route; use one of {', '.join(ROUTES)}")


def _max_ahead() -> int:
    return int(settings.COBALT["MAX_START_DAYS_AHEAD"])


def _lock_patient(patient: Patient) -> Patient:
    locked: Patient = Patient.objects.select_for_update().get(pk=patient.pk)
    return locked


def medication_create(
    *,
    patient: Patient,
    kind: str,
    start_date: date,
    name: str = "",
    dose: Decimal | None = None,
    dose_unit: str = "",
    route: str = "",
    frequency: str = "",
    stop_date: date | None = None,
    acknowledge: list[str] | None = None,
    override_reason: str = "",
    user: Any = None,
) -> Medication:
    """Record a medication. Folic acid with no B12 dose on or before its start (S-1), cyanocobalamin with
    Leber's disease (S-10), B12 with a recorded allergy (S-11) and a wrong B12 route (S-12) must be
    acknowledged; the hard stops (S-1, S-10, S-11) also need `override_reason`."""
    if kind not in MedicationKind.values:
        raise ServiceError("kind", f"'{kind}' is not a medication kind; use one of {', '.join(MedicationKind.values)}")
    route = normalize_route(route)
    dose_unit = (dose_unit or "").strip()
    if dose_unit and dose_unit not in DOSE_UNITS:
        raise ServiceError("dose_unit", f"must be one of {', '.join(DOSE_UNITS)}")
    if dose is not None and dose <= 0:
        raise ServiceError("dose", "must be more than 0")
    if dose is not None and not dose_unit:
        raise ServiceError("dose_unit", "give the unit of the dose (mcg or mg)")
    today = patient_today(patient)
    if start_date > today + timedelta(days=_max_ahead()):
        raise ServiceError("start_date", f"is more than {_max_ahead()} days in the future")
    if stop_date is not None and stop_date < start_date:
        raise ServiceError("stop_date", "cannot be before start_date")
    override_reason = (override_reason or "").strip()
    with transaction.atomic():
        patient = _lock_patient(patient)
        warnings = events.collect(
            "medication.starting", patient=patient, kind=kind, route=route, start_date=start_date
        )
        acknowledged = require_acknowledged(warnings, acknowledge)
        override_reason = require_override_reason(warnings, acknowledged, override_reason)
        medication = Medication.objects.create(
            patient=patient,
            kind=kind,
            name=(name or "").strip(),
            dose=dose,
            dose_unit=dose_unit,
            route=route,
            frequency=(frequency or "").strip(),
            start_date=start_date,
            stop_date=stop_date,
            acknowledged_warnings=acknowledged,
            override_reason=override_reason if acknowledged else "",
            created_by=_user(user),
        )
        events.announce("medication.recorded", medication=medication, warnings=warnings, acknowledged=acknowledged)
        events.announce_on_commit("patient.changed", patient_id=patient.pk)
    return medication


def medication_set_stop_date(*, medication: Medication, stop_date: date | None, user: Any = None) -> Medication:
    """Stop a medication (or clear its stop date). Nothing else of a recorded medication changes."""
    with transaction.atomic():
        medication = Medication.objects.select_for_update().select_related("patient").get(pk=medication.pk)
        if stop_date is not None:
            if stop_date < medication.start_date:
                raise ServiceError("stop_date", f"cannot be before the start date ({medication.start_date})")
            today = patient_today(medication.patient)
            if stop_date > today + timedelta(days=_max_ahead()):
                raise ServiceError("stop_date", f"is more than {_max_ahead()} days in the future")
        if medication.stop_date != stop_date:
            medication.stop_date = stop_date
            medication.save(update_fields=["stop_date"])
            events.announce_on_commit("patient.changed", patient_id=medication.patient_id)
    return medication


def fact_create(
    *,
    patient: Patient,
    kind: str,
    absent: bool = False,
    onset_date: date | None = None,
    end_date: date | None = None,
    note: str = "",
    user: Any = None,
) -> PatientFact:
    """Record a clinical fact (a condition from `onset_date`, until `end_date` when it ends), an event
    (transfusion on `onset_date`), or with `absent` that the fact was checked and is not present."""
    if kind not in FactKind.values:
        raise ServiceError("kind", f"'{kind}' is not a fact kind; use one of {', '.join(FactKind.values)}")
    today = patient_today(patient)
    if onset_date is not None and onset_date > today:
        raise ServiceError("onset_date", "cannot be in the future")
    if end_date is not None and end_date > today:
        raise ServiceError("end_date", "cannot be in the future")
    if absent:
        if kind in EVENT_KINDS:
            raise ServiceError("absent", f"a {kind} is an event: record it when it happens, not as absent")
        if end_date is not None:
            raise ServiceError("end_date", "a fact recorded as absent has no end date")
    elif kind in EVENT_KINDS:
        if onset_date is None:
            raise ServiceError("onset_date", f"give the date of the {kind}")
        if end_date is not None:
            raise ServiceError("end_date", f"a {kind} is an event on one day; it has no end date")
    if onset_date is not None and end_date is not None and end_date < onset_date:
        raise ServiceError("end_date", "cannot be before onset_date")
    with transaction.atomic():
        patient = _lock_patient(patient)
        fact = PatientFact.objects.create(
            patient=patient,
            kind=kind,
            absent=absent,
            onset_date=onset_date,
            end_date=end_date,
            note=(note or "").strip(),
            recorded_by=_user(user),
        )
        events.announce_on_commit("patient.changed", patient_id=patient.pk)
    return fact


def fact_end(*, fact: PatientFact, end_date: date | None = None, user: Any = None) -> PatientFact:
    """End a present fact (pregnancy ended, allergy disproved) on `end_date` (today by default)."""
    with transaction.atomic():
        fact = PatientFact.objects.select_for_update().select_related("patient").get(pk=fact.pk)
        today = patient_today(fact.patient)
        end_date = end_date or today
        if fact.absent:
            raise ConflictError("absent", "this record says the fact is not present; there is nothing to end")
        if fact.kind in EVENT_KINDS:
            raise ConflictError("kind", f"a {fact.kind} is an event on one day; it cannot be ended")
        if fact.end_date is not None:
            if fact.end_date == end_date:
                return fact
            raise ConflictError("end_date", f"this fact already ended on {fact.end_date}")
        if end_date > today:
            raise ServiceError("end_date", "cannot be in the future")
        if fact.onset_date is not None and end_date < fact.onset_date:
            raise ServiceError("end_date", f"cannot be before the onset date ({fact.onset_date})")
        fact.end_date = end_date
        fact.save(update_fields=["end_date"])
        events.announce_on_commit("patient.changed", patient_id=fact.patient_id)
    return fact
