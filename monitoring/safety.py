"""Point-of-care safety checks (RULES §4) that services call before they write.

Each `*_warnings` function returns the warnings that apply; the service refuses to write until the
client acknowledges each warning's code (tracker.errors.require_acknowledged). The `after_*` hooks
run inside the service's transaction, after the write, so that the alert raised by an acknowledged
warning is committed together with the change that caused it (and never without it).

Warning codes (docs/safety-and-alerts.md):

| code | rule | alert kind raised when acknowledged |
| --- | --- | --- |
| folic_acid_before_b12 | S-1 (hard stop, needs override_reason) | folic_acid_before_b12 |
| im_injection_low_platelets | S-2 | im_injection_low_platelets |
| lifelong_therapy_stopped | S-5 (hard stop) | lifelong_therapy_stopped |
| lebers_disease_cyanocobalamin | S-10 (hard stop) | contraindication |
| cobalamin_allergy | S-11 (hard stop) | contraindication |
| wrong_route | S-12 | contraindication |
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings

from notifications.alerts import alert_raise
from patients.models import IRREVERSIBLE_CAUSES, FactKind, LabResult, Medication, MedicationKind, Patient, PatientFact
from regimens.models import DoseStatus, Protocol, Regimen, ScheduledDose
from tracker.clock import end_of_day, local_date, patient_today
from tracker.errors import SafetyWarning

FOLIC_ACID_BEFORE_B12 = "folic_acid_before_b12"
IM_INJECTION_LOW_PLATELETS = "im_injection_low_platelets"
LIFELONG_THERAPY_STOPPED = "lifelong_therapy_stopped"
LEBERS_DISEASE_CYANOCOBALAMIN = "lebers_disease_cyanocobalamin"
COBALAMIN_ALLERGY = "cobalamin_allergy"
WRONG_ROUTE = "wrong_route"

# RULES §4: "Hard-stop warning; override requires a reason" (S-1, S-5, S-10, S-11). S-2 and S-12 are
# warnings: acknowledging the code is enough.
HARD_STOP_CODES = frozenset(
    {FOLIC_ACID_BEFORE_B12, LIFELONG_THERAPY_STOPPED, LEBERS_DISEASE_CYANOCOBALAMIN, COBALAMIN_ALLERGY}
)


@dataclass(frozen=True)
class AlertSpec:
    kind: str
    severity: str
    action_text: str


# RULES "Alert kinds": every safety kind below is HIGH.
ALERT_FOR_CODE: dict[str, AlertSpec] = {
    FOLIC_ACID_BEFORE_B12: AlertSpec(
        "folic_acid_before_b12",
        "high",
        "Folic acid was recorded with no B12 dose on or before its start date. Give B12 now (same day is "
        "allowed); folic acid alone can mask the anaemia while neurological damage progresses (RULES S-1).",
    ),
    IM_INJECTION_LOW_PLATELETS: AlertSpec(
        "im_injection_low_platelets",
        "high",
        "An IM dose was given despite a low or out-of-date platelet count. Check the injection site for "
        "bleeding and consider cyanocobalamin deep SC for later doses (RULES S-2).",
    ),
    LIFELONG_THERAPY_STOPPED: AlertSpec(
        "lifelong_therapy_stopped",
        "high",
        "Lifelong therapy was stopped although the recorded cause is irreversible. Confirm the decision and "
        "the follow-up plan with the patient (RULES S-5).",
    ),
    LEBERS_DISEASE_CYANOCOBALAMIN: AlertSpec(
        "contraindication",
        "high",
        "Cyanocobalamin was ordered for a patient with Leber's disease or optic atrophy of unknown cause: "
        "severe and swift optic atrophy has been reported. Prefer hydroxocobalamin (RULES S-10).",
    ),
    COBALAMIN_ALLERGY: AlertSpec(
        "contraindication",
        "high",
        "B12 was ordered for a patient with a recorded cobalt or cobalamin allergy: anaphylaxis has been "
        "reported. An intradermal test dose is recommended (RULES S-11).",
    ),
    WRONG_ROUTE: AlertSpec(
        "contraindication",
        "high",
        "B12 was ordered or given by a route its label does not support (cyanocobalamin IV is lost in the "
        "urine; hydroxocobalamin is IM only). Check the route of later doses (RULES S-12).",
    ),
}

RULE_FOR_CODE = {
    FOLIC_ACID_BEFORE_B12: "S-1",
    IM_INJECTION_LOW_PLATELETS: "S-2",
    LIFELONG_THERAPY_STOPPED: "S-5",
    LEBERS_DISEASE_CYANOCOBALAMIN: "S-10",
    COBALAMIN_ALLERGY: "S-11",
    WRONG_ROUTE: "S-12",
}

B12_DRUGS = frozenset({"cyanocobalamin", "hydroxocobalamin"})
# RULES S-12: cyanocobalamin IV; hydroxocobalamin (the B12-deficiency product) SC or IV. The 5 g IV
# cyanide antidote is a different product: record it as medication kind "other", never here.
WRONG_ROUTES = {"cyanocobalamin": frozenset({"IV"}), "hydroxocobalamin": frozenset({"SC", "deep SC", "IV"})}


def _cobalt(name: str) -> int:
    return int(settings.COBALT[name])




# --- Facts ------------------------------------------------------------------------------------


def present_fact(patient: Patient, kind: str, on: date) -> PatientFact | None:
    """The most recent record that `kind` is present on `on` (not marked absent, not ended before).

    A recorded condition stands until someone ends it (end_date); a later "checked and absent" record
    does not silently cancel an allergy or a Leber's diagnosis."""
    fact: PatientFact | None = (
        PatientFact.objects.filter(patient=patient, kind=kind, absent=False)
        .exclude(end_date__lt=on)
        .order_by("-recorded_at", "-id")
        .first()
    )
    return fact


def _fact_details(fact: PatientFact) -> dict[str, object]:
    return {
        "fact_id": fact.pk,
        "fact_kind": fact.kind,
        "onset_date": fact.onset_date.isoformat() if fact.onset_date else None,
        "note": fact.note,
    }


# --- S-10, S-11, S-12: drug and route ---------------------------------------------------------


def drug_warnings(*, patient: Patient, drug: str, route: str, on: date) -> list[SafetyWarning]:
    """S-10 (Leber's + cyanocobalamin), S-11 (cobalt/cobalamin allergy), S-12 (wrong route) for one
    B12 product given or ordered by `route` on `on`."""
    if drug not in B12_DRUGS:
        return []
    warnings: list[SafetyWarning] = []
    if drug == "cyanocobalamin":
        lebers = present_fact(patient, FactKind.LEBERS_DISEASE, on)
        if lebers is not None:
            warnings.append(
                SafetyWarning(
                    code=LEBERS_DISEASE_CYANOCOBALAMIN,
                    rule="S-10",
                    message=(
                        "Leber's disease (or optic atrophy of unknown cause) is recorded: cyanocobalamin may "
                        "cause severe and swift optic atrophy. Hard stop: override only with a reason."
                    ),
                    details={"drug": drug, **_fact_details(lebers)},
                )
            )
    allergy = present_fact(patient, FactKind.COBALAMIN_ALLERGY, on)
    if allergy is not None:
        warnings.append(
            SafetyWarning(
                code=COBALAMIN_ALLERGY,
                rule="S-11",
                message=(
                    "A cobalt or cobalamin allergy is recorded: anaphylaxis has been reported; an intradermal "
                    "test dose is recommended. Hard stop: override only with a reason."
                ),
                details={"drug": drug, **_fact_details(allergy)},
            )
        )
    if route in WRONG_ROUTES[drug]:
        reason = "is lost in the urine when given IV" if drug == "cyanocobalamin" else "is licensed for IM use only"
        warnings.append(
            SafetyWarning(
                code=WRONG_ROUTE,
                rule="S-12",
                message=f"{drug.capitalize()} {reason}; the route {route} is not supported by its label.",
                details={"drug": drug, "route": route},
            )
        )
    return warnings


def _merge(warnings: Iterable[SafetyWarning]) -> list[SafetyWarning]:
    """One warning per code (a protocol with several phases repeats them), details of all kept."""
    by_code: dict[str, SafetyWarning] = {}
    for w in warnings:
        first = by_code.get(w.code)
        if first is None:
            by_code[w.code] = w
        elif w.details != first.details:
            routes = {str(first.details.get("route", "")), str(w.details.get("route", ""))} - {""}
            drugs = {str(first.details.get("drug", "")), str(w.details.get("drug", ""))} - {""}
            details = {**first.details, "drugs": sorted(drugs)}
            if routes:
                details["routes"] = sorted(routes)
            by_code[w.code] = SafetyWarning(code=w.code, rule=w.rule, message=first.message, details=details)
    return list(by_code.values())


def regimen_start_warnings(*, patient: Patient, protocol: Protocol) -> list[SafetyWarning]:
    """Warnings when a regimen is started: S-10, S-11, S-12 for each drug and route of its phases."""
    today = patient_today(patient)
    pairs = sorted({(p.drug, p.route) for p in protocol.phases.all()})
    return _merge(w for drug, route in pairs for w in drug_warnings(patient=patient, drug=drug, route=route, on=today))


# --- S-2: IM injection with low platelets -----------------------------------------------------


def platelet_warning(*, patient: Patient, at: datetime) -> SafetyWarning | None:
    """RULES S-2 for an IM dose at `at`: the most recent platelet count (collected at or before `at`) is
    below SAFETY_S2_PLATELETS_BELOW, or it is older than SAFETY_S2_LOOKBACK_DAYS and below
    SAFETY_S2_LOOKBACK_PLATELETS_BELOW. No count at all: no warning (the rule needs a count)."""
    last = (
        LabResult.objects.filter(
            patient=patient,
            analyte="platelets",
            collected_at__lte=at,
            value_canonical__isnull=False,
            error_recorded_at__isnull=True,  # RULES §10 V-14
        )
        .order_by("-collected_at", "-id")
        .first()
    )
    if last is None or last.value_canonical is None:
        return None
    value: Decimal = last.value_canonical
    low = _cobalt("SAFETY_S2_PLATELETS_BELOW")  # RULES S-2 [P]
    lookback_days = _cobalt("SAFETY_S2_LOOKBACK_DAYS")  # RULES S-2 [P]
    lookback_low = _cobalt("SAFETY_S2_LOOKBACK_PLATELETS_BELOW")  # RULES S-2 [P]
    age_days = (local_date(at, patient.timezone) - local_date(last.collected_at, patient.timezone)).days
    details: dict[str, object] = {
        "platelets": float(value),
        "unit": last.unit_canonical or "10^9/L",
        "collected_at": last.collected_at.isoformat(),
        "lab_result_id": last.pk,
        "days_before_dose": age_days,
        "suggestion": "cyanocobalamin deep SC (label-permitted route), or IM by clinician judgement",
    }
    if value < low:
        reason = f"the most recent platelet count is {value.normalize():f} ×10⁹/L (below {low})"
        details["reason"] = "below_threshold"
    elif age_days > lookback_days and value < lookback_low:
        reason = (
            f"no platelet count in the last {lookback_days} days and the last one ({age_days} days ago) was "
            f"{value.normalize():f} ×10⁹/L (below {lookback_low})"
        )
        details["reason"] = "count_out_of_date"
    else:
        return None
    return SafetyWarning(
        code=IM_INJECTION_LOW_PLATELETS,
        rule="S-2",
        message=(
            f"IM injection: {reason}. Consider cyanocobalamin deep SC, or proceed with IM using clinical "
            "judgement. The dose is not cancelled."
        ),
        details=details,
    )


def administration_warnings(*, dose: ScheduledDose, route: str, administered_at: datetime) -> list[SafetyWarning]:
    """Warnings when a dose is recorded as given: S-2 low platelets for IM, S-12 wrong route, and S-10/S-11
    when the fact was recorded after the regimen started and not yet acknowledged for it."""
    patient = dose.patient
    warnings: list[SafetyWarning] = []
    if route == "IM":
        low = platelet_warning(patient=patient, at=administered_at)
        if low is not None:
            warnings.append(low)
    if dose.drug in B12_DRUGS:
        found = drug_warnings(
            patient=patient, drug=dose.drug, route=route, on=local_date(administered_at, patient.timezone)
        )
        # S-10/S-11 once per regimen: when it started, or at the first dose after the fact was recorded
        # (an allergy found mid-treatment must stop the next injection). S-12 at every wrong-route dose.
        seen = _regimen_acknowledged(dose) if any(w.code != WRONG_ROUTE for w in found) else set()
        warnings.extend(w for w in found if w.code == WRONG_ROUTE or w.code not in seen)
    return warnings


def _regimen_acknowledged(dose: ScheduledDose) -> set[str]:
    """Codes already acknowledged for the dose's regimen: at its start or at one of its doses."""

    codes: set[str] = set(
        Regimen.objects.filter(pk=dose.regimen_id).values_list("acknowledged_warnings", flat=True).first() or []
    )
    for acknowledged in (
        ScheduledDose.objects.filter(regimen_id=dose.regimen_id)
        .exclude(pk=dose.pk)
        .exclude(acknowledged_warnings=[])
        .values_list("acknowledged_warnings", flat=True)
    ):
        codes.update(acknowledged or [])
    return codes


# --- S-1: folic acid before B12 ---------------------------------------------------------------


def b12_given_on_or_before(patient: Patient, day: date, *, exclude_medication: int | None = None) -> bool:
    """A B12 dose is recorded on or before `day`: a dose given in a regimen, a B12 medication started,
    or a regimen enrolled with doses given elsewhere."""

    if ScheduledDose.objects.filter(
        patient=patient, status=DoseStatus.GIVEN, administered_at__lt=end_of_day(day, patient.timezone)
    ).exists():
        return True
    meds = Medication.objects.filter(patient=patient, kind__in=sorted(B12_DRUGS), start_date__lte=day)
    if exclude_medication is not None:
        meds = meds.exclude(pk=exclude_medication)
    if meds.exists():
        return True
    for options in Regimen.objects.filter(patient=patient).values_list("options", flat=True):
        enrol = options.get("enrol") if isinstance(options, dict) else None
        if isinstance(enrol, dict) and str(enrol.get("last_dose_date", "9999")) <= day.isoformat():
            return True
    return False


def folic_acid_warnings(*, patient: Patient, start_date: date) -> list[SafetyWarning]:
    """RULES S-1: folic acid with no B12 dose recorded on or before its start date (same day allowed)."""
    if b12_given_on_or_before(patient, start_date):
        return []
    return [
        SafetyWarning(
            code=FOLIC_ACID_BEFORE_B12,
            rule="S-1",
            message=(
                f"No B12 dose is recorded on or before {start_date.isoformat()}: folic acid before B12 can mask "
                "the anaemia while neurological damage progresses. Give B12 first or the same day. Hard stop: "
                "override only with a reason."
            ),
            details={"start_date": start_date.isoformat()},
        )
    ]


def medication_warnings(*, patient: Patient, kind: str, route: str, start_date: date) -> list[SafetyWarning]:
    """Warnings when a medication is recorded: S-1 for folic acid; S-10, S-11, S-12 for B12 products."""
    if kind == MedicationKind.FOLIC_ACID:
        return folic_acid_warnings(patient=patient, start_date=start_date)
    if kind in B12_DRUGS:
        return drug_warnings(patient=patient, drug=kind, route=route, on=start_date)
    return []


# --- S-5: stopping lifelong therapy ------------------------------------------------------------


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
                code=LIFELONG_THERAPY_STOPPED,
                rule="S-5",
                message=(
                    "Lifelong therapy is indicated: the recorded cause "
                    f"({regimen.patient.get_deficiency_cause_display()}) is irreversible."
                ),
                details={"deficiency_cause": regimen.patient.deficiency_cause},
            )
        ]
    return []


# --- Alerts for acknowledged warnings ---------------------------------------------------------


def raise_acknowledged_alerts(
    *,
    patient: Patient,
    warnings: list[SafetyWarning],
    acknowledged: Iterable[str],
    context: dict[str, Any],
) -> list[Any]:
    """Open (or keep) one alert per kind for the warnings the user acknowledged and went ahead with.
    Must run inside the transaction of the write. Returns the alerts."""

    given = set(acknowledged)
    by_kind: dict[str, list[SafetyWarning]] = {}
    for w in warnings:
        if w.code in given and w.code in ALERT_FOR_CODE:
            by_kind.setdefault(ALERT_FOR_CODE[w.code].kind, []).append(w)
    alerts = []
    for kind, items in by_kind.items():
        specs = [ALERT_FOR_CODE[w.code] for w in items]
        alert, _created = alert_raise(
            patient=patient,
            kind=kind,
            severity=specs[0].severity,
            message=" ".join(f"Acknowledged and overridden: {w.message}" for w in items),
            action_text=" ".join(s.action_text for s in specs),
            evidence={
                "warnings": [{"code": w.code, "rule": w.rule, "details": w.details} for w in items],
                **context,
            },
            rule_id=", ".join(sorted({w.rule for w in items}, key=lambda r: int(r.split("-")[1])))[:20],
        )
        alerts.append(alert)
    return alerts


def _user_name(user: Any) -> str | None:
    return user.get_username() if getattr(user, "is_authenticated", False) else None


def after_regimen_started(*, regimen: Regimen, acknowledged: list[str]) -> None:
    """Called inside the start transaction: acknowledged S-10/S-11/S-12 open a contraindication alert."""
    if not acknowledged:
        return
    warnings = regimen_start_warnings(patient=regimen.patient, protocol=regimen.protocol)
    raise_acknowledged_alerts(
        patient=regimen.patient,
        warnings=warnings,
        acknowledged=acknowledged,
        context={
            "source": "regimen_start",
            "regimen_id": regimen.pk,
            "protocol": regimen.protocol.code,
            "acknowledged_by": _user_name(regimen.created_by),
        },
    )


def after_regimen_stopped(*, regimen: Regimen, acknowledged: list[str]) -> None:
    """Called inside the stop (or end-of-last-phase) transaction: an acknowledged S-5 opens the
    lifelong_therapy_stopped alert."""
    if LIFELONG_THERAPY_STOPPED not in acknowledged:
        return
    raise_acknowledged_alerts(
        patient=regimen.patient,
        warnings=regimen_stop_warnings(regimen=regimen),
        acknowledged=acknowledged,
        context={
            "source": "regimen_stop" if regimen.status == "stopped" else "regimen_end_phase",
            "regimen_id": regimen.pk,
            "protocol": regimen.protocol.code,
            "stop_reason": regimen.stop_reason,
            "acknowledged_by": _user_name(regimen.stopped_by),
        },
    )


def after_dose_recorded(*, dose: ScheduledDose, acknowledged: list[str]) -> None:
    """Called inside the transaction that records a dose given or not given: acknowledged S-2 / S-12
    warnings open their alerts."""
    if not acknowledged or dose.administered_at is None:
        return
    warnings = administration_warnings(
        dose=dose, route=dose.given_route or dose.route, administered_at=dose.administered_at
    )
    raise_acknowledged_alerts(
        patient=dose.patient,
        warnings=warnings,
        acknowledged=acknowledged,
        context={
            "source": "dose_administration",
            "dose_id": dose.pk,
            "regimen_id": dose.regimen_id,
            "route": dose.given_route or dose.route,
            "administered_at": dose.administered_at.isoformat(),
            "acknowledged_by": _user_name(dose.administered_by),
        },
    )


def after_medication_recorded(
    *, medication: Medication, warnings: list[SafetyWarning], acknowledged: list[str]
) -> None:
    """Called inside the transaction that records a medication (patients/clinical/services.py)."""
    if not acknowledged:
        return
    raise_acknowledged_alerts(
        patient=medication.patient,
        warnings=warnings,
        acknowledged=acknowledged,
        context={
            "source": "medication",
            "medication_id": medication.pk,
            "medication_kind": medication.kind,
            "route": medication.route,
            "start_date": medication.start_date.isoformat(),
            "override_reason": medication.override_reason,
            "acknowledged_by": _user_name(medication.created_by),
        },
    )


def after_review_recorded(*, regimen: Regimen, outcome: str) -> None:
    """Called inside the transaction that records a §1.3 review. The monitoring rules (patients/
    evaluation.py) own review follow-up alerts; nothing is raised here."""
