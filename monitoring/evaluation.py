"""Running the monitoring rules for one patient and turning findings into alerts.

Writers of results, medications, facts and doses announce "patient.changed" (tracker/events.py) inside
their transaction; monitoring/listeners.py runs the evaluation after the commit, so it sees the committed
data and a failure in it can never undo the clinical write. The monitoring sweep (monitoring/sweep.py)
covers the time-based rules (overdue doses and rechecks, neuro review, S-6(a)).

`evaluate_patient` is idempotent: a second run with the same data changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone as djtz

from monitoring import rules
from monitoring.inputs import lab_context_read, rule_settings, stored_results
from monitoring.rules.base import fmt
from monitoring.rules.patterns import (
    Inputs,
    neuro_treatment_delay,
    potassium_check_due,
    pseudo_tma_pattern,
    sample_taken_after_treatment,
    tma_pattern_b12_not_low,
)
from monitoring.selectors import first_b12_at, neuro_flag_set_at, pre_treatment_b12
from notifications.alerts import alert_close, alert_raise, has_new_evidence
from notifications.models import SEVERITY_RANK, Alert, AlertKind, AlertStatus
from patients.labs.analytes import AnalyteError, resolve
from patients.models import FactKind, LabResult, Patient, PatientFact
from patients.selectors import pregnant_on
from regimens.models import LabRecheck, RecheckStatus, Regimen, RegimenStatus
from regimens.schedule import LabContext, Plan
from regimens.selectors import current_regimen, enrolled_at_maintenance, regimen_t0
from regimens.services import lab_inputs, regimen_replan_if_changed
from tracker import bulk
from tracker.clock import local_date

log = logging.getLogger(__name__)

# Kinds with no row in RULES "Alert kinds": INFO notes on the record (§3.2 INFO = timeline note).
TRANSFUSION_NOTE_KIND = AlertKind.TRANSFUSION_NOTE  # RULES §3.6
# Monitoring tasks are LabRecheck rows whose key starts with this; the re-plan keeps them
# (regimens/services.py _sync).
TASK_PREFIX = "task:"

B12_MEDICATIONS = ("cyanocobalamin", "hydroxocobalamin")
# RULES S-15 -> L-9: ferritin + folate when A-H1..A-H4 fires. L-9 itself asks for them on "any 'failure to
# respond' alert": also A-H6 (MCV not normalising), A-H7 (refractory at 3 months) and the platelet response alerts
# A-P1, A-P2 and A-P4 (docs/clinical-reference.md D-R11). Not A-H5, A-P3, A-P5 or the LDH alerts: those are not a
# response that failed to come.
S15_RULES = ("A-H1", "A-H2", "A-H3", "A-H4")
L9_RULES = (*S15_RULES, "A-H6", "A-H7", "A-P1", "A-P2", "A-P4")
S15_ANALYTES = ("ferritin", "folate")

# The analyte whose latest result closes each kind (rules.resolved_kinds, and S-9 for potassium): the result
# shown as "target met" on a critical alert (RULES §10 V-2).
TARGET_ANALYTE = {
    "hemoglobin_falling": "hemoglobin",
    "hemoglobin_slow_rise": "hemoglobin",
    "hemoglobin_not_normalized": "hemoglobin",
    "hemoglobin_refractory": "hemoglobin",
    "mcv_not_normalized": "mcv",
    "ldh_not_falling": "ldh",
    "ldh_not_normalized": "ldh",
    "platelets_not_normalized": "platelets",
    "platelets_not_rising": "platelets",
    "platelets_critical": "platelets",
    "platelets_rebound": "platelets",
    "potassium_check_due": "potassium",
}
TARGET_MET = "target met by a later result (RULES §3.6)"


def load_inputs(patient: Patient, at: datetime) -> Inputs:
    today = local_date(at, patient.timezone)
    # RULES §10 V-1: T0 and baseline are those of the current regimen (a restart or a switch starts again).
    regimen = current_regimen(patient)
    if regimen is not None:
        regimen.patient = patient  # the same row, already read: regimen_t0 needs its time zone
    t0 = None if regimen is None else regimen_t0(regimen)
    enrolled = regimen is not None and enrolled_at_maintenance(regimen)
    # RULES §10 V-14: a result marked entered in error is read by no rule. One query for the rules (up to `at`), the
    # recheck plan (every collection time, see _plan_labs) and the ids of those entered in error (_errored_result_ids).
    every = list(LabResult.objects.filter(patient=patient))
    all_rows = [r for r in every if r.error_recorded_at is None]
    rows = [r for r in all_rows if r.collected_at <= at]
    facts = list(PatientFact.objects.filter(patient=patient))
    pregnant = pregnant_on(facts, today)
    transfusions = tuple(
        sorted(f.onset_date for f in facts if f.kind == FactKind.TRANSFUSION and not f.absent and f.onset_date)
    )
    # A-P3's film clause (V-4): schistocytes present/absent, oldest first.
    films = tuple(
        (local_date(r.collected_at, patient.timezone), r.presence == "present")
        for r in sorted(rows, key=lambda r: (r.collected_at, r.pk))
        if r.analyte == "schistocytes" and r.presence in ("present", "absent")
    )
    ctx = rules.PatientContext(
        sex=patient.sex,
        age=patient.age_on(today),
        pregnant=pregnant,
        t0=t0,
        transfusions=transfusions,
        enrolled=enrolled,
        schistocytes=films,
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
        # S-3 (§10 V-7): the pre-treatment B12 levels (the trends' and /b12-status/'s answer without MMA, whose rise
        # with kidney impairment must not hide a true TMA; docs/clinical-reference.md S-3).
        b12=pre_treatment_b12(rows, t0, patient.timezone).levels,
        qualitative=[r for r in rows if r.value_canonical is None],
        # The flag is on the row just read (evaluate_patient locks and reads it): its history only when it is on.
        neuro_flag_since=neuro_flag_set_at([patient.pk]).get(patient.pk) if patient.neurological_involvement else None,
        regimen=regimen,
        all_rows=all_rows,
        errored_ids=frozenset(r.pk for r in every if r.error_recorded_at is not None),
    )


def _evidence_ids(inp: Inputs, finding: rules.Finding) -> dict[str, Any]:
    evidence = dict(finding.evidence)
    analyte, on = evidence.get("analyte"), evidence.get("collected_on")
    if isinstance(analyte, str) and isinstance(on, str):
        evidence["result_ids"] = inp.ids(analyte, on) or [
            q.pk
            for q in inp.qualitative
            if q.analyte == analyte and local_date(q.collected_at, inp.patient.timezone).isoformat() == on
        ]
    if evidence.get("baseline_on") and isinstance(analyte, str):
        evidence["baseline_result_ids"] = inp.ids(analyte, evidence["baseline_on"])
    if inp.t0 is not None:
        evidence["t0"] = inp.t0.isoformat()
    return evidence


def target_met_evidence(inp: Inputs, kind: str) -> dict[str, Any]:
    """The result that met `kind`'s target, for people (V-2): id, analyte, value, unit, collected_on."""
    analyte = TARGET_ANALYTE.get(kind)
    latest = inp.latest(analyte) if analyte else None
    if latest is None:
        return {"reason": TARGET_MET}
    try:
        unit = resolve(latest.result.analyte).canonical_unit
    except AnalyteError:
        unit = ""
    return {
        "id": latest.id,
        "analyte": latest.result.analyte,
        "value": fmt(latest.result.value),
        "unit": unit,
        "collected_on": latest.result.collected_on.isoformat(),
    }


# --- the evaluation ------------------------------------------------------------------------------------


def _first_b12_at(patient: Patient) -> Callable[[], datetime | None]:
    """The first B12 recorded (dose given, B12 medication, or the last dose before an enrolment), S-6(a), read
    when asked (three queries; S-6 asks only for a patient with neurological involvement)."""
    return lambda: first_b12_at([patient.pk]).get(patient.pk)


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


def result_days(patient: Patient, inp: Inputs) -> dict[str, list[date]]:
    """Analyte -> the local days its results were collected on."""
    days: dict[str, list[date]] = {}
    for s in inp.stored:
        days.setdefault(s.result.analyte, []).append(s.result.collected_on)
    for q in inp.qualitative:
        days.setdefault(q.analyte, []).append(local_date(q.collected_at, patient.timezone))
    return days


def answers_a_new_recheck(patient: Patient, inp: Inputs, plan: Plan, rechecks: list[LabRecheck]) -> bool:
    """Whether the results answer a recheck of `plan` that is not done yet (`rechecks`: the patient's due, overdue
    and done ones as complete_rechecks left them), e.g. one the re-plan has just added."""
    done = {r.key for r in rechecks if r.status == RecheckStatus.DONE}
    days = result_days(patient, inp)
    return any(
        planned.key not in done
        and recheck_answered(planned.rule, list(planned.analytes), has_result_from(days, planned.window_start))
        for planned in plan.rechecks
    )


def complete_rechecks(patient: Patient, inp: Inputs) -> tuple[int, list[LabRecheck]]:
    """Rechecks follow the data: a due/overdue recheck is done once every analyte it asks for has a result
    collected on or after its window start (inside or after the window; L-11: B12 or MMA, see ANY_OF). Returns
    how many it completed, and the patient's due, overdue and done rechecks as they are now.

    RULES §10 V-14: a recheck completed by results (not closed by hand) that no valid result answers any more,
    because the result that completed it was entered in error, is due again (overdue once its window ends,
    on the next sweep)."""

    days = result_days(patient, inp)
    done = 0
    changed: list[LabRecheck] = []
    rechecks = list(
        LabRecheck.objects.filter(
            patient=patient, status__in=[RecheckStatus.DUE, RecheckStatus.OVERDUE, RecheckStatus.DONE]
        )
    )
    for recheck in rechecks:
        answered = recheck_answered(recheck.rule, list(recheck.analytes), has_result_from(days, recheck.window_start))
        if recheck.status != RecheckStatus.DONE and answered:
            recheck.status = RecheckStatus.DONE
            recheck.completed_at = inp.at
            changed.append(recheck)
            done += 1
        elif recheck.status == RecheckStatus.DONE and not answered and not recheck.close_note and recheck.analytes:
            if _answered_by_error(patient, recheck):
                recheck.status = RecheckStatus.DUE
                recheck.completed_at = None
                changed.append(recheck)
    if changed:
        # One UPDATE and one INSERT of their history rows however many rechecks one result answers (a CBC answers
        # several), instead of both per recheck.
        bulk.update_rows(LabRecheck, changed, ["status", "completed_at"])
        LabRecheck.history.bulk_history_create(changed, update=True, default_change_reason=None)
    return done, rechecks


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
    """RULES L-9 (S-15 for A-H1..A-H4): a ferritin + folate recheck task, once per triggering result day."""

    day = finding.evidence.get("day", (inp.today - inp.t0).days if inp.t0 else 0)
    key = f"{TASK_PREFIX}S-15@{day}"
    # §3.2: a HIGH/MEDIUM alert is reviewed within 1 / 7 days; the task window is those 7 days.
    window = int(settings.COBALT["S15_TASK_WINDOW_DAYS"])
    # RULES §10 V-10: one recheck per (regimen, analyte set, window): an open recheck of the same analytes
    # whose window overlaps this one already asks for it.
    analytes = sorted(S15_ANALYTES)
    open_overlapping = Q(
        status__in=[RecheckStatus.DUE, RecheckStatus.OVERDUE],
        window_start__lte=inp.today + timedelta(days=window),
        window_end__gte=inp.today,
    )
    # One query for both: the open rechecks that overlap, and this day's task if it exists in any status.
    found = list(LabRecheck.objects.filter(Q(key=key) | open_overlapping, regimen_id=regimen_id))
    open_same = [
        r
        for r in found
        if r.status in (RecheckStatus.DUE, RecheckStatus.OVERDUE)
        and r.window_start <= inp.today + timedelta(days=window)
        and r.window_end >= inp.today
        and sorted(r.analytes) == analytes
    ]
    if open_same or any(r.key == key for r in found):
        return False
    task = LabRecheck(
        regimen_id=regimen_id,
        key=key,
        patient=patient,
        rule="L-9",
        due_date=inp.today,
        window_start=inp.today,
        window_end=inp.today + timedelta(days=window),
        analytes=list(S15_ANALYTES),
        description=f"Ferritin and folate: poor response ({finding.rule_id}), "
        f"{'S-15' if finding.rule_id in S15_RULES else 'L-9'}",
    )
    # Ferritin and folate drawn today with the haemoglobin that raised it (one panel) already answer it: done at
    # once, as complete_rechecks would make it at the patient's next write.
    if recheck_answered(task.rule, task.analytes, has_result_from(result_days(patient, inp), task.window_start)):
        task.status, task.completed_at = RecheckStatus.DONE, inp.at
    # False when a concurrent evaluation created it first (recheck_key_unique).
    return bulk.insert_new_with_history(task, ("regimen_id", "key"))


def _plan_inputs_unchanged(regimen: Regimen, inp: Inputs) -> bool:
    """Whether new results or facts leave the regimen's recheck plan as it is, known without a plan (issue 16:
    most results do not change it).

    What the plan reads of them is T0 and the LabContext flags; every re-plan stores them on the regimen
    (planned_lab_inputs). When they are the same now (one query: the results; the facts are in `inp`) and the
    horizon has not come (before `extend_on` the repeating rechecks planned up to today + 14 days stay the
    same), nothing the plan depends on changed. Otherwise the regimen is locked and its plan computed once
    (regimen_replan_if_changed): compared with the stored rechecks (_recheck_plan_changed) and, when those
    already agree, only the new inputs are stored (no re-plan, no history row)."""
    stored = regimen.planned_lab_inputs
    horizon_come = regimen.extend_on is not None and regimen.extend_on <= inp.today
    if stored is None or horizon_come:
        return False
    t0 = date.fromisoformat(stored["t0"]) if stored.get("t0") else None
    return bool(lab_inputs(t0, _plan_labs(inp)(inp.patient, t0)) == stored)


def _plan_labs(inp: Inputs) -> Callable[[Patient, date | None], LabContext]:
    """monitoring.inputs.lab_context from the rows and facts `inp` read (no queries): what the recheck plan
    reads of the results, for the check above and for the re-plan."""
    return lab_context_read(inp.all_rows, inp.facts)


def _recheck_plan_changed(plan: Plan, rechecks: list[LabRecheck]) -> bool:
    """Whether the engine's recheck `plan` differs from the regimen's stored `rechecks` (computed, not written),
    so an evaluation that changes nothing writes nothing (not even a history row of the regimen)."""

    stored = {r.key: r for r in rechecks}
    for planned in plan.rechecks:
        row = stored.pop(planned.key, None)
        if row is None or (row.status == RecheckStatus.CANCELLED and not row.close_note):
            return True  # a recheck cancelled by hand stays cancelled (V-10): not a change
        if (
            row.status != RecheckStatus.DONE
            and not row.close_note
            and (
                row.due_date,
                row.window_start,
                row.window_end,
                list(row.analytes),
            )
            != (planned.due_date, planned.window_start, planned.window_end, list(planned.analytes))
        ):
            return True
    return any(row.status == RecheckStatus.DUE and not key.startswith(TASK_PREFIX) for key, row in stored.items())


# The kinds of the window rules (RULES §3.3-§3.5): each judges one regimen's response from its own T0.
RESPONSE_KINDS = frozenset(
    {
        "no_reticulocyte_response",
        "hemoglobin_slow_rise",
        "hemoglobin_not_normalized",
        "mcv_not_normalized",
        "hemoglobin_refractory",
        "platelets_not_rising",
        "platelets_not_normalized",
        "platelets_rebound",
        "ldh_not_falling",
        "ldh_not_normalized",
    }
)


def _supersede_previous_regimen(open_alerts: dict[str, Alert], inp: Inputs, at: datetime) -> list[str]:
    """RULES §10 V-1: a restart or a switch gets new response rules. A response alert raised from an earlier
    T0 (its evidence says which) is about the previous regimen: once the current regimen has its own T0 it is
    closed as superseded, so the new regimen's findings open (and notify) afresh instead of hiding behind it.
    Critical alerts (A-H5, A-P3) are not response-window alerts and are never closed here (V-2)."""
    if inp.t0 is None:
        return []
    current = inp.t0.isoformat()
    stale = [
        alert
        for kind, alert in open_alerts.items()
        if kind in RESPONSE_KINDS
        and alert.severity != "critical"
        and isinstance(alert.evidence, dict)
        and alert.evidence.get("t0") not in (None, current)
    ]
    for alert in stale:
        alert.status = AlertStatus.RESOLVED
        alert.resolved_at = at
        alert.resolution = f"superseded: a new regimen started (T0 {current}); its own response rules apply (RULES V-1)"
        alert.save(update_fields=["status", "resolved_at", "resolution"])
        del open_alerts[alert.kind]
    return sorted(a.kind for a in stale)


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


def _errored_result_ids(inp: Inputs, alerts: Any) -> set[int]:
    """The results entered in error (RULES §10 V-14) among those the open alerts cite (no query: load_inputs read
    the patient's results entered in error with the others)."""
    cited: set[int] = set().union(*(cited_results(a.evidence) for a in alerts))
    return cited & inp.errored_ids


def _raise(
    patient: Patient, finding: rules.Finding, evidence: dict[str, Any], at: datetime, *, none_unresolved: bool
) -> tuple[Alert, bool]:
    return alert_raise(
        patient=patient,
        kind=finding.kind,
        severity=finding.severity,
        message=finding.message,
        action_text=finding.action_text,
        evidence=evidence,
        rule_id=finding.rule_id,
        at=at,
        none_unresolved=none_unresolved,
    )


def _shown_before(patient: Patient, kind: str, evidence: dict[str, Any]) -> bool:
    """Whether a resolved alert of `kind` already named every record `evidence` names (a person saw it)."""
    return any(
        not has_new_evidence(alert, evidence)
        for alert in Alert.objects.filter(patient=patient, kind=kind, status=AlertStatus.RESOLVED).only("evidence")
    )


def evaluate_patient(patient_id: int, at: datetime | None = None) -> dict[str, Any]:
    """Run every rule for the patient as of `at` (now by default); open, update and resolve alerts; complete
    the rechecks the results answer and re-plan the conditional ones. One transaction; idempotent."""

    at = at or djtz.now()
    summary: dict[str, Any] = {"raised": [], "escalated": [], "updated": [], "resolved": [], "rechecks_done": 0}
    summary["reopened"], summary["target_met"] = [], []
    summary["tasks"] = 0
    with transaction.atomic():
        patient = Patient.objects.select_for_update().get(pk=patient_id)
        inp = load_inputs(patient, at)
        summary["rechecks_done"], rechecks = complete_rechecks(patient, inp)
        # The active regimen: current_regimen's first choice, so the one load_inputs read when there is one.
        regimen = inp.regimen if inp.regimen is not None and inp.regimen.status == RegimenStatus.ACTIVE else None
        plans: list[Plan] = []

        def changed(plan: Plan, stored: list[LabRecheck]) -> bool:
            plans.append(plan)
            return _recheck_plan_changed(plan, stored)

        if (
            regimen is not None
            and not _plan_inputs_unchanged(regimen, inp)
            and regimen_replan_if_changed(
                regimen=regimen, today=inp.today, changed=changed, lab_context=_plan_labs(inp)
            )
        ):
            # New baseline or follow-up results change the conditional rechecks (L-1, L-4, L-4b, L-5).
            summary["replanned"] = True
            # What the re-plan added may be answered already, by results of the same write (a history imported at
            # once): complete it now, not at the patient's next write.
            if answers_a_new_recheck(patient, inp, plans[-1], rechecks):
                more, rechecks = complete_rechecks(patient, inp)
                summary["rechecks_done"] += more

        rs = inp.settings
        results = inp.results
        findings = rules.evaluate(results, inp.ctx, rs)
        resolved = set(rules.resolved_kinds(results, inp.ctx, rs)) - {f.kind for f in findings}
        raised_kinds = {f.kind for f in findings}

        extra: list[rules.Finding] = []
        for s3 in (pseudo_tma_pattern(inp), tma_pattern_b12_not_low(inp)):
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

        open_alerts = {
            a.kind: a
            for a in Alert.objects.filter(patient=patient)
            .exclude(status=AlertStatus.RESOLVED)
            .select_related("acknowledged_by")
        }
        summary["superseded"] = _supersede_previous_regimen(open_alerts, inp, at)
        errored = _errored_result_ids(inp, open_alerts.values())
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
            # alert_raise opens a new alert, raises the severity, reopens an acknowledged alert that new evidence
            # reached (V-3) and clears "target met" when the problem is back (V-2); the same evidence on an
            # open alert is only kept current below.
            elif (
                current is None
                or SEVERITY_RANK[finding.severity] > SEVERITY_RANK[current.severity]
                or current.target_met_at is not None
                or (current.status == AlertStatus.ACKNOWLEDGED and has_new_evidence(current, evidence))
            ):
                was = None if current is None else (current.severity, current.status)
                # open_alerts holds every unresolved alert of the patient
                current, created = _raise(patient, finding, evidence, at, none_unresolved=current is None)
                open_alerts[finding.kind] = current
                if created:
                    summary["raised"].append(finding.kind)
                elif was is not None and was[1] == AlertStatus.ACKNOWLEDGED and current.status == AlertStatus.OPEN:
                    summary["reopened"].append(finding.kind)
                elif was is not None and was[0] != current.severity:
                    summary["escalated"].append(finding.kind)
                else:
                    summary["updated"].append(finding.kind)
            elif current.severity == finding.severity and (
                current.message != finding.message or current.evidence != evidence
            ):
                # Same finding, newer data (e.g. the ADAMTS13 result of S-3): keep the alert current.
                current.message, current.evidence, current.rule_id = finding.message, evidence, finding.rule_id
                current.save(update_fields=["message", "evidence", "rule_id"])
                summary["updated"].append(finding.kind)
        # V-2: a CRITICAL finding whose target a later result already meets opens all the same, for a person to see,
        # unless an alert of its kind has shown that evidence before; the closing below marks it "target met".
        for finding in rules.critical_met(results, inp.ctx, rs):
            evidence = _evidence_ids(inp, finding)
            if finding.kind in open_alerts or _shown_before(patient, finding.kind, evidence):
                continue
            open_alerts[finding.kind], _created = _raise(patient, finding, evidence, at, none_unresolved=True)
            summary["raised"].append(finding.kind)
        closing = sorted((resolved - raised_kinds - {f.kind for f in extra}) & set(open_alerts))
        for kind in closing:
            # §3.6 auto-resolve; a CRITICAL alert only shows "target met" until a person acknowledges it (V-2).
            met = target_met_evidence(inp, kind)
            done = alert_close(alert=open_alerts[kind], resolution=TARGET_MET, at=at, target_met_evidence=met)
            if done:
                summary["resolved" if done == "resolved" else "target_met"].append(kind)
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
                if finding.rule_id in L9_RULES:
                    summary["tasks"] += int(_s15_task(patient, inp, finding, regimen.pk))
        # §3.3: the "overdue test" alert closes once no recheck is left past its window. From the rechecks
        # complete_rechecks read and updated: nothing since sets a recheck overdue or takes one out of it (a re-plan
        # cancels or revives due rechecks only, an S-15 task is due).
        if "lab_recheck_overdue" in open_alerts and not any(r.status == RecheckStatus.OVERDUE for r in rechecks):
            done = alert_close(
                alert=open_alerts["lab_recheck_overdue"],
                resolution="recheck results received",
                at=at,
                target_met_evidence={"reason": "recheck results received"},
            )
            if done:
                summary["resolved" if done == "resolved" else "target_met"].append("lab_recheck_overdue")
    return summary
