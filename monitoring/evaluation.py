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
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone as djtz

from monitoring import rules
from monitoring.inputs import rule_settings, stored_results
from monitoring.rules.patterns import (
    Inputs,
    neuro_treatment_delay,
    potassium_check_due,
    pseudo_tma_pattern,
    sample_taken_after_treatment,
)
from notifications.alerts import alert_raise
from notifications.models import SEVERITY_RANK, Alert, AlertKind, AlertStatus
from patients.models import FactKind, LabResult, Medication, Patient, PatientFact
from patients.selectors import pregnant_on
from regimens.models import LabRecheck, RecheckStatus, Regimen, RegimenStatus
from regimens.selectors import first_dose_at, first_dose_date
from regimens.services import regimen_plan, regimen_replan
from tracker.clock import local_date

log = logging.getLogger(__name__)

# Kinds with no row in RULES "Alert kinds": INFO notes on the record (§3.2 INFO = timeline note).
TRANSFUSION_NOTE_KIND = AlertKind.TRANSFUSION_NOTE  # RULES §3.6
# Monitoring tasks are LabRecheck rows whose key starts with this; the re-plan keeps them
# (regimens/services.py _sync).
TASK_PREFIX = "task:"

B12_MEDICATIONS = ("cyanocobalamin", "hydroxocobalamin")
# RULES S-15 -> L-9: ferritin + folate when A-H1..A-H4 fires.
S15_KINDS = ("no_reticulocyte_response", "hemoglobin_slow_rise", "hemoglobin_not_normalized")
S15_RULES = ("A-H1", "A-H2", "A-H3", "A-H4")
S15_ANALYTES = ("ferritin", "folate")


def load_inputs(patient: Patient, at: datetime) -> Inputs:
    today = local_date(at, patient.timezone)
    t0 = first_dose_date(patient)
    # RULES §10 V-14: a result marked entered in error is read by no rule.
    rows = list(LabResult.objects.filter(patient=patient, collected_at__lte=at, error_recorded_at__isnull=True))
    facts = list(PatientFact.objects.filter(patient=patient))
    pregnant = pregnant_on(facts, today)
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
        settings=rule_settings(),
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


# RULES §10 V-10: L-11 is met by B12 (total or active) *or* MMA; its other analytes (the CBC) are all needed.
ANY_OF: dict[str, frozenset[str]] = {"L-11": frozenset({"b12_total", "b12_active", "mma"})}


def recheck_answered(rule: str, analytes: list[str], answered: Callable[[str], bool]) -> bool:
    """Whether results answer a recheck: every analyte it asks for has one (`answered`), except that one of a
    rule's alternatives (ANY_OF) stands for all of them. A recheck with no analytes (L-8 review) never is."""
    if not analytes:
        return False
    alternatives = ANY_OF.get(rule, frozenset())
    wanted = [a for a in analytes if a not in alternatives]
    either = [a for a in analytes if a in alternatives]
    return all(answered(a) for a in wanted) and (not either or any(answered(a) for a in either))


def has_result_from(days: dict[str, list[date]], start: date) -> Callable[[str], bool]:
    """Whether an analyte has a result collected on or after `start` (days: analyte -> collection dates)."""

    def answered(analyte: str) -> bool:
        return any(d >= start for d in days.get(analyte, ()))

    return answered


def complete_rechecks(patient: Patient, inp: Inputs) -> int:
    """Rechecks follow the data: a due/overdue recheck is done once every analyte it asks for has a result
    collected on or after its window start (inside or after the window; L-11: B12 or MMA, see ANY_OF).

    RULES §10 V-14: a recheck completed by results (not closed by hand) that no valid result answers any more,
    because the result that completed it was entered in error, is due again (overdue once its window ends,
    on the next sweep)."""

    days: dict[str, list[date]] = {}
    for s in inp.stored:
        days.setdefault(s.result.analyte, []).append(s.result.collected_on)
    for q in inp.qualitative:
        days.setdefault(q.analyte, []).append(local_date(q.collected_at, patient.timezone))

    done = 0
    rechecks = LabRecheck.objects.filter(
        patient=patient, status__in=[RecheckStatus.DUE, RecheckStatus.OVERDUE, RecheckStatus.DONE]
    )
    for recheck in rechecks:
        answered = recheck_answered(recheck.rule, list(recheck.analytes), has_result_from(days, recheck.window_start))
        if recheck.status != RecheckStatus.DONE and answered:
            recheck.status = RecheckStatus.DONE
            recheck.completed_at = inp.at
            recheck.save(update_fields=["status", "completed_at"])
            done += 1
        elif recheck.status == RecheckStatus.DONE and not answered and not recheck.close_note and recheck.analytes:
            if _answered_by_error(patient, recheck):
                recheck.status = RecheckStatus.DUE
                recheck.completed_at = None
                recheck.save(update_fields=["status", "completed_at"])
    return done


def _answered_by_error(patient: Patient, recheck: LabRecheck) -> bool:
    """Whether a result entered in error (RULES §10 V-14) falls in what `recheck` asks for: then its
    completion came from that result and it reopens. Only asked for a done recheck no valid result answers."""
    for collected_at in LabResult.objects.filter(
        patient=patient, analyte__in=list(recheck.analytes), error_recorded_at__isnull=False
    ).values_list("collected_at", flat=True):
        if local_date(collected_at, patient.timezone) >= recheck.window_start:
            return True
    return False


def _s15_task(patient: Patient, inp: Inputs, finding: rules.Finding, regimen_id: int) -> bool:
    """RULES S-15 -> L-9: a ferritin + folate recheck task, once per triggering result day."""

    day = finding.evidence.get("day", (inp.today - inp.t0).days if inp.t0 else 0)
    key = f"{TASK_PREFIX}S-15@{day}"
    # §3.2: a HIGH/MEDIUM alert is reviewed within 1 / 7 days; the task window is those 7 days.
    window = int(settings.COBALT["S15_TASK_WINDOW_DAYS"])
    # RULES §10 V-10: one recheck per (regimen, analyte set, window): an open recheck of the same analytes
    # whose window overlaps this one already asks for it.
    analytes = sorted(S15_ANALYTES)
    open_same = [
        r
        for r in LabRecheck.objects.filter(
            regimen_id=regimen_id,
            status__in=[RecheckStatus.DUE, RecheckStatus.OVERDUE],
            window_start__lte=inp.today + timedelta(days=window),
            window_end__gte=inp.today,
        )
        if sorted(r.analytes) == analytes
    ]
    if open_same:
        return False
    _, created = LabRecheck.objects.get_or_create(
        regimen_id=regimen_id,
        key=key,
        defaults={
            "patient": patient,
            "rule": "L-9",
            "due_date": inp.today,
            "window_start": inp.today,
            "window_end": inp.today + timedelta(days=window),
            "analytes": list(S15_ANALYTES),
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
        if row is None or (row.status == RecheckStatus.CANCELLED and not row.close_note):
            return True  # a recheck cancelled by hand stays cancelled (V-10): not a change
        if row.status != RecheckStatus.DONE and not row.close_note and (
            row.due_date,
            row.window_start,
            row.window_end,
            list(row.analytes),
        ) != (planned.due_date, planned.window_start, planned.window_end, list(planned.analytes)):
            return True
    return any(row.status == RecheckStatus.DUE and not key.startswith(TASK_PREFIX) for key, row in stored.items())


# Rules whose alerts this evaluation raises from results (the sweep and the safety checks raise the others).
EVALUATED_RULE_IDS = ("S-3", "S-9", "S-13", "§3.6")


def _evaluated_here(rule_id: str) -> bool:
    return rule_id.startswith("A-") or rule_id in EVALUATED_RULE_IDS


def cited_results(evidence: Any) -> set[int]:
    """The lab result ids an alert's evidence cites (result_ids, baseline_result_ids, results[].id)."""
    if not isinstance(evidence, dict):
        return set()
    ids = [*evidence.get("result_ids", []), *evidence.get("baseline_result_ids", [])]
    ids += [r.get("id") for r in evidence.get("results", []) if isinstance(r, dict)]
    return {i for i in ids if isinstance(i, int)}


def _errored_result_ids(patient: Patient, alerts: Any) -> set[int]:
    """The results entered in error (RULES §10 V-14) among those the open alerts cite (no query without any)."""
    cited = set().union(*(cited_results(a.evidence) for a in alerts))
    if not cited:
        return set()
    return set(
        LabResult.objects.filter(patient=patient, pk__in=cited, error_recorded_at__isnull=False).values_list(
            "pk", flat=True
        )
    )


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

        rs = inp.settings
        results = inp.results
        findings = rules.evaluate(results, inp.ctx, rs)
        resolved = set(rules.resolved_kinds(results, inp.ctx, rs)) - {f.kind for f in findings}
        raised_kinds = {f.kind for f in findings}

        extra: list[rules.Finding] = []
        s3 = pseudo_tma_pattern(inp)
        if s3 is not None:
            extra.append(s3)
        s9, potassium_met = potassium_check_due(inp)
        if s9 is not None and not potassium_met:
            extra.append(s9)
        if potassium_met:
            resolved.add("potassium_check_due")
        s6 = neuro_treatment_delay(inp, _first_b12_at(patient))
        if s6 is not None:
            extra.append(s6)
        s13 = sample_taken_after_treatment(inp)
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
        errored = _errored_result_ids(patient, open_alerts.values())
        for finding in [*findings, *extra]:
            evidence = _evidence_ids(inp, finding) if finding in findings else finding.evidence
            current = open_alerts.get(finding.kind)
            stale = current is not None and bool(cited_results(current.evidence) & errored)
            if current is not None and stale and current.severity != finding.severity:
                # RULES §10 V-14: the severity came from a result entered in error; what holds now replaces it.
                current.severity, current.message, current.evidence, current.rule_id = (
                    finding.severity,
                    finding.message,
                    evidence,
                    finding.rule_id,
                )
                current.save(update_fields=["severity", "message", "evidence", "rule_id"])
                summary["updated"].append(finding.kind)
            elif current is None or SEVERITY_RANK[finding.severity] > SEVERITY_RANK[current.severity]:
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
        withdrawn = sorted(
            kind
            for kind, alert in open_alerts.items()
            if kind not in raised_kinds | {f.kind for f in extra} | set(closing)
            and _evaluated_here(alert.rule_id)
            and alert.severity != "critical"  # V-2: a CRITICAL alert waits for a person
            and cited_results(alert.evidence) & errored
        )
        if withdrawn:
            # RULES §10 V-14: the finding no longer holds without the result entered in error.
            Alert.objects.filter(patient=patient, kind__in=withdrawn).exclude(status=AlertStatus.RESOLVED).update(
                status=AlertStatus.RESOLVED,
                resolved_at=at,
                resolution="the result it was based on was entered in error (RULES §10 V-14)",
            )
            summary["resolved"].extend(withdrawn)

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
