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
| lifelong_therapy_stopped | S-5 (hard stop, needs override_reason; a stop's own reason) | lifelong_therapy_stopped |
| lifelong_therapy_not_planned | S-5 at start, §10 V-13 (hard stop, needs override_reason) | lifelong_therapy_stopped |
| lebers_disease_cyanocobalamin | S-10 (hard stop, needs override_reason) | contraindication |
| cobalamin_allergy | S-11 (hard stop, needs override_reason) | contraindication |
| wrong_route | S-12 | contraindication |
| oral_first_line_caution | R-ORAL-1, §8 Q2, §10 V-6 (hard stop, needs override_reason) | oral_first_line_caution |
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet

from notifications.alerts import alert_raise, alert_resolve
from patients.labs.analytes import format_value
from patients.models import (
    IRREVERSIBLE_CAUSES,
    DeficiencyCause,
    FactKind,
    LabResult,
    Medication,
    MedicationKind,
    Patient,
    PatientFact,
)
from patients.selectors import oral_caution_cause
from regimens.models import ORAL_ROUTES, DoseStatus, Protocol, Regimen, ScheduledDose
from tracker.clock import end_of_day, local_date, patient_today
from tracker.errors import SafetyWarning

FOLIC_ACID_BEFORE_B12 = "folic_acid_before_b12"
IM_INJECTION_LOW_PLATELETS = "im_injection_low_platelets"
LIFELONG_THERAPY_STOPPED = "lifelong_therapy_stopped"
LEBERS_DISEASE_CYANOCOBALAMIN = "lebers_disease_cyanocobalamin"
COBALAMIN_ALLERGY = "cobalamin_allergy"
WRONG_ROUTE = "wrong_route"
ORAL_FIRST_LINE_CAUTION = "oral_first_line_caution"
LIFELONG_THERAPY_NOT_PLANNED = "lifelong_therapy_not_planned"

# RULES §4: "Hard-stop warning; override requires a reason" (S-1, S-5, S-10, S-11; §10 V-6 for the oral
# caution). S-2 and S-12 are warnings: acknowledging the code is enough. Every write that can meet a hard
# stop asks for `override_reason` (a stop's own reason is the S-5 reason).
HARD_STOP_CODES = frozenset(
    {
        FOLIC_ACID_BEFORE_B12,
        LIFELONG_THERAPY_STOPPED,
        LIFELONG_THERAPY_NOT_PLANNED,
        LEBERS_DISEASE_CYANOCOBALAMIN,
        COBALAMIN_ALLERGY,
        ORAL_FIRST_LINE_CAUTION,
    }
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
    LIFELONG_THERAPY_NOT_PLANNED: AlertSpec(
        "lifelong_therapy_stopped",
        "high",
        "A regimen that ends was started although the recorded cause is irreversible and lifelong therapy is "
        "indicated. Plan lifelong maintenance, or confirm the decision with the patient (RULES S-5).",
    ),
    ORAL_FIRST_LINE_CAUTION: AlertSpec(
        "oral_first_line_caution",
        "high",
        "Oral B12 was started as first line despite neurological involvement or a cause for which oral B12 is "
        "not dependable (pernicious anaemia, autoimmune gastritis, IF antibody). Review the response closely "
        "and switch to IM if symptoms do not improve (RULES R-ORAL-1, §8 Q2).",
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
    LIFELONG_THERAPY_NOT_PLANNED: "S-5",
    ORAL_FIRST_LINE_CAUTION: "R-ORAL-1",
    LEBERS_DISEASE_CYANOCOBALAMIN: "S-10",
    COBALAMIN_ALLERGY: "S-11",
    WRONG_ROUTE: "S-12",
}

B12_DRUGS = frozenset({"cyanocobalamin", "hydroxocobalamin"})
# RULES S-12: cyanocobalamin IV; hydroxocobalamin (the B12-deficiency product) SC or IV, and by §7.3 ("IM only")
# any route but IM: by mouth, under the tongue or in the nose too. The 5 g IV cyanide antidote is a different
# product: record it as medication kind "other", never here.
WRONG_ROUTES = {
    "cyanocobalamin": frozenset({"IV"}),
    "hydroxocobalamin": frozenset({"SC", "deep SC", "IV", "PO", "SL", "IN"}),
}


def _cobalt(name: str) -> int:
    return int(settings.COBALT[name])




# --- Facts ------------------------------------------------------------------------------------


# present_fact's query, and last_platelet_count's (_LAST_PLATELET): written out rather than built with the ORM, which
# took three times as long to build each statement as PostgreSQL to run it, on the path of every dose recorded
# (issue 16). tests/monitoring/test_safety_queries.py checks both against the ORM's on the same rows.
_PRESENT_FACT = (
    "SELECT * FROM {table} WHERE patient_id = %s AND kind = %s AND NOT absent"
    " AND (end_date IS NULL OR end_date >= %s) ORDER BY recorded_at DESC, id DESC LIMIT 1"
)


def present_fact(patient: Patient, kind: str, on: date) -> PatientFact | None:
    """The most recent record that `kind` is present on `on` (not marked absent, not ended before).

    A recorded condition stands until someone ends it (end_date); a later "checked and absent" record
    does not silently cancel an allergy or a Leber's diagnosis."""
    sql = _PRESENT_FACT.format(table=PatientFact._meta.db_table)
    found = list(PatientFact.objects.raw(sql, [patient.pk, kind, connection.ops.adapt_datefield_value(on)]))
    return found[0] if found else None


def _fact_details(fact: PatientFact) -> dict[str, object]:
    return {
        "fact_id": fact.pk,
        "fact_kind": fact.kind,
        "onset_date": fact.onset_date.isoformat() if fact.onset_date else None,
        "note": fact.note,
    }


# --- S-10, S-11, S-12: drug and route ---------------------------------------------------------


def drug_warnings(
    *, patient: Patient, drug: str, route: str, on: date, fact: Callable[..., PatientFact | None] = present_fact
) -> list[SafetyWarning]:
    """S-10 (Leber's + cyanocobalamin), S-11 (cobalt/cobalamin allergy), S-12 (wrong route) for one
    B12 product given or ordered by `route` on `on`. `fact` is `present_fact` or a preloaded equivalent
    (AdministrationData)."""
    if drug not in B12_DRUGS:
        return []
    warnings: list[SafetyWarning] = []
    if drug == "cyanocobalamin":
        lebers = fact(patient, FactKind.LEBERS_DISEASE, on)
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
    allergy = fact(patient, FactKind.COBALAMIN_ALLERGY, on)
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
    """Warnings when a regimen is started: S-10, S-11, S-12 for each drug and route of its phases; the oral
    first-line caution (§10 V-6); S-5 for a regimen that ends although the cause is irreversible (§10 V-13)."""
    today = patient_today(patient)
    phases = sorted(protocol.phases.all(), key=lambda p: p.order)
    pairs = sorted({(p.drug, p.route) for p in phases})
    warnings = _merge(
        w for drug, route in pairs for w in drug_warnings(patient=patient, drug=drug, route=route, on=today)
    )
    warnings.extend(oral_first_line_warnings(patient=patient, phases=phases, on=today))
    warnings.extend(lifelong_not_planned_warnings(patient=patient, phases=phases, on=today))
    return warnings


# --- R-ORAL-1 / §8 Q2 / §10 V-6: oral first line ----------------------------------------------


def neurological_involvement(patient: Patient, facts: Iterable[PatientFact] | None = None) -> PatientFact | bool:
    """The patient's neurological-involvement flag, or a recorded neurological-symptom fact (§10 V-5:
    either counts). An ended symptom fact still counts, as for S-4's neurological history."""
    if patient.neurological_involvement:
        return True
    if facts is None:
        facts = PatientFact.objects.filter(patient=patient, kind=FactKind.NEURO_SYMPTOMS).order_by("-recorded_at")
    return next((f for f in facts if f.kind == FactKind.NEURO_SYMPTOMS and not f.absent), False)


def oral_first_line_warnings(*, patient: Patient, phases: Iterable[Any], on: date) -> list[SafetyWarning]:
    """§10 V-6: starting a protocol with an oral phase (PO, SL or IN, in any phase) for a patient with
    neurological involvement, or with pernicious anaemia / autoimmune gastritis / IF antibody positive,
    is a hard stop: the override (with its reason) is the clinician's confirmation."""
    oral = [p for p in phases if p.route in ORAL_ROUTES]
    if not oral:
        return []
    # One query for both facts.
    facts = list(
        PatientFact.objects.filter(
            patient=patient, kind__in=[FactKind.NEURO_SYMPTOMS, FactKind.IF_ANTIBODY_POSITIVE]
        ).order_by("-recorded_at", "-id")
    )
    neuro = neurological_involvement(patient, facts)
    cause = oral_caution_cause(patient, on, facts)
    if not neuro and cause is None:
        return []
    reasons: list[str] = []
    details: dict[str, object] = {"phases": [p.key for p in oral], "routes": sorted({p.route for p in oral})}
    if neuro:
        reasons.append("neurological involvement is recorded (oral is not first line with neurological symptoms)")
        details["neurological_involvement"] = True
        if isinstance(neuro, PatientFact):
            details["neuro_fact_id"] = neuro.pk
    if cause is not None:
        label = "IF antibody positive" if cause == FactKind.IF_ANTIBODY_POSITIVE else DeficiencyCause(cause).label
        reasons.append(f"the cause is {label.lower()} (oral B12 is not dependable; at least 1000 mcg a day)")
        details["cause"] = cause
    return [
        SafetyWarning(
            code=ORAL_FIRST_LINE_CAUTION,
            rule="R-ORAL-1",
            message=(
                f"Oral B12 as first line: {'; '.join(reasons)}. IM is preferred. Hard stop: a clinician confirms "
                "oral treatment by overriding with a reason."
            ),
            details=details,
        )
    ]


# --- S-5: stopping lifelong therapy ------------------------------------------------------------

# RULES §1.2: end conditions that stop treatment unless a clinician ends the phase; a regimen whose last
# phase is lifelong or clinician-ended does not end by itself.
ENDING_CONDITIONS = frozenset({"until_cause_resolved", "fixed_count", "fixed_duration"})


def irreversible_cause(patient: Patient, on: date) -> dict[str, object] | None:
    """S-5: the recorded cause is irreversible, or IF antibody is positive (§10 V-13). The details name it."""
    if patient.deficiency_cause in IRREVERSIBLE_CAUSES:
        return {"deficiency_cause": patient.deficiency_cause}
    fact = present_fact(patient, FactKind.IF_ANTIBODY_POSITIVE, on)
    if fact is not None:
        return {"deficiency_cause": patient.deficiency_cause, "if_antibody_positive": True, "fact_id": fact.pk}
    return None


def _cause_label(patient: Patient, cause: dict[str, object]) -> str:
    if cause.get("if_antibody_positive"):
        return "IF antibody positive"
    return str(patient.get_deficiency_cause_display())


def lifelong_not_planned_warnings(*, patient: Patient, phases: list[Any], on: date) -> list[SafetyWarning]:
    """§10 V-13: a regimen *started* with an end condition (its last phase ends until the cause resolves,
    after a number of doses or a duration) for an irreversible cause is an S-5 hard stop."""
    if not phases or phases[-1].end_condition not in ENDING_CONDITIONS:
        return []
    cause = irreversible_cause(patient, on)
    if cause is None:
        return []
    last = phases[-1]
    return [
        SafetyWarning(
            code=LIFELONG_THERAPY_NOT_PLANNED,
            rule="S-5",
            message=(
                f"Lifelong therapy is indicated: the recorded cause ({_cause_label(patient, cause)}) is "
                f"irreversible, but this regimen ends ({last.key} phase: {last.end_condition.replace('_', ' ')}). "
                "Hard stop: override only with a reason."
            ),
            details={**cause, "phase": last.key, "end_condition": last.end_condition},
        )
    ]


# --- S-2: IM injection with low platelets -----------------------------------------------------


def _platelet_results(at: datetime) -> QuerySet[LabResult]:
    """The platelet counts S-2 may read for a dose at `at`."""
    return LabResult.objects.filter(
        analyte="platelets",
        collected_at__lte=at,
        value_canonical__isnull=False,
        error_recorded_at__isnull=True,  # RULES §10 V-14
    )


# _platelet_results of one patient, the latest first: written out as present_fact's query is (_PRESENT_FACT).
_LAST_PLATELET = (
    "SELECT * FROM {table} WHERE patient_id = %s AND analyte = 'platelets' AND collected_at <= %s"
    " AND value_canonical IS NOT NULL AND error_recorded_at IS NULL ORDER BY collected_at DESC, id DESC LIMIT 1"
)


def last_platelet_count(patient: Patient, at: datetime) -> LabResult | None:
    """The latest of `_platelet_results(at)` of the patient."""
    sql = _LAST_PLATELET.format(table=LabResult._meta.db_table)
    found = list(LabResult.objects.raw(sql, [patient.pk, connection.ops.adapt_datetimefield_value(at)]))
    return found[0] if found else None


def platelet_warning(
    *, patient: Patient, at: datetime, last_count: Callable[..., LabResult | None] = last_platelet_count
) -> SafetyWarning | None:
    """RULES S-2 for an IM dose at `at`: the most recent platelet count (collected at or before `at`) is
    below SAFETY_S2_PLATELETS_BELOW, or it is older than SAFETY_S2_LOOKBACK_DAYS and below
    SAFETY_S2_LOOKBACK_PLATELETS_BELOW. No count at all: no warning (the rule needs a count)."""
    last = last_count(patient, at)
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
        shown = format_value(value, "platelets")
        reason = f"the most recent platelet count is {shown} ×10⁹/L (below {format_value(low)})"
        details["reason"] = "below_threshold"
    elif age_days > lookback_days and value < lookback_low:
        reason = (
            f"no platelet count in the last {lookback_days} days and the last one ({age_days} days ago) was "
            f"{format_value(value, 'platelets')} ×10⁹/L (below {format_value(lookback_low)})"
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


class AdministrationData:
    """What the administration warnings read, one query at a time (the dose being recorded). The
    worklist shows the warnings of many planned doses at once: `PreloadedAdministrationData` answers
    the same questions from a fixed number of queries, so both run the one rule code below."""

    def last_platelet(self, patient: Patient, at: datetime) -> LabResult | None:
        return last_platelet_count(patient, at)

    def fact(self, patient: Patient, kind: str, on: date) -> PatientFact | None:
        return present_fact(patient, kind, on)

    def regimen_acknowledged(self, dose: ScheduledDose) -> set[str]:
        return _regimen_acknowledged(dose)


class PreloadedAdministrationData(AdministrationData):
    """AdministrationData for many doses to be given at one instant `at` (four queries in all)."""

    def __init__(self, doses: list[ScheduledDose], at: datetime) -> None:
        patient_ids = {d.patient_id for d in doses}
        regimen_ids = {d.regimen_id for d in doses}
        self.at = at
        self.platelets: dict[int, LabResult] = {}
        for result in _platelet_results(at).filter(patient_id__in=patient_ids).order_by("collected_at", "id"):
            self.platelets[result.patient_id] = result  # the last one wins: the latest count
        self.facts: dict[tuple[int, str], list[PatientFact]] = {}
        kinds = [FactKind.LEBERS_DISEASE, FactKind.COBALAMIN_ALLERGY]
        for fact in PatientFact.objects.filter(patient_id__in=patient_ids, kind__in=kinds, absent=False).order_by(
            "-recorded_at", "-id"
        ):
            self.facts.setdefault((fact.patient_id, fact.kind), []).append(fact)
        self.regimen_codes: dict[int, set[str]] = {
            pk: set(codes or [])
            for pk, codes in Regimen.objects.filter(pk__in=regimen_ids).values_list("pk", "acknowledged_warnings")
        }
        self.dose_codes: dict[int, list[tuple[int, list[str]]]] = {}
        for regimen_id, pk, codes in (
            ScheduledDose.objects.filter(regimen_id__in=regimen_ids)
            .exclude(acknowledged_warnings=[])
            .values_list("regimen_id", "pk", "acknowledged_warnings")
        ):
            self.dose_codes.setdefault(regimen_id, []).append((pk, codes or []))

    def last_platelet(self, patient: Patient, at: datetime) -> LabResult | None:
        assert at == self.at, "preloaded for one instant"
        return self.platelets.get(patient.pk)

    def fact(self, patient: Patient, kind: str, on: date) -> PatientFact | None:
        # As present_fact: the most recent record present on `on` (not ended before it).
        facts = self.facts.get((patient.pk, kind), [])
        return next((f for f in facts if f.end_date is None or f.end_date >= on), None)

    def regimen_acknowledged(self, dose: ScheduledDose) -> set[str]:
        codes = set(self.regimen_codes.get(dose.regimen_id, set()))
        for pk, acknowledged in self.dose_codes.get(dose.regimen_id, []):
            if pk != dose.pk:
                codes.update(acknowledged)
        return codes


def administration_warnings(
    *, dose: ScheduledDose, route: str, administered_at: datetime, data: AdministrationData | None = None
) -> list[SafetyWarning]:
    """Warnings when a dose is recorded as given: S-2 low platelets for IM, S-12 wrong route, and S-10/S-11
    when the fact was recorded after the regimen started and not yet acknowledged for it."""
    data = data or AdministrationData()
    patient = dose.patient
    warnings: list[SafetyWarning] = []
    if route == "IM":
        low = platelet_warning(patient=patient, at=administered_at, last_count=data.last_platelet)
        if low is not None:
            warnings.append(low)
    if dose.drug in B12_DRUGS:
        found = drug_warnings(
            patient=patient,
            drug=dose.drug,
            route=route,
            on=local_date(administered_at, patient.timezone),
            fact=data.fact,
        )
        # S-10/S-11 once per regimen: when it started, or at the first dose after the fact was recorded
        # (an allergy found mid-treatment must stop the next injection). S-12 at every wrong-route dose.
        seen = data.regimen_acknowledged(dose) if any(w.code != WRONG_ROUTE for w in found) else set()
        warnings.extend(w for w in found if w.code == WRONG_ROUTE or w.code not in seen)
    return warnings


def pending_warnings_many(*, doses: list[ScheduledDose], at: datetime) -> list[tuple[int, SafetyWarning]]:
    """`administration_warnings` of each dose given now (`at`) by its planned route, as (dose id, warning)
    pairs, from a fixed number of queries however many doses (the worklist, RULES §10 V-12)."""
    if not doses:
        return []
    data = PreloadedAdministrationData(doses, at)
    return [
        (dose.pk, warning)
        for dose in doses
        for warning in administration_warnings(dose=dose, route=dose.route, administered_at=at, data=data)
    ]


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


def regimen_stop_warnings(*, regimen: Regimen) -> list[SafetyWarning]:
    """S-5: stopping lifelong therapy when the cause is irreversible (or IF antibody positive, §10 V-13) is a
    hard-stop warning. Lifelong therapy = a lifelong or until-cause-resolved phase, or a last phase that only
    a clinician ends (oral-high-dose, §10 V-13): stopping it stops treatment."""
    # The regimen's own copy of its protocol (regimens/services.py protocol_snapshot).
    snapshot_phases = regimen.protocol_snapshot.get("phases")
    conditions = (
        [p["end_condition"] for p in sorted(snapshot_phases, key=lambda p: p.get("order", 0))]
        if snapshot_phases
        else list(regimen.protocol.phases.order_by("order").values_list("end_condition", flat=True))
    )
    lifelong = bool(set(conditions) & {"lifelong", "until_cause_resolved"}) or (
        bool(conditions) and conditions[-1] == "clinician_ended"
    )
    if not lifelong:
        return []
    patient = regimen.patient
    cause = irreversible_cause(patient, patient_today(patient))
    if cause is None:
        return []
    return [
        SafetyWarning(
            code=LIFELONG_THERAPY_STOPPED,
            rule="S-5",
            message=(
                f"Lifelong therapy is indicated: the recorded cause ({_cause_label(patient, cause)}) is irreversible."
            ),
            details=cause,
        )
    ]


# --- Alerts for acknowledged warnings ---------------------------------------------------------


def _rule_order(rule: str) -> tuple[str, int]:
    """S-10 after S-2 (by number), R-ORAL-1 apart from the S rules."""
    prefix, _, number = rule.rpartition("-")
    return (prefix, int(number) if number.isdigit() else 0)


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
            rule_id=", ".join(sorted({w.rule for w in items}, key=_rule_order))[:20],
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
            "override_reason": regimen.override_reason,
            "acknowledged_by": _user_name(regimen.created_by),
        },
    )


def after_regimen_stopped(
    *, regimen: Regimen, acknowledged: list[str], override_reason: str = "", by: Any = None
) -> None:
    """Called inside the stop (or end-of-last-phase) transaction: an acknowledged S-5 opens the
    lifelong_therapy_stopped alert, its evidence keeping the override reason (a stop's own reason) and who
    acknowledged it (`by`: who stopped the regimen or ended its last phase)."""
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
            "override_reason": override_reason,
            "acknowledged_by": _user_name(by),
        },
    )


def after_dose_recorded(*, dose: ScheduledDose, acknowledged: list[str], override_reason: str = "") -> None:
    """Called inside the transaction that records a dose given or not given: acknowledged S-2 / S-10 /
    S-11 / S-12 warnings open their alerts. A dose has no field for the override reason, so the alert's
    evidence keeps it."""
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
            "override_reason": override_reason,
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


# RULES §1.3 rule 2, §10 V-5: a later review with one of these outcomes says the patient is no longer
# worsening, so the neuro_worsening alert closes (HIGH closes on its own, §3.6). `specialist_review_pending`
# does not: the specialist has not seen the patient yet.
NEURO_WORSENING_RESOLVED_BY = ("still_improving", "plateau_reached")


def after_review_recorded(*, regimen: Regimen, outcome: str, decision: Any = None) -> None:
    """Called inside the transaction that records a §1.3 review: `worsening` opens `neuro_worsening` (HIGH,
    §1.3 rule 2, §10 V-5); a later `still_improving` or `plateau_reached` review resolves it. The review
    prompts themselves (neuro_review_due) belong to the monitoring sweep."""
    if outcome == "worsening":
        note = getattr(decision, "note", "") or ""
        decided_on = getattr(decision, "decided_on", None)
        alert_raise(
            patient=regimen.patient,
            kind="neuro_worsening",
            severity="high",
            message=(
                "Neurological loading phase: review recorded as worsening"
                f"{f' on {decided_on.isoformat()}' if decided_on else ''}: needs urgent specialist review "
                "(§1.3 rule 2)."
            ),
            action_text=(
                "Seek urgent specialist advice (haematology and neurology); check the doses were given; "
                "record the specialist's plan as a review note."
            ),
            evidence={
                "regimen_id": regimen.pk,
                "decision_id": getattr(decision, "pk", None),
                "decided_on": decided_on.isoformat() if decided_on else None,
                "note": note[:500],
                "decided_by": _user_name(getattr(decision, "decided_by", None)),
            },
            rule_id="§1.3",
        )
    elif outcome in NEURO_WORSENING_RESOLVED_BY:
        alert_resolve(
            patient=regimen.patient,
            kind="neuro_worsening",
            resolution=f"later review recorded: {outcome.replace('_', ' ')}",
        )
