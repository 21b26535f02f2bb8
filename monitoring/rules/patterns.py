"""The safety patterns read together with the results (RULES §4, docs/clinical-reference.md) as pure
functions of one patient's loaded results and facts: no database, no clock.

- `pseudo_tma_pattern` (S-3): anaemia, low platelets and haemolysis within 7 days [P], pre-treatment B12 low
  or pending; `tma_pattern_b12_not_low` (§10 V-7): the same pattern with a B12 that is not low.
- `potassium_check_due` (S-9): severe anaemia at the first dose needs a potassium check.
- `neuro_treatment_delay` (S-6): neurological symptoms and no B12 in time; onset long before T0.
- `sample_taken_after_treatment` (S-13): a B12/folate test drawn after the first dose.

monitoring/evaluation.py loads the `Inputs` and turns the findings into alerts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from monitoring.rules.base import (
    DEFAULT_SETTINGS,
    HEMOLYSIS_MARKERS,
    B12Verdict,
    Finding,
    PatientContext,
    Result,
    RuleSettings,
    StoredResult,
    above_uln,
    baseline,
    below_lln,
    dec,
    fmt,
    hemolysis_abnormal,
    limits_of,
)
from patients.selectors import fact_present

# RULES S-3 banner text (verbatim, docs/clinical-reference.md).
S3_BANNER = (
    "Possible B12-deficiency pseudo-TMA. Confirm B12 before or alongside plasma therapy. ADAMTS13 activity "
    "distinguishes it from TTP (TTP usually < 10%)."
)
S3_ADAMTS13_TEXT = "TTP unlikely; plasma exchange may be avoidable: clinician decision"
S3_ACTION_TEXT = (
    "Decision support only: never delays or blocks plasma exchange. Draw ADAMTS13 activity before any plasma "
    "therapy; confirm B12; blood film for schistocytes."
)
# RULES §10 V-7: the TMA pattern with a B12 that is not low (verbatim).
S3_B12_NOT_LOW_TEXT = "TMA pattern without low B12: exclude TTP urgently; ADAMTS13"
S3_B12_NOT_LOW_ACTION = (
    "Decision support only: never delays or blocks plasma exchange. Urgent haematology advice; draw ADAMTS13 "
    "activity before any plasma therapy; blood film for schistocytes."
)
# RULES S-3 [V, Mayo]: ADAMTS13 < 10 % is highly indicative of TTP.
S3_ADAMTS13_TTP_BELOW = Decimal(10)
# RULES S-3: "platelets < 150 x10^9/L" (not [P]). A count below the reporting lab's own LLN counts too.
S3_PLATELETS_BELOW = Decimal(150)
# RULES S-6(b) [V, FDA-CN]: deficiency for longer than 3 months may leave permanent lesions (90 days).
S6B_ONSET_DAYS_BEFORE_T0 = 90
B12_TESTS = ("b12_total", "b12_active", "mma", "homocysteine", "folate")  # RULES S-13 "B12/folate test"


@dataclass
class Inputs:
    """What the patterns read: one patient's results and facts as of `at`, loaded by monitoring/evaluation.py."""

    patient: Any
    at: datetime
    today: date
    t0: date | None
    stored: list[StoredResult]
    facts: Sequence[Any]
    ctx: PatientContext
    settings: RuleSettings = DEFAULT_SETTINGS
    # S-3 (§10 V-7): the pre-treatment B12 status, computed by monitoring.selectors.pre_treatment_b12 (the
    # same answer as the trends and /b12-status/); "unknown" until the loader fills it.
    b12: B12Verdict = field(default_factory=B12Verdict)
    # Qualitative rows (schistocytes present/absent): `analyte`, `presence`, `collected_at`.
    qualitative: list[Any] = field(default_factory=list)
    # When the patient's "neurological involvement" flag was last switched on (None: off). §10 V-5: S-6(a).
    neuro_flag_since: datetime | None = None
    # The current regimen (RULES §10 V-1, regimens.selectors.current_regimen) the loader read, or None.
    regimen: Any = None
    # Every row of the patient not entered in error, also those collected after `at` (the rules read `stored`
    # and `qualitative`, which stop at `at`): what the recheck plan reads (monitoring.inputs.lab_context_read).
    all_rows: list[Any] = field(default_factory=list)
    # The ids of the patient's results entered in error (RULES §10 V-14), which no rule reads.
    errored_ids: frozenset[int] = frozenset()

    @property
    def results(self) -> tuple[Result, ...]:
        return tuple(s.result for s in self.stored)

    def ids(self, analyte: str, on: str | date | None = None) -> list[int]:
        day = date.fromisoformat(on) if isinstance(on, str) else on
        return [
            s.id for s in self.stored if s.result.analyte == analyte and (day is None or s.result.collected_on == day)
        ]

    def latest(self, analyte: str) -> StoredResult | None:
        series = [s for s in self.stored if s.result.analyte == analyte]
        return series[-1] if series else None

    def lln(self, result: Result) -> bool:
        return below_lln(result, self.ctx) is True

    def uln(self, result: Result) -> bool:
        return above_uln(result, self.ctx) is True


def _result_evidence(s: StoredResult) -> dict[str, Any]:
    return {
        "id": s.id,
        "analyte": s.result.analyte,
        "value": fmt(s.result.value),
        "collected_on": s.result.collected_on.isoformat(),
    }


# --- safety rules evaluated with the results (RULES §4) ----------------------------------------------


@dataclass(frozen=True)
class TmaPattern:
    """The S-3 laboratory pattern found: the results it rests on and the supporting clues."""

    used: list[StoredResult]
    clues: list[str]
    adamts13: StoredResult | None


def tma_pattern(inp: Inputs) -> TmaPattern | None:
    """S-3's laboratory pattern, whatever the B12: the latest Hb < LLN and the latest platelets < 150 x10^9/L
    (RULES' number; or below the reporting lab's own LLN, which may be higher) and at least one haemolysis marker
    abnormal (the latest of each), all collected within
    `s3_inputs_within_days` [P] of each other (§10 V-7): a marker drawn further away does not count.
    Schistocytes are a supporting clue only (never their absence, §8 Q10)."""
    hb, plt = inp.latest("hemoglobin"), inp.latest("platelets")
    if hb is None or plt is None or not inp.lln(hb.result):
        return None
    if not (dec(plt.result.value) < S3_PLATELETS_BELOW or inp.lln(plt.result)):
        return None
    within = inp.settings.s3_inputs_within_days

    def together(*items: StoredResult) -> bool:
        days = [s.result.collected_on for s in items]
        return (max(days) - min(days)).days <= within

    if not together(hb, plt):
        return None
    markers = [m for m in (inp.latest(a) for a in HEMOLYSIS_MARKERS) if m is not None and together(hb, plt, m)]
    abnormal = hemolysis_abnormal([m.result for m in markers], inp.ctx)
    if not abnormal:
        return None
    clues = [
        f"haptoglobin {fmt(r.value, r.analyte)} g/L below the lower limit"
        if r.analyte == "haptoglobin"
        else f"indirect bilirubin {fmt(r.value, r.analyte)} umol/L above the upper limit"
        for r in abnormal
        if r.analyte != "ldh"
    ]
    ldh = inp.latest("ldh")
    if ldh is not None:
        high = limits_of(ldh.result, inp.ctx)[1]
        if high:
            multiple = Decimal(str(ldh.result.value)) / high
            clues.append(f"LDH {fmt(ldh.result.value, 'ldh')} U/L ({multiple:.1f} x ULN)")
    retic = inp.latest("reticulocytes_pct") or inp.latest("reticulocytes_abs")
    if retic is not None and inp.lln(retic.result):
        clues.append(f"reticulocytes low ({fmt(retic.result.value, retic.result.analyte)})")
    mcv = inp.latest("mcv")
    if mcv is not None and inp.uln(mcv.result):
        clues.append(f"MCV high ({fmt(mcv.result.value, 'mcv')} fL)")
    schisto = next((r for r in inp.qualitative if r.analyte == "schistocytes"), None)
    if schisto is not None and schisto.presence == "present":
        clues.append("schistocytes present on the film")
    adamts13 = inp.latest("adamts13_activity")
    used = [hb, plt, *markers, *(x for x in (adamts13, retic, mcv) if x is not None)]
    return TmaPattern(used=used, clues=clues, adamts13=adamts13)


def _b12_evidence(inp: Inputs) -> list[dict[str, Any]]:
    return [_result_evidence(s) for s in inp.stored if s.id in inp.b12.result_ids]


def pseudo_tma_pattern(inp: Inputs) -> Finding | None:
    """S-3 (CRITICAL): the TMA pattern (`tma_pattern`) with the pre-treatment B12 low or pending (§10 V-7:
    `inp.b12`, the latest total/active B12 before T0 at the reporting lab's cut-offs; "indeterminate" counts
    as low, no B12 as pending)."""
    pattern = tma_pattern(inp)
    if pattern is None or not inp.b12.low_or_pending:
        return None
    b12 = "pending" if inp.b12.status == "unknown" else inp.b12.status
    clues = pattern.clues
    message = f"{S3_BANNER} B12: {b12}. Supporting clues: {'; '.join(clues) or 'none'}."
    adamts13 = pattern.adamts13
    if adamts13 is not None and b12 == "deficient":
        low = limits_of(adamts13.result, inp.ctx)[0]
        value = Decimal(str(adamts13.result.value))
        if value >= S3_ADAMTS13_TTP_BELOW or (low is not None and value >= low):
            message += f" ADAMTS13 {fmt(value, 'adamts13_activity')}%: {S3_ADAMTS13_TEXT}."
    return Finding(
        kind="pseudo_tma_pattern",
        rule_id="S-3",
        severity="critical",
        message=message,
        action_text=S3_ACTION_TEXT,
        evidence={
            "b12": b12,
            "b12_cutoffs": inp.b12.cutoffs,
            "results": [_result_evidence(s) for s in pattern.used] + _b12_evidence(inp),
            "clues": clues,
        },
    )


def tma_pattern_b12_not_low(inp: Inputs) -> Finding | None:
    """§10 V-7 (CRITICAL): the same TMA pattern with a pre-treatment B12 that is not low ("deficiency
    unlikely" at the reporting lab's cut-offs): exclude TTP urgently."""
    pattern = tma_pattern(inp)
    if pattern is None or inp.b12.low_or_pending:
        return None
    message = (
        f"{S3_B12_NOT_LOW_TEXT}. Pre-treatment B12: deficiency unlikely ({inp.b12.cutoffs} cut-offs). "
        f"Supporting clues: {'; '.join(pattern.clues) or 'none'}."
    )
    return Finding(
        kind="tma_pattern_b12_not_low",
        rule_id="S-3",
        severity="critical",
        message=message,
        action_text=S3_B12_NOT_LOW_ACTION,
        evidence={
            "b12": inp.b12.status,
            "b12_cutoffs": inp.b12.cutoffs,
            "results": [_result_evidence(s) for s in pattern.used] + _b12_evidence(inp),
            "clues": pattern.clues,
        },
    )


def potassium_check_due(inp: Inputs) -> tuple[Finding | None, bool]:
    """S-9 (MEDIUM task): Hb < 80 g/L [P] at T0 (baseline) or the severe-megaloblastic flag -> potassium within
    48 h (L-1). Returns (finding, met): `met` once a potassium result on or after T0 exists."""
    if inp.t0 is None or inp.ctx.enrolled:  # V-1: an enrolment at maintenance is not a start of treatment
        return None, False
    t0 = inp.t0
    met = any(s.result.analyte == "potassium" and s.result.collected_on >= t0 for s in inp.stored)
    base = baseline(inp.results, "hemoglobin", t0)
    below = inp.settings.potassium_check_hb_below  # RULES S-9 / L-1 [P]
    flag = fact_present(inp.facts, "severe_megaloblastic")
    if not ((base is not None and Decimal(str(base.value)) < below) or flag is not None):
        return None, met
    evidence: dict[str, Any] = {"t0": t0.isoformat()}
    if base is not None:
        evidence["baseline_hemoglobin"] = str(base.value)  # exact, for machines
        evidence["result_ids"] = inp.ids("hemoglobin", base.collected_on)
    if flag is not None:
        evidence["fact_ids"] = [flag.pk]
    reason = (
        f"baseline Hb {fmt(base.value, 'hemoglobin')} g/L < {fmt(below)}"
        if base is not None and Decimal(str(base.value)) < below
        else ("severe megaloblastic anaemia recorded")
    )
    finding = Finding(
        kind="potassium_check_due",
        rule_id="S-9",
        severity="medium",
        message=f"Serum potassium due within 48 hours of the first dose ({reason}); hypokalaemia risk (S-9, L-1).",
        action_text="Draw serum potassium within 48 h of the first dose and replace if low.",
        evidence=evidence,
    )
    return finding, met


def neuro_treatment_overdue(recorded_at: datetime, first_b12: datetime | None, at: datetime, hours: int) -> bool:
    """S-6(a) [P]: symptoms recorded, and no B12 given by recorded_at + N hours, judged once that time passed."""
    deadline = recorded_at + timedelta(hours=hours)
    return at >= deadline and (first_b12 is None or first_b12 > deadline)


def neuro_treatment_overdue_finding(
    *, fact_id: int | None, recorded_at: datetime, hours: int, flag_since: datetime | None = None
) -> Finding:
    """S-6(a) (HIGH), as the evaluation and the monitoring sweep both raise it. `recorded_at` is when the clock
    started: the earlier of the symptom fact's recording and the neurological-involvement flag (§10 V-5)."""
    what = "Neurological symptoms recorded" if fact_id is not None else "Neurological involvement recorded"
    evidence: dict[str, Any] = {
        "fact_ids": [fact_id] if fact_id is not None else [],
        "recorded_at": recorded_at.isoformat(),
    }
    if flag_since is not None:
        evidence["neurological_involvement_since"] = flag_since.isoformat()
    return Finding(
        kind="neuro_treatment_delay",
        rule_id="S-6(a)",
        severity="high",
        message=f"{what} and no B12 dose within {hours} hours (S-6): do not delay treatment.",
        action_text="Give B12 now; seek urgent specialist advice (haematology ± neurology).",
        evidence=evidence,
    )


def neuro_treatment_start(fact_recorded_at: datetime | None, flag_since: datetime | None) -> datetime | None:
    """§10 V-5: S-6(a) counts from the first sign of neurological involvement in Cobalt: a symptom fact recorded
    or the patient's flag switched on, whichever came first."""
    known = [t for t in (fact_recorded_at, flag_since) if t is not None]
    return min(known) if known else None


def neuro_treatment_delay(inp: Inputs, first_b12_at: Callable[[], datetime | None]) -> Finding | None:
    """S-6: (a) HIGH when no B12 was given within the delay after symptoms were recorded or the neurological-
    involvement flag set (§10 V-5); (b) an INFO note when the symptoms began more than 3 months before the
    first dose. `first_b12_at` (queries) is asked only when neurological involvement is known."""
    fact = fact_present(inp.facts, "neuro_symptoms")
    start = neuro_treatment_start(fact.recorded_at if fact is not None else None, inp.neuro_flag_since)
    if start is None:
        return None
    first_b12 = first_b12_at()
    hours = inp.settings.neuro_treatment_delay_hours
    if neuro_treatment_overdue(start, first_b12, inp.at, hours):
        return neuro_treatment_overdue_finding(
            fact_id=fact.pk if fact is not None else None,
            recorded_at=start,
            hours=hours,
            flag_since=inp.neuro_flag_since,
        )
    if fact is None:
        return None
    # S-6(b) is about the delay before the patient's FIRST B12 ever, not the current regimen's T0 (RULES §10
    # V-1 moves T0 on a restart or a switch; the delay to first treatment does not move).
    treated_on = inp.t0 if first_b12 is None else first_b12.astimezone(ZoneInfo(inp.patient.timezone)).date()
    if treated_on is not None and fact.onset_date is not None:
        if (treated_on - fact.onset_date).days > S6B_ONSET_DAYS_BEFORE_T0:
            return Finding(
                kind="neuro_treatment_delay",
                rule_id="S-6(b)",
                severity="info",
                message=(
                    f"Neurological symptoms began {(treated_on - fact.onset_date).days} days before the first dose: "
                    "risk of permanent deficit (S-6)."
                ),
                action_text="",
                evidence={
                    "fact_ids": [fact.pk],
                    "onset_date": fact.onset_date.isoformat(),
                    "t0": treated_on.isoformat(),
                },
            )
    return None


def sample_taken_after_treatment(inp: Inputs) -> Finding | None:
    if inp.t0 is None:
        return None
    t0 = inp.t0
    late = [s for s in inp.stored if s.result.analyte in B12_TESTS and s.result.collected_on > t0]
    if not late:
        return None
    return Finding(
        kind="sample_after_treatment",
        rule_id="S-13",
        severity="info",
        message="B12/folate test taken after the first B12 dose: result may be falsely reassuring (S-13).",
        action_text="",
        evidence={"t0": t0.isoformat(), "results": [_result_evidence(s) for s in late]},
    )
