"""Running the monitoring rules for one patient and turning findings into alerts.

Writers of results, medications, facts and doses announce "patient.changed" (tracker/events.py) inside
their transaction; monitoring/listeners.py runs the evaluation after the commit, so it sees the committed
data and a failure in it can never undo the clinical write. The monitoring sweep (monitoring/sweep.py)
covers the time-based rules (overdue doses and rechecks, neuro review, S-6(a)).

`evaluate_patient` is idempotent: a second run with the same data changes nothing.
"""

from __future__ import annotations

import logging
import zoneinfo
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone as djtz

from monitoring import rules
from monitoring.inputs import (
    HEMOLYSIS_MARKERS,
    StoredResult,
    above_uln,
    below_lln,
    fact_present,
    hemolysis_abnormal,
    limits,
    rule_settings,
    stored_results,
)
from notifications.alerts import alert_raise
from notifications.models import SEVERITY_RANK, Alert, AlertKind, AlertStatus
from patients.labs.reference_ranges import b12_status
from patients.models import FactKind, LabResult, Medication, Patient, PatientFact
from regimens.models import LabRecheck, RecheckStatus, Regimen, RegimenStatus
from regimens.selectors import first_dose_at, first_dose_date
from regimens.services import regimen_plan, regimen_replan
from tracker.clock import local_date

log = logging.getLogger(__name__)

# Kinds with no row in RULES "Alert kinds": INFO notes on the record (§3.2 INFO = timeline note).
TRANSFUSION_NOTE_KIND = AlertKind.TRANSFUSION_NOTE  # RULES §3.6
SAMPLE_AFTER_TREATMENT_KIND = AlertKind.SAMPLE_AFTER_TREATMENT  # RULES S-13
# Monitoring tasks are LabRecheck rows whose key starts with this; the re-plan keeps them
# (regimens/services.py _sync).
TASK_PREFIX = "task:"

# RULES S-3 banner text (verbatim).
S3_BANNER = (
    "Possible B12-deficiency pseudo-TMA. Confirm B12 before or alongside plasma therapy. ADAMTS13 activity "
    "distinguishes it from TTP (TTP usually < 10%)."
)
S3_ADAMTS13_TEXT = "TTP unlikely; plasma exchange may be avoidable: clinician decision"
S3_ACTION_TEXT = (
    "Decision support only: never delays or blocks plasma exchange. Draw ADAMTS13 activity before any plasma "
    "therapy; confirm B12; blood film for schistocytes."
)
# RULES S-3 [V, Mayo]: ADAMTS13 < 10 % is highly indicative of TTP.
S3_ADAMTS13_TTP_BELOW = Decimal(10)
# RULES S-6(b) [V, FDA-CN]: deficiency for longer than 3 months may leave permanent lesions (90 days).
S6B_ONSET_DAYS_BEFORE_T0 = 90
B12_TESTS = ("b12_total", "b12_active", "mma", "homocysteine", "folate")  # RULES S-13 "B12/folate test"
B12_MEDICATIONS = ("cyanocobalamin", "hydroxocobalamin")
# RULES S-15 -> L-9: ferritin + folate when A-H1..A-H4 fires.
S15_KINDS = ("no_reticulocyte_response", "hemoglobin_slow_rise", "hemoglobin_not_normalized")
S15_RULES = ("A-H1", "A-H2", "A-H3", "A-H4")


@dataclass
class Inputs:
    patient: Patient
    at: datetime
    today: date
    t0: date | None
    stored: list[StoredResult]
    facts: list[PatientFact]
    ctx: rules.PatientContext
    qualitative: list[LabResult] = field(default_factory=list)

    @property
    def results(self) -> tuple[rules.Result, ...]:
        return tuple(s.result for s in self.stored)

    def ids(self, analyte: str, on: str | date | None = None) -> list[int]:
        day = date.fromisoformat(on) if isinstance(on, str) else on
        return [
            s.id for s in self.stored if s.result.analyte == analyte and (day is None or s.result.collected_on == day)
        ]

    def latest(self, analyte: str) -> StoredResult | None:
        series = [s for s in self.stored if s.result.analyte == analyte]
        return series[-1] if series else None

    def lln(self, result: rules.Result) -> bool:
        return below_lln(result, self.ctx.sex, self.ctx.age, self.ctx.pregnant)

    def uln(self, result: rules.Result) -> bool:
        return above_uln(result, self.ctx.sex, self.ctx.age, self.ctx.pregnant)


def load_inputs(patient: Patient, at: datetime) -> Inputs:
    today = local_date(at, patient.timezone)
    t0 = first_dose_date(patient)
    rows = list(LabResult.objects.filter(patient=patient, collected_at__lte=at))
    facts = list(PatientFact.objects.filter(patient=patient))
    pregnant = fact_present(facts, FactKind.PREGNANCY, today) is not None
    transfusions = tuple(
        sorted(f.onset_date for f in facts if f.kind == FactKind.TRANSFUSION and not f.absent and f.onset_date)
    )
    ctx = rules.PatientContext(
        sex=patient.sex, age=patient.age_on(today), pregnant=pregnant, t0=t0, transfusions=transfusions
    )
    return Inputs(
        patient=patient,
        at=at,
        today=today,
        t0=t0,
        stored=stored_results(rows, patient.timezone),
        facts=facts,
        ctx=ctx,
        qualitative=[r for r in rows if r.value_canonical is None],
    )


def _evidence_ids(inp: Inputs, finding: rules.Finding) -> dict[str, Any]:
    evidence = dict(finding.evidence)
    analyte, on = evidence.get("analyte"), evidence.get("collected_on")
    if isinstance(analyte, str) and isinstance(on, str):
        evidence["result_ids"] = inp.ids(analyte, on)
    if evidence.get("baseline_on") and isinstance(analyte, str):
        evidence["baseline_result_ids"] = inp.ids(analyte, evidence["baseline_on"])
    if inp.t0 is not None:
        evidence["t0"] = inp.t0.isoformat()
    return evidence


def fmt(value: Decimal | float) -> str:
    """A stored value without trailing zeros: 3000.000000 -> "3000", 0.350000 -> "0.35"."""
    number = Decimal(str(value))
    text = format(number.normalize(), "f")
    return text


def _result_evidence(s: StoredResult) -> dict[str, Any]:
    return {
        "id": s.id,
        "analyte": s.result.analyte,
        "value": fmt(s.result.value),
        "collected_on": s.result.collected_on.isoformat(),
    }


# --- safety rules evaluated with the results (RULES §4) ----------------------------------------------


def s3_pseudo_tma(inp: Inputs) -> rules.Finding | None:
    """S-3 (CRITICAL): latest Hb < LLN and platelets < LLN (150) and >= 1 haemolysis marker abnormal, with B12
    low or pending. Schistocytes are a supporting clue only (never their absence, §8 Q10)."""
    hb, plt = inp.latest("hemoglobin"), inp.latest("platelets")
    if hb is None or plt is None or not inp.lln(hb.result) or not inp.lln(plt.result):
        return None
    markers = [m for m in (inp.latest(a) for a in HEMOLYSIS_MARKERS) if m is not None]
    abnormal = hemolysis_abnormal([m.result for m in markers], inp.ctx.sex, inp.ctx.age, inp.ctx.pregnant)
    if not abnormal:
        return None
    total, active = inp.latest("b12_total"), inp.latest("b12_active")
    b12 = "pending"
    if total is not None or active is not None:
        b12 = b12_status(
            total.result.value if total else None, active.result.value if active else None
        )  # RULES §5.1 NG239 defaults
        if b12 == "unlikely":
            return None
    clues = [
        f"haptoglobin {fmt(r.value)} g/L below the lower limit"
        if r.analyte == "haptoglobin"
        else f"indirect bilirubin {fmt(r.value)} umol/L above the upper limit"
        for r in abnormal
        if r.analyte != "ldh"
    ]
    ldh = inp.latest("ldh")
    if ldh is not None:
        high = limits(ldh.result, inp.ctx.sex, inp.ctx.age, inp.ctx.pregnant)[1]
        if high:
            clues.append(f"LDH {fmt(ldh.result.value)} U/L ({Decimal(str(ldh.result.value)) / high:.1f} x ULN)")
    retic = inp.latest("reticulocytes_pct") or inp.latest("reticulocytes_abs")
    if retic is not None and inp.lln(retic.result):
        clues.append(f"reticulocytes low ({fmt(retic.result.value)})")
    mcv = inp.latest("mcv")
    if mcv is not None and inp.uln(mcv.result):
        clues.append(f"MCV high ({fmt(mcv.result.value)} fL)")
    schisto = next((r for r in inp.qualitative if r.analyte == "schistocytes"), None)
    if schisto is not None and schisto.presence == "present":
        clues.append("schistocytes present on the film")
    message = f"{S3_BANNER} B12: {b12}. Supporting clues: {'; '.join(clues)}."
    adamts13 = inp.latest("adamts13_activity")
    if adamts13 is not None and b12 == "deficient":
        low = limits(adamts13.result, inp.ctx.sex, inp.ctx.age, inp.ctx.pregnant)[0]
        value = Decimal(str(adamts13.result.value))
        if value >= S3_ADAMTS13_TTP_BELOW or (low is not None and value >= low):
            message += f" ADAMTS13 {fmt(value)}%: {S3_ADAMTS13_TEXT}."
    used = [hb, plt, *markers, *(x for x in (total, active, adamts13, retic, mcv) if x is not None)]
    return rules.Finding(
        kind="pseudo_tma_pattern",
        rule_id="S-3",
        severity="critical",
        message=message,
        action_text=S3_ACTION_TEXT,
        evidence={"b12": b12, "results": [_result_evidence(s) for s in used], "clues": clues},
    )


def s9_potassium(inp: Inputs) -> tuple[rules.Finding | None, bool]:
    """S-9 (MEDIUM task): Hb < 80 g/L [P] at T0 (baseline) or the severe-megaloblastic flag -> potassium within
    48 h (L-1). Returns (finding, met): `met` once a potassium result on or after T0 exists."""
    if inp.t0 is None:
        return None, False
    t0 = inp.t0
    met = any(s.result.analyte == "potassium" and s.result.collected_on >= t0 for s in inp.stored)
    base = rules.baseline(inp.results, "hemoglobin", t0)
    below = Decimal(str(settings.COBALT["POTASSIUM_CHECK_HB_BELOW"]))  # RULES S-9 / L-1 [P]
    flag = fact_present(inp.facts, FactKind.SEVERE_MEGALOBLASTIC)
    if not ((base is not None and Decimal(str(base.value)) < below) or flag is not None):
        return None, met
    evidence: dict[str, Any] = {"t0": t0.isoformat()}
    if base is not None:
        evidence["baseline_hemoglobin"] = str(base.value)
        evidence["result_ids"] = inp.ids("hemoglobin", base.collected_on)
    if flag is not None:
        evidence["fact_ids"] = [flag.pk]
    reason = (
        f"baseline Hb {base.value} g/L < {below}"
        if base is not None and Decimal(str(base.value)) < below
        else ("severe megaloblastic anaemia recorded")
    )
    finding = rules.Finding(
        kind="potassium_check_due",
        rule_id="S-9",
        severity="medium",
        message=f"Serum potassium due within 48 hours of the first dose ({reason}); hypokalaemia risk (S-9, L-1).",
        action_text="Draw serum potassium within 48 h of the first dose and replace if low.",
        evidence=evidence,
    )
    return finding, met


def s6a_delay(recorded_at: datetime, first_b12: datetime | None, at: datetime) -> bool:
    """S-6(a) [P]: symptoms recorded, and no B12 given by recorded_at + N hours, judged once that time passed."""
    deadline = recorded_at + timedelta(hours=int(settings.COBALT["NEURO_TREATMENT_DELAY_HOURS"]))
    return at >= deadline and (first_b12 is None or first_b12 > deadline)


def s6_neuro(inp: Inputs, first_b12: datetime | None) -> rules.Finding | None:
    fact = fact_present(inp.facts, FactKind.NEURO_SYMPTOMS)
    if fact is None:
        return None
    if s6a_delay(fact.recorded_at, first_b12, inp.at):
        return rules.Finding(
            kind="neuro_treatment_delay",
            rule_id="S-6(a)",
            severity="high",
            message=(
                "Neurological symptoms recorded and no B12 dose within "
                f"{settings.COBALT['NEURO_TREATMENT_DELAY_HOURS']} hours (S-6): do not delay treatment."
            ),
            action_text="Give B12 now; seek urgent specialist advice (haematology ± neurology).",
            evidence={"fact_ids": [fact.pk], "recorded_at": fact.recorded_at.isoformat()},
        )
    if inp.t0 is not None and fact.onset_date is not None:
        if (inp.t0 - fact.onset_date).days > S6B_ONSET_DAYS_BEFORE_T0:
            return rules.Finding(
                kind="neuro_treatment_delay",
                rule_id="S-6(b)",
                severity="info",
                message=(
                    f"Neurological symptoms began {(inp.t0 - fact.onset_date).days} days before the first dose: "
                    "risk of permanent deficit (S-6)."
                ),
                action_text="",
                evidence={"fact_ids": [fact.pk], "onset_date": fact.onset_date.isoformat(), "t0": inp.t0.isoformat()},
            )
    return None


def s13_sample_after_treatment(inp: Inputs) -> rules.Finding | None:
    if inp.t0 is None:
        return None
    t0 = inp.t0
    late = [s for s in inp.stored if s.result.analyte in B12_TESTS and s.result.collected_on > t0]
    if not late:
        return None
    return rules.Finding(
        kind=SAMPLE_AFTER_TREATMENT_KIND,
        rule_id="S-13",
        severity="info",
        message="B12/folate test taken after the first B12 dose: result may be falsely reassuring (S-13).",
        action_text="",
        evidence={"t0": t0.isoformat(), "results": [_result_evidence(s) for s in late]},
    )


# --- the evaluation ------------------------------------------------------------------------------------


def _first_b12_at(patient: Patient) -> datetime | None:
    given = first_dose_at(patient)
    med = (
        Medication.objects.filter(patient=patient, kind__in=B12_MEDICATIONS)
        .order_by("start_date")
        .values_list("start_date", flat=True)
        .first()
    )
    med_at = None
    if med is not None:  # a medication has a date only: count it from the start of that day (patient's zone)
        med_at = datetime.combine(med, datetime.min.time(), tzinfo=zoneinfo.ZoneInfo(patient.timezone))
    candidates = [x for x in (given, med_at) if x is not None]
    return min(candidates) if candidates else None


def complete_rechecks(patient: Patient, inp: Inputs) -> int:
    """Rechecks follow the data: a due/overdue recheck is done once every analyte it asks for has a result
    collected on or after its window start (inside or after the window)."""

    done = 0
    for recheck in LabRecheck.objects.filter(patient=patient, status__in=[RecheckStatus.DUE, RecheckStatus.OVERDUE]):
        if not recheck.analytes:
            continue  # a clinical review (L-8) is not completed by a result
        for analyte in recheck.analytes:
            hits = [
                s.result.collected_on
                for s in inp.stored
                if s.result.analyte == analyte and s.result.collected_on >= recheck.window_start
            ] + [
                local_date(q.collected_at, patient.timezone)
                for q in inp.qualitative
                if q.analyte == analyte and local_date(q.collected_at, patient.timezone) >= recheck.window_start
            ]
            if not hits:
                break
        else:
            recheck.status = RecheckStatus.DONE
            recheck.completed_at = inp.at
            recheck.save(update_fields=["status", "completed_at"])
            done += 1
    return done


def _s15_task(patient: Patient, inp: Inputs, finding: rules.Finding, regimen_id: int) -> bool:
    """RULES S-15 -> L-9: a ferritin + folate recheck task, once per triggering result day."""

    day = finding.evidence.get("day", (inp.today - inp.t0).days if inp.t0 else 0)
    key = f"{TASK_PREFIX}S-15@{day}"
    # §3.2: a HIGH/MEDIUM alert is reviewed within 1 / 7 days; the task window is those 7 days.
    window = int(settings.COBALT["S15_TASK_WINDOW_DAYS"])
    _, created = LabRecheck.objects.get_or_create(
        regimen_id=regimen_id,
        key=key,
        defaults={
            "patient": patient,
            "rule": "L-9",
            "due_date": inp.today,
            "window_start": inp.today,
            "window_end": inp.today + timedelta(days=window),
            "analytes": ["ferritin", "folate"],
            "description": f"Ferritin and folate: poor response ({finding.rule_id}), S-15",
        },
    )
    return created


def _recheck_plan_changed(regimen: Any, today: date) -> bool:
    """Whether the engine's recheck plan differs from the stored rechecks (computed, not written), so an
    evaluation that changes nothing writes nothing (not even a history row of the regimen)."""

    plan = regimen_plan(regimen, today)
    stored = {r.key: r for r in LabRecheck.objects.filter(regimen=regimen)}
    for planned in plan.rechecks:
        row = stored.pop(planned.key, None)
        if row is None or row.status == RecheckStatus.CANCELLED:
            return True
        if row.status != RecheckStatus.DONE and (
            row.due_date,
            row.window_start,
            row.window_end,
            list(row.analytes),
        ) != (planned.due_date, planned.window_start, planned.window_end, list(planned.analytes)):
            return True
    return any(row.status == RecheckStatus.DUE and not key.startswith(TASK_PREFIX) for key, row in stored.items())


def evaluate_patient(patient_id: int, at: datetime | None = None) -> dict[str, Any]:
    """Run every rule for the patient as of `at` (now by default); open, update and resolve alerts; complete
    the rechecks the results answer and re-plan the conditional ones. One transaction; idempotent."""

    at = at or djtz.now()
    summary: dict[str, Any] = {"raised": [], "escalated": [], "updated": [], "resolved": [], "rechecks_done": 0}
    summary["tasks"] = 0
    with transaction.atomic():
        patient = Patient.objects.select_for_update().get(pk=patient_id)
        inp = load_inputs(patient, at)
        summary["rechecks_done"] = complete_rechecks(patient, inp)
        regimen = (
            Regimen.objects.filter(patient=patient, status=RegimenStatus.ACTIVE).order_by("-start_date", "-id").first()
        )
        if regimen is not None and _recheck_plan_changed(regimen, inp.today):
            # New baseline or follow-up results change the conditional rechecks (L-1, L-4, L-4b, L-5).
            regimen_replan(regimen=regimen, today=inp.today)
            summary["replanned"] = True

        rs = rule_settings()
        results = inp.results
        findings = rules.evaluate(results, inp.ctx, rs)
        resolved = set(rules.resolved_kinds(results, inp.ctx, rs)) - {f.kind for f in findings}
        raised_kinds = {f.kind for f in findings}

        extra: list[rules.Finding] = []
        s3 = s3_pseudo_tma(inp)
        if s3 is not None:
            extra.append(s3)
        s9, potassium_met = s9_potassium(inp)
        if s9 is not None and not potassium_met:
            extra.append(s9)
        if potassium_met:
            resolved.add("potassium_check_due")
        s6 = s6_neuro(inp, _first_b12_at(patient))
        if s6 is not None:
            extra.append(s6)
        s13 = s13_sample_after_treatment(inp)
        if s13 is not None:
            extra.append(s13)
        note = rules.transfusion_note(results, inp.ctx, rs)
        if note is not None:
            hb = inp.latest("hemoglobin")
            extra.append(
                rules.Finding(
                    kind=TRANSFUSION_NOTE_KIND,
                    rule_id="§3.6",
                    severity="info",
                    message=note,
                    action_text="",
                    evidence={
                        "transfusions": [d.isoformat() for d in inp.ctx.transfusions],
                        "fact_ids": [f.pk for f in inp.facts if f.kind == FactKind.TRANSFUSION and not f.absent],
                        "result_ids": [hb.id] if hb else [],
                    },
                )
            )
        else:
            resolved.add(TRANSFUSION_NOTE_KIND)

        open_alerts = {a.kind: a for a in Alert.objects.filter(patient=patient).exclude(status=AlertStatus.RESOLVED)}
        for finding in [*findings, *extra]:
            evidence = _evidence_ids(inp, finding) if finding in findings else finding.evidence
            current = open_alerts.get(finding.kind)
            if current is None or SEVERITY_RANK[finding.severity] > SEVERITY_RANK[current.severity]:
                current, created = alert_raise(
                    patient=patient,
                    kind=finding.kind,
                    severity=finding.severity,
                    message=finding.message,
                    action_text=finding.action_text,
                    evidence=evidence,
                    rule_id=finding.rule_id,
                    at=at,
                )
                open_alerts[finding.kind] = current
                summary["raised" if created else "escalated"].append(finding.kind)
            elif current.severity == finding.severity and (
                current.message != finding.message or current.evidence != evidence
            ):
                # Same finding, newer data (e.g. the ADAMTS13 result of S-3): keep the alert current.
                current.message, current.evidence, current.rule_id = finding.message, evidence, finding.rule_id
                current.save(update_fields=["message", "evidence", "rule_id"])
                summary["updated"].append(finding.kind)
        closing = sorted((resolved - raised_kinds - {f.kind for f in extra}) & set(open_alerts))
        if closing:
            Alert.objects.filter(patient=patient, kind__in=closing).exclude(status=AlertStatus.RESOLVED).update(
                status=AlertStatus.RESOLVED, resolved_at=at, resolution="target met by a later result (RULES §3.6)"
            )
            summary["resolved"].extend(closing)

        if regimen is not None:
            for finding in findings:
                if finding.kind in S15_KINDS and finding.rule_id in S15_RULES:
                    summary["tasks"] += int(_s15_task(patient, inp, finding, regimen.pk))
        # §3.3: the "overdue test" alert closes once no recheck is left past its window.
        if (
            "lab_recheck_overdue" in open_alerts
            and not LabRecheck.objects.filter(patient=patient, status=RecheckStatus.OVERDUE).exists()
        ):
            Alert.objects.filter(pk=open_alerts["lab_recheck_overdue"].pk).update(
                status=AlertStatus.RESOLVED, resolved_at=at, resolution="recheck results received"
            )
            summary["resolved"].append("lab_recheck_overdue")
    return summary
