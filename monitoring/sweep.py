"""The monitoring sweep (registered in tracker/sweeps.py): the time-based rules of RULES.

Set-based: each part runs a fixed number of queries whatever the number of patients (bulk reads with
Exists/Subquery, bulk updates); NEW alerts are opened in bulk (notifications.alerts.alerts_open_many: the
rows, their history and the staff notifications, one statement per 1,000 rows), and only existing alerts
that escalate or reopen go through `alert_raise` one by one, so the query count grows with neither the
patients nor the new alerts. Idempotent: the same `at` twice changes nothing the second time.

Every part is per patient: each reads and closes only the alerts and rows of the running shard's patients
(tracker.sweeps.in_shard; everything when unsharded), so the shards of one run can go to several workers.

The response rules A-* (monitoring/rules/) depend only on the results, not on the clock: they run when a
result arrives (monitoring/evaluation.py). A window that closes without its result is the "overdue test" of
RULES §3.3, raised here as lab_recheck_overdue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Subquery
from django.db.models.functions import Coalesce, Least

from monitoring.evaluation import has_result_from, recheck_answered
from monitoring.inputs import rule_settings
from monitoring.rules.patterns import (
    neuro_treatment_overdue,
    neuro_treatment_overdue_finding,
    neuro_treatment_start,
)
from monitoring.selectors import first_b12_at, neuro_flag_set_at
from notifications.alerts import NewAlert, alert_close, alert_raise, alerts_open_many, evidence_refs
from notifications.models import SEVERITY_RANK, Alert, AlertStatus, Severity
from patients.models import FactKind, LabResult, Patient, PatientFact
from regimens.models import (
    DecisionKind,
    DoseStatus,
    LabRecheck,
    RecheckStatus,
    Regimen,
    RegimenDecision,
    RegimenStatus,
    ScheduledDose,
)
from regimens.schedule import is_neuro_loading
from tracker.clock import local_date
from tracker.sweeps import in_shard, register

MAINTENANCE_END_CONDITIONS = ("lifelong", "until_cause_resolved")


def _cobalt(key: str) -> Any:
    return settings.COBALT[key]


@dataclass(frozen=True)
class Wanted:
    severity: str
    message: str
    action_text: str
    evidence: dict[str, Any]
    rule_id: str


def apply_alerts(
    kind: str,
    wanted: dict[int, Wanted],
    at: datetime,
    *,
    resolution: str,
    resolve_rule_ids: Iterable[str] | None = None,
) -> dict[str, int]:
    """Make the open alerts of `kind` match `wanted` (patient id -> alert): through alert_raise, raise the new
    ones, escalate the ones whose severity rose, reopen acknowledged ones that new evidence reached (V-3: a
    further overdue dose or recheck; the same one a day later is not new) and clear "target met" where the
    problem is back (V-2); close the ones no longer wanted (one UPDATE; a CRITICAL one only records "target
    met" until a person acknowledges it, V-2). `resolve_rule_ids` limits closing to alerts raised by those
    rules (S-6 has two). Only the alerts of the running shard's patients (`wanted` comes from the same shard)."""
    existing = {
        pid: (severity, rule_id, status, evidence, target_met_at)
        for pid, severity, rule_id, status, evidence, target_met_at in in_shard(
            Alert.objects.filter(kind=kind), "patient_id"
        )
        .exclude(status=AlertStatus.RESOLVED)
        .values_list("patient_id", "severity", "rule_id", "status", "evidence", "target_met_at")
    }

    def needs_raise(pid: int, w: Wanted) -> bool:
        if pid not in existing:
            return True
        severity, _rule_id, status, evidence, target_met_at = existing[pid]
        return (
            SEVERITY_RANK[w.severity] > SEVERITY_RANK[severity]
            or target_met_at is not None
            or (status == AlertStatus.ACKNOWLEDGED and bool(evidence_refs(w.evidence) - evidence_refs(evidence)))
        )

    to_raise = [pid for pid, w in wanted.items() if needs_raise(pid, w)]
    # New alerts are opened in bulk (a first run after a go-live or an outage opens thousands); only the
    # existing ones that escalate, reopen or lose "target met" go through alert_raise one by one.
    fresh = [pid for pid in to_raise if pid not in existing]
    opened = alerts_open_many(
        [
            NewAlert(
                patient_id=pid,
                kind=kind,
                severity=wanted[pid].severity,
                message=wanted[pid].message,
                action_text=wanted[pid].action_text,
                evidence=wanted[pid].evidence,
                rule_id=wanted[pid].rule_id,
            )
            for pid in fresh
        ],
        at=at,
    )
    raised = len(opened)
    escalated = 0
    again = [pid for pid in to_raise if pid in existing]
    if again:
        patients = Patient.objects.in_bulk(again)
        for pid in again:
            w = wanted[pid]
            _alert, created = alert_raise(
                patient=patients[pid],
                kind=kind,
                severity=w.severity,
                message=w.message,
                action_text=w.action_text,
                evidence=w.evidence,
                rule_id=w.rule_id,
                at=at,
            )
            raised += int(created)
            escalated += int(not created)
    stale = [
        pid
        for pid, (_severity, rule_id, *_rest) in existing.items()
        if pid not in wanted and (resolve_rule_ids is None or rule_id in set(resolve_rule_ids))
    ]
    resolved = 0
    if stale:
        closing = Alert.objects.filter(kind=kind, patient_id__in=stale).exclude(status=AlertStatus.RESOLVED)
        resolved = closing.exclude(severity=Severity.CRITICAL).update(
            status=AlertStatus.RESOLVED, resolved_at=at, resolution=resolution[:200]
        )
        for alert in closing.filter(severity=Severity.CRITICAL).select_related("acknowledged_by"):
            done = alert_close(alert=alert, resolution=resolution, at=at, target_met_evidence={"reason": resolution})
            resolved += int(done == "resolved")
    return {f"{kind}_raised": raised, f"{kind}_escalated": escalated, f"{kind}_resolved": resolved}


def _latest_local_today(at: datetime) -> date:
    """The latest local date anywhere on earth at `at` (UTC+14): an upper bound for SQL pre-filters."""
    return (at + timedelta(hours=14)).date()


# --- S-4 dose_overdue ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhaseKinds:
    maintenance: frozenset[int]
    neuro_loading: frozenset[int]


def _phase_kinds(regimen_ids: Iterable[int]) -> dict[int, PhaseKinds]:
    """Regimen id -> indexes of its maintenance phases (lifelong / until the cause is resolved) and of its
    neurological loading phase (R-UK-2), from the regimen's protocol snapshot (one query)."""
    out: dict[int, PhaseKinds] = {}
    for rid, snapshot in Regimen.objects.filter(id__in=list(regimen_ids)).values_list("id", "protocol_snapshot"):
        phases = (snapshot or {}).get("phases", [])
        out[rid] = PhaseKinds(
            maintenance=frozenset(
                i for i, p in enumerate(phases) if p.get("end_condition") in MAINTENANCE_END_CONDITIONS
            ),
            neuro_loading=frozenset(
                i
                for i, p in enumerate(phases)
                if is_neuro_loading(
                    end_condition=str(p.get("end_condition") or ""),
                    review_every_days=p.get("review_every_days"),
                    self_administered=bool(p.get("self_administered")),
                )
            ),
        )
    return out


def dose_overdue(at: datetime) -> dict[str, int]:
    """RULES S-4 [P]: a maintenance dose not recorded by its due date: overdue > 14 days MEDIUM, > 28 HIGH;
    with neurological history > 7 MEDIUM, > 14 HIGH. §10 V-5 [P]: a loading dose of the neurological loading
    phase (R-UK-2), or of a patient with neurological history, overdue > 2 days -> HIGH. Neurological history =
    the patient's flag or a neurological-symptom fact. Days overdue = the patient's local date - the slot's
    original due date (V-11: its earliest dose not given, else the planned dose's own due date).
    One alert per patient, for the worst dose (severity, then days). Resolves once no such dose is left
    (given, not given or cancelled)."""
    medium, high = int(_cobalt("OVERDUE_MEDIUM_AFTER_DAYS")), int(_cobalt("OVERDUE_HIGH_AFTER_DAYS"))
    n_medium, n_high = int(_cobalt("OVERDUE_NEURO_MEDIUM_AFTER_DAYS")), int(_cobalt("OVERDUE_NEURO_HIGH_AFTER_DAYS"))
    loading_high = int(_cobalt("OVERDUE_NEURO_LOADING_HIGH_AFTER_DAYS"))
    bound = _latest_local_today(at) - timedelta(days=min(medium, n_medium, loading_high))
    neuro_fact = PatientFact.objects.filter(
        patient_id=OuterRef("patient_id"), kind=FactKind.NEURO_SYMPTOMS, absent=False
    )
    # RULES §10 V-11: S-4 counts from the slot's original due date (its earliest dose not given), not from
    # the date of the replacement planned after it.
    first_missed = (
        ScheduledDose.objects.filter(
            regimen_id=OuterRef("regimen_id"),
            phase_index=OuterRef("phase_index"),
            sequence=OuterRef("sequence"),
            status=DoseStatus.NOT_GIVEN,
        )
        .order_by("due_date")
        .values("due_date")[:1]
    )
    rows = list(
        in_shard(
            ScheduledDose.objects.filter(
                status=DoseStatus.PLANNED,
                self_administered=False,
                regimen__status=RegimenStatus.ACTIVE,
            ),
            "patient_id",
        )
        .annotate(original_due=Least("due_date", Coalesce(Subquery(first_missed), "due_date")))
        .filter(original_due__lt=bound)
        .annotate(neuro_fact=Exists(neuro_fact))
        .values(
            "id",
            "patient_id",
            "regimen_id",
            "phase_index",
            "phase",
            "original_due",
            "patient__timezone",
            "patient__neurological_involvement",
            "neuro_fact",
        )
    )
    kinds = _phase_kinds({r["regimen_id"] for r in rows})
    wanted: dict[int, Wanted] = {}
    worst: dict[int, tuple[int, int]] = {}
    for r in rows:
        found = kinds.get(r["regimen_id"])
        maintenance = r["phase_index"] in found.maintenance if found else r["phase"] == "maintenance"
        neuro_phase = found is not None and r["phase_index"] in found.neuro_loading
        due = r["original_due"]
        days = (local_date(at, r["patient__timezone"]) - due).days
        neuro = bool(r["patient__neurological_involvement"] or r["neuro_fact"])
        if maintenance:
            lo, hi = (n_medium, n_high) if neuro else (medium, high)
            if days <= lo:
                continue
            severity = "high" if days > hi else "medium"
            message = (
                f"Maintenance dose due {due.isoformat()} not recorded: {days} days overdue "
                f"(S-4: more than {lo} days MEDIUM, more than {hi} HIGH{', neurological history' if neuro else ''})."
            )
        elif neuro or neuro_phase:
            if days <= loading_high:
                continue
            severity = "high"
            why = "neurological loading phase" if neuro_phase else "neurological history"
            message = (
                f"Loading dose due {due.isoformat()} not recorded: {days} days overdue "
                f"(S-4, §10 V-5: a loading dose more than {loading_high} days overdue is HIGH, {why})."
            )
        else:
            continue  # other loading doses: RULES S-4 covers maintenance only
        rank = (SEVERITY_RANK[severity], days)
        if rank <= worst.get(r["patient_id"], (-1, -1)):
            continue
        worst[r["patient_id"]] = rank
        wanted[r["patient_id"]] = Wanted(
            severity=severity,
            message=message,
            action_text="Contact the patient and book the dose; record it as given or not given.",
            evidence={
                "dose_id": r["id"],
                "due_date": due.isoformat(),
                "days_overdue": days,
                "neuro": neuro,
                "phase": r["phase"],
                "loading": not maintenance,
            },
            rule_id="S-4",
        )
    with transaction.atomic():
        return apply_alerts("dose_overdue", wanted, at, resolution="dose recorded or cancelled")


# --- §3.3 lab_recheck_overdue ----------------------------------------------------------------------------


def recheck_overdue(at: datetime) -> dict[str, int]:
    """RULES §3.3: "If a scheduled test is missing, raise 'overdue test' (MEDIUM)". A due recheck whose window
    ended (the patient's local date is after window_end) becomes overdue, unless results already answer it
    (every analyte on or after its window start: then it is done, catching up a missed evaluation)."""
    bound = _latest_local_today(at)
    candidates: list[dict[str, Any]] = [
        dict(c)
        for c in in_shard(LabRecheck.objects.filter(regimen__status=RegimenStatus.ACTIVE), "patient_id")
        .filter(status__in=[RecheckStatus.DUE, RecheckStatus.OVERDUE])
        .filter(window_end__lt=bound)
        .values(
            "id", "patient_id", "status", "rule", "key", "window_start", "window_end", "analytes", "patient__timezone"
        )
    ]
    overdue = [c for c in candidates if c["window_end"] < local_date(at, c["patient__timezone"])]
    analytes = {a for c in overdue for a in c["analytes"]}
    earliest = min((c["window_start"] for c in overdue), default=None)
    seen: dict[tuple[int, str], list[date]] = {}
    if overdue and analytes and earliest is not None:
        for pid, analyte, collected_at, tz in LabResult.objects.filter(
            patient_id__in={c["patient_id"] for c in overdue},
            analyte__in=analytes,
            collected_at__gte=datetime.combine(earliest - timedelta(days=1), datetime.min.time(), tzinfo=UTC),
            collected_at__lte=at,
            error_recorded_at__isnull=True,  # RULES §10 V-14: a result entered in error answers nothing
        ).values_list("patient_id", "analyte", "collected_at", "patient__timezone"):
            seen.setdefault((pid, analyte), []).append(local_date(collected_at, tz))
    done: list[dict[str, Any]] = []
    late: list[dict[str, Any]] = []
    for c in overdue:
        days = {a: seen.get((c["patient_id"], a), []) for a in c["analytes"]}
        answered = recheck_answered(c["rule"], c["analytes"], has_result_from(days, c["window_start"]))
        (done if answered else late).append(c)
    wanted: dict[int, Wanted] = {}
    for c in late:
        pid = c["patient_id"]
        items = wanted[pid].evidence["rechecks"] if pid in wanted else []
        items.append(
            {"id": c["id"], "rule": c["rule"], "window_end": c["window_end"].isoformat(), "analytes": c["analytes"]}
        )
        names = ", ".join(
            f"{i['rule']} ({', '.join(i['analytes']) or 'review'}) window ended {i['window_end']}" for i in items
        )
        wanted[pid] = Wanted(
            severity="medium",
            message=f"Lab recheck overdue: {names} (§3.3).",
            action_text="Arrange the blood test, or cancel the recheck with a reason.",
            evidence={"rechecks": items},
            rule_id="§3.3",
        )
    with transaction.atomic():
        n_done = (
            LabRecheck.objects.filter(id__in=[c["id"] for c in done]).update(status=RecheckStatus.DONE, completed_at=at)
            if done
            else 0
        )
        newly = [c["id"] for c in late if c["status"] == RecheckStatus.DUE]
        n_late = LabRecheck.objects.filter(id__in=newly).update(status=RecheckStatus.OVERDUE) if newly else 0
        # Patients whose overdue rechecks were answered, cancelled or whose regimen ended: resolve.
        counts = apply_alerts("lab_recheck_overdue", wanted, at, resolution="recheck done or cancelled")
    return {"rechecks_done": n_done, "rechecks_overdue": n_late, **counts}


# --- §1.3 neuro_review_due -------------------------------------------------------------------------------


def neuro_review_due(at: datetime) -> dict[str, int]:
    """RULES §1.3 [P] for an open clinician-ended phase with review prompts (R-UK-2 neuro loading):
    INFO when a review is due (the phase's own "review every" days, 14 in the built-in protocol, since the phase's
    first dose or the last review: the interval the regimen's plan prompts with, so a clinic's copy of the protocol
    set to 7 days alerts on day 7), MEDIUM when none for NEURO_REVIEW_MEDIUM_AFTER_DAYS, HIGH once the phase is open
    NEURO_REVIEW_HIGH_AT_DAYS (6 and 12 weeks) without a specialist note (a review with a note, recorded in the
    interval before)."""
    medium = int(_cobalt("NEURO_REVIEW_MEDIUM_AFTER_DAYS"))
    milestones = sorted(int(m) for m in _cobalt("NEURO_REVIEW_HIGH_AT_DAYS"))
    in_phase = {"regimen": OuterRef("pk"), "phase_index": OuterRef("current_phase")}
    reviews = RegimenDecision.objects.filter(**in_phase, kind=DecisionKind.REVIEW).order_by("-decided_on")
    rows = (
        in_shard(
            Regimen.objects.filter(status=RegimenStatus.ACTIVE, protocol__phases__review_every_days__isnull=False),
            "patient_id",
        )
        .distinct()
        .annotate(
            phase_start=Subquery(
                ScheduledDose.objects.filter(**in_phase, status=DoseStatus.GIVEN)
                .order_by("administered_at")
                .values("administered_at")[:1]
            ),
            last_review=Subquery(reviews.values("decided_on")[:1]),
            last_note=Subquery(reviews.exclude(note="").values("decided_on")[:1]),
        )
        .values(
            "id",
            "patient_id",
            "current_phase",
            "protocol_snapshot",
            "patient__timezone",
            "phase_start",
            "last_review",
            "last_note",
        )
    )
    wanted: dict[int, Wanted] = {}
    for r in rows:
        phases = (r["protocol_snapshot"] or {}).get("phases", [])
        if r["current_phase"] >= len(phases) or r["phase_start"] is None:
            continue
        phase = phases[r["current_phase"]]
        if phase.get("end_condition") != "clinician_ended" or not phase.get("review_every_days"):
            continue
        every = int(phase["review_every_days"])
        today = local_date(at, r["patient__timezone"])
        start = local_date(r["phase_start"], r["patient__timezone"])
        days_open = (today - start).days
        since = (today - (r["last_review"] or start)).days
        passed = [m for m in milestones if days_open >= m]
        evidence = {
            "regimen_id": r["id"],
            "phase_start": start.isoformat(),
            "days_open": days_open,
            "last_review": r["last_review"].isoformat() if r["last_review"] else None,
        }
        if passed and (r["last_note"] is None or r["last_note"] < start + timedelta(days=passed[-1] - every)):
            wanted[r["patient_id"]] = Wanted(
                "high",
                f"Long neuro loading phase ({days_open} days): confirm the plan with a specialist (§1.3).",
                "Record a review with the specialist's plan as its note.",
                evidence,
                "§1.3",
            )
        elif since >= medium:
            wanted[r["patient_id"]] = Wanted(
                "medium",
                f"No review of the neuro loading phase for {since} days (§1.3).",
                "Review the patient: still improving, plateau reached, worsening or specialist review pending.",
                evidence,
                "§1.3",
            )
        elif since >= every:
            wanted[r["patient_id"]] = Wanted(
                "info",
                f"Review of the neuro loading phase due ({since} days since the last one) (§1.3).",
                "Review the patient: still improving, plateau reached, worsening or specialist review pending.",
                evidence,
                "§1.3",
            )
    with transaction.atomic():
        return apply_alerts("neuro_review_due", wanted, at, resolution="review recorded or phase ended")


# --- S-6(a) neuro_treatment_delay --------------------------------------------------------------------------


def neuro_treatment_delay(at: datetime) -> dict[str, int]:
    """RULES S-6(a) [P]: neurological symptoms recorded, or the patient's neurological-involvement flag set
    (§10 V-5), and no B12 dose within 24 h of the first of the two -> HIGH. Only S-6(a) alerts are resolved
    here (the S-6(b) INFO note belongs to the evaluation). A fixed number of queries: the facts, the flagged
    patients and their history, the first B12 of each candidate."""
    hours = rule_settings().neuro_treatment_delay_hours
    cutoff = at - timedelta(hours=hours)
    facts: dict[int, tuple[datetime, int]] = {}
    for pid, recorded, fact_id in (
        in_shard(
            PatientFact.objects.filter(kind=FactKind.NEURO_SYMPTOMS, absent=False, recorded_at__lte=cutoff),
            "patient_id",
        )
        .order_by("patient_id", "recorded_at", "id")
        .values_list("patient_id", "recorded_at", "id")
    ):
        facts.setdefault(pid, (recorded, fact_id))
    flagged = neuro_flag_set_at(None)
    candidates: dict[int, datetime] = {}
    for pid in {*facts, *flagged}:
        start = neuro_treatment_start(facts[pid][0] if pid in facts else None, flagged.get(pid))
        if start is not None and start <= cutoff:
            candidates[pid] = start
    first = first_b12_at(candidates)
    wanted: dict[int, Wanted] = {}
    for pid, start in candidates.items():
        if neuro_treatment_overdue(start, first.get(pid), at, hours):
            finding = neuro_treatment_overdue_finding(
                fact_id=facts[pid][1] if pid in facts else None,
                recorded_at=start,
                hours=hours,
                flag_since=flagged.get(pid),
            )
            wanted[pid] = Wanted(
                finding.severity, finding.message, finding.action_text, finding.evidence, finding.rule_id
            )
    with transaction.atomic():
        return apply_alerts("neuro_treatment_delay", wanted, at, resolution="B12 given", resolve_rule_ids=("S-6(a)",))


# --- §10 V-9 gate_pending -----------------------------------------------------------------------------------


def gate_pending(at: datetime) -> dict[str, int]:
    """RULES §10 V-9 [P] (R-US-1 gate): a regimen waiting at a gate (Regimen.awaiting_gate: the phase before it
    has nothing left to give) more than GATE_PENDING_AFTER_DAYS after the last dose given in that phase -> HIGH.
    Days = the patient's local date - the local date of that dose. Resolves once the regimen no longer waits
    (gate confirmed, or the regimen stopped)."""
    after = int(_cobalt("GATE_PENDING_AFTER_DAYS"))
    # When waiting, current_phase is the gated phase (regimens/schedule.py plan); the one before it just ended.
    last_before = (
        ScheduledDose.objects.filter(
            regimen_id=OuterRef("pk"), phase_index=OuterRef("current_phase") - 1, status=DoseStatus.GIVEN
        )
        .exclude(administered_at=None)
        .order_by("-administered_at")
    )
    rows = (
        in_shard(Regimen.objects.filter(status=RegimenStatus.ACTIVE, awaiting_gate=True), "patient_id")
        .annotate(
            last_dose_at=Subquery(last_before.values("administered_at")[:1]),
            last_dose_id=Subquery(last_before.values("id")[:1]),
        )
        .values(
            "id",
            "patient_id",
            "current_phase",
            "protocol_snapshot",
            "patient__timezone",
            "last_dose_at",
            "last_dose_id",
        )
    )
    wanted: dict[int, Wanted] = {}
    for r in rows:
        if r["last_dose_at"] is None:
            continue  # nothing given before the gate (cannot happen while waiting): no count to start from
        tz = r["patient__timezone"]
        last = local_date(r["last_dose_at"], tz)
        days = (local_date(at, tz) - last).days
        if days <= after:
            continue
        phases = (r["protocol_snapshot"] or {}).get("phases", [])
        gated = phases[r["current_phase"]] if r["current_phase"] < len(phases) else {}
        condition = str(gated.get("start_gate") or "the gate condition")
        name = str(gated.get("name") or gated.get("key") or "the next phase")
        wanted[r["patient_id"]] = Wanted(
            "high",
            (
                f"Waiting {days} days at the gate before {name} (last dose {last.isoformat()}): confirm "
                f"\"{condition}\" or change the plan (§10 V-9, R-US-1)."
            ),
            "Check the reticulocyte response and clinical improvement; confirm the gate, or stop or change the "
            "regimen.",
            {
                "regimen_id": r["id"],
                "phase_index": r["current_phase"],
                "last_dose_id": r["last_dose_id"],
                "last_dose_on": last.isoformat(),
                "days_waiting": days,
            },
            "§10 V-9",
        )
    with transaction.atomic():
        return apply_alerts("gate_pending", wanted, at, resolution="gate confirmed or regimen stopped")


@register("monitoring")
def monitoring(at: datetime) -> dict[str, int]:
    """Every time-based monitoring rule as of `at` (idempotent)."""
    counts: dict[str, int] = {}
    for part in (dose_overdue, recheck_overdue, neuro_review_due, neuro_treatment_delay, gate_pending):
        counts.update(part(at))
    return counts
